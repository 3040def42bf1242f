"""FAQ matching: whole entries, made phrasings, calibrated hand-off, two questions in a turn, clarifying questions,
and the fine-tune command's checks. The shipped evaluation FAQs (configs/faq/*_eval.jsonl) are used as data."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agent.answer.answerer import BUILT_IN, FaqAnswerer
from agent.answer.calibrate import GENERIC_OFF_TOPIC, calibrate_untuned, evaluate
from agent.answer.encoders import ENCODERS, MINILM, EncoderMissing, load_encoder
from agent.answer.faq import FaqEntry, load_faq
from agent.answer.finetune import load_eval_file
from agent.answer.phrasings import make_phrasings, template_phrasings

from .conftest import ROOT

FAQS = ROOT / "configs" / "faq"
DOMAINS = ("shop", "telecom", "bank")


@pytest.fixture(scope="module")
def encoders(engines, config):
    """The encoders the shipped config uses (all of them), as the agent loaded them: each real model is loaded once."""
    assert list(config.answer.encoders) == list(ENCODERS)
    return engines.answerers.base.encoders


@pytest.fixture(scope="module")
def shop(encoders):
    answerer = FaqAnswerer(load_faq(FAQS / "shop.csv"), encoders)
    calibrate_untuned(answerer)
    return answerer


@pytest.mark.slow
def test_answering_many_turns_at_once_answers_each_as_a_call_would(shop, encoders):
    """Evaluation and calibration embed their texts a batch at a time; every answer is still the one-turn answer."""
    texts = ["  ", "where is my parcel", "do you ship abroad and can I pay with PayPal", "what's the weather tomorrow",
             *[q for q, _ in load_eval_file(FAQS / "shop_eval.jsonl")[0][:40]]]
    alone = FaqAnswerer(load_faq(FAQS / "shop.csv"), encoders, threshold=shop.threshold, gate=shop.gate)
    expected = [alone.answer(t) for t in texts]
    together = shop.answer_each(texts, batch=16)
    assert [(a.text, a.matched, a.handoff, a.options) for a in together] == [(a.text, a.matched, a.handoff, a.options) for a in expected]


def test_the_shipped_evaluation_sets_are_question_and_answer_only_with_enough_wordings_and_off_topic_questions():
    for domain in DOMAINS:
        entries = load_faq(FAQS / f"{domain}.csv")
        assert len(entries) >= 25 and all(not e.paraphrases for e in entries)
        assert (FAQS / f"{domain}.csv").read_text().splitlines()[0] == "question,answer"
        in_scope, off_topic = load_eval_file(FAQS / f"{domain}_eval.jsonl")
        per_entry = {e.question: 0 for e in entries}
        for _, expect in in_scope:
            per_entry[expect] += 1
        assert min(per_entry.values()) >= 5 and len(off_topic) >= 40, domain
        faq_words = {e.question.lower() for e in entries}
        assert not any(q.lower() in faq_words for q, _ in in_scope), "wordings must be unseen"
        assert not set(off_topic) & set(GENERIC_OFF_TOPIC), "calibration and evaluation off-topic questions differ"


@pytest.mark.slow
def test_customers_words_found_only_in_the_answer_still_match_the_entry(shop):
    for said, question in (("do you take paypal", "What payment methods do you accept?"),
                           ("can i pay with apple pay", "What payment methods do you accept?"),
                           ("where do i get the prepaid label", "How do I return an item?")):
        reply = shop.answer(said)
        assert reply.matched == (question,) and not reply.handoff, (said, reply)


@pytest.mark.slow
def test_two_questions_in_one_turn_get_both_answers(shop):
    reply = shop.answer("how much is shipping and how long does it take to arrive")
    assert reply.matched == ("How much does shipping cost?", "How long does delivery take?")
    entries = {e.question: e for e in shop.entries}
    assert entries["How much does shipping cost?"].answer in reply.text and entries["How long does delivery take?"].answer in reply.text
    single = shop.answer("my package was crushed and the thing inside is cracked")
    assert single.matched == ("My item arrived damaged. What should I do?",), "one question with 'and' in it stays one"


@pytest.mark.slow
def test_small_talk_a_request_for_a_person_and_off_topic_questions_keep_working(shop):
    assert shop.answer("hello").matched == ("Hello",)
    person = shop.answer("can i talk to a real person please")
    assert person.handoff and person.matched_question == "Can I talk to a person?"
    for off in ("do you sell cars", "whats the weather tomorrow", ""):
        reply = shop.answer(off)
        assert reply.handoff and reply.matched_question is None and not reply.options, off


class TableScorer:
    """Scores from a table, to test decisions without a model."""

    def __init__(self, entries, table: dict[str, list[float]]) -> None:
        self.entries, self.table = entries, table

    def scores(self, texts):
        return np.array([self.table.get(t, [0.0] * len(self.entries)) for t in texts], np.float32)


def test_two_close_candidates_get_a_clarifying_question_and_the_next_turn_picks_one():
    entries = [FaqEntry("What is your return policy?", "Thirty days."), FaqEntry("How do I return an item?", "Print the label."),
               FaqEntry("How much is shipping?", "Five dollars.")]
    pad = [0.0] * len(BUILT_IN)
    table = {"returns": [0.61, 0.60, 0.1, *pad], "the second one": [0.1, 0.1, 0.1, *pad],
             "how do i send it back": [0.5, 0.7, 0.1, *pad], "how much is shipping": [0.1, 0.1, 0.9, *pad]}
    answerer = FaqAnswerer(entries, None, threshold=0.4, scorer=TableScorer([*entries, *BUILT_IN], table))
    ask = answerer.answer("returns")
    assert ask.options == ("What is your return policy?", "How do I return an item?") and not ask.handoff and ask.matched == ()
    assert "return policy" in ask.text and "return an item" in ask.text
    assert answerer.answer("the second one", previous="returns").matched == ("How do I return an item?",)
    assert answerer.answer("how do i send it back", previous="returns").matched == ("How do I return an item?",)
    assert answerer.answer("how much is shipping", previous="returns").matched == ("How much is shipping?",), "a new question is answered"
    assert answerer.answer("the second one").handoff, "without the clarifying question it means nothing"


def test_made_phrasings_are_deterministic_deduplicated_and_their_own_entry_s(encoders):
    entries = load_faq(FAQS / "telecom.csv")
    answerer = FaqAnswerer(entries, encoders[:1])
    first, again = make_phrasings(entries, answerer.scorer, 0), make_phrasings(entries, answerer.scorer, 0)
    assert first == again
    made = [[p.text for p in tr + ho] for tr, ho in zip(first.train, first.held_out)]
    assert min(len(m) for m in made) >= 3, "every entry gets phrasings to learn from"
    flat = [t for m in made for t in m]
    assert len(flat) == len(set(flat)), "no phrasing twice"
    assert set(first.held_out_pairs()).isdisjoint(first.train_pairs())
    raw = template_phrasings(entries)
    assert sum(map(len, raw)) > len(flat), "phrasings that read as another entry are dropped"


@pytest.mark.slow
def test_calibrated_threshold_hands_off_off_topic_questions_and_answers_customers(encoders):
    """A floor, not the goal (README, FAQ matching): catches a calibration or matching regression on all three domains."""
    for domain in DOMAINS:
        answerer = FaqAnswerer(load_faq(FAQS / f"{domain}.csv"), encoders)
        outcomes = calibrate_untuned(answerer)
        assert 0 < outcomes.threshold < 1 and outcomes.off_topic_recall >= 0.9
        report = evaluate(answerer, *load_eval_file(FAQS / f"{domain}_eval.jsonl"))
        assert report.off_topic_recall >= 0.8 and report.top1_accuracy >= 0.6, (domain, report.as_dict() | {"misses": len(report.misses)})


def _finetune(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", "finetune-faq", *args], capture_output=True, text=True, timeout=600)


def test_finetune_refuses_a_broken_faq_or_evaluation_file_before_any_work(tmp_path):
    broken = tmp_path / "faq.csv"
    broken.write_text("question,answer\nWrong item, what now,Keep it, we send another.\n")
    run = _finetune("--faq", str(broken), "--versions-dir", str(tmp_path / "v"))
    assert run.returncode == 2 and "faq.csv:2" in run.stderr and "double quotes" in run.stderr
    assert "fine-tuning" not in run.stderr, "the progress bar does not start before the file is validated"
    good = tmp_path / "good.csv"
    good.write_text("question,answer\nDo you ship abroad?,Yes, to forty countries.\n")
    wrong_eval = tmp_path / "eval.jsonl"
    wrong_eval.write_text('{"question": "do you ship to spain", "expect": "Do you ship to Spain?"}\n')
    run = _finetune("--faq", str(good), "--eval", str(wrong_eval), "--versions-dir", str(tmp_path / "v"))
    assert run.returncode == 2 and "not in the FAQ" in run.stderr and "fine-tuning" not in run.stderr
    assert not (tmp_path / "v").exists()


@pytest.mark.finetune
def test_finetune_writes_a_version_with_its_phrasings_calibration_and_report(tmp_path):
    faq = tmp_path / "faq.csv"
    faq.write_text((FAQS / "shop.csv").read_text())
    lines = (FAQS / "shop_eval.jsonl").read_text().splitlines()
    evaluation = tmp_path / "eval.jsonl"  # a sample: the report's rows, not its numbers, are checked here
    evaluation.write_text("\n".join([*lines[:20], *[line for line in lines if '"expect": null' in line][:10]]))
    run = _finetune("--faq", str(faq), "--steps", "2", "--tenant", "t", "--versions-dir", str(tmp_path / "v"), "--eval", str(evaluation))
    assert run.returncode == 0, run.stderr[-2000:]
    version = tmp_path / "v" / "t" / "v1"
    import json

    manifest = json.loads((version / "manifest.json").read_text())
    assert 0 < manifest["threshold"] < 1 and manifest["encoders"] == list(ENCODERS)
    assert list(manifest["metrics"])[:5] == ["BM25", f"base {MINILM}", f"base {' + '.join(ENCODERS)}",
                                         "fine-tuned, classifier head instead",
                                         f"fine-tuned (this version: {' + '.join(ENCODERS)}, {MINILM} tuned, averaged cosines)"]
    if manifest["fast_gate"] is not None:  # the cascade's report sets it beside the same version reading every encoder
        assert list(manifest["metrics"])[5:] == ["fine-tuned, every encoder on every turn"]
    assert len(manifest["phrasings_per_entry"]) == 27 and (version / "phrasings.json").exists()
    assert "phrasings made:" in run.stdout and "| BM25 |" in run.stdout
    assert manifest["decides_with"] == "cosines" and not (version / "head.npz").exists()  # one question an entry: too few to learn from
    marked = [row for row in manifest["risk_coverage"] if row["this_version"]]
    assert len(marked) == 1 and marked[0]["threshold"] == round(manifest["threshold"], 4) and "(this version)" in run.stdout
    answered = [row["answered"] for row in manifest["risk_coverage"]]
    assert answered == sorted(answered) and answered[0] < answered[-1]  # a lower threshold never answers fewer
    from agent.answer.registry import load_version

    answerer = load_version(load_faq(version / "faq.csv"), version, manifest, "a person will help")
    assert answerer.threshold == manifest["threshold"] and len(answerer.scorer.scorers) == len(ENCODERS)
    assert answerer.answer("do you take paypal").matched == ("What payment methods do you accept?",)


@pytest.mark.finetune
def test_a_faq_with_customers_own_wordings_gets_a_version_that_decides_with_its_classifier_head(tmp_path):
    """Eight BANKING77 intents with six real wordings each; two more intents' questions must be handed off."""
    import csv
    import json

    from agent.answer.answerer import HeadScorer
    from agent.answer.registry import load_version

    with (ROOT.parent / "shared" / "data" / "banking77" / "train.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    intents = sorted({row["category"] for row in rows})[:10]
    wordings = {intent: [row["text"] for row in rows if row["category"] == intent][:12] for intent in intents}
    faq = tmp_path / "faq.csv"
    with faq.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, ["question", "answer", "paraphrases"])
        writer.writeheader()
        for intent in intents[:8]:
            writer.writerow({"question": wordings[intent][0], "answer": f"Here is how we help with {intent.replace('_', ' ')}.",
                             "paraphrases": "|".join(w.replace("|", "/") for w in wordings[intent][1:6])})
    evaluation = tmp_path / "eval.jsonl"
    evaluation.write_text("\n".join([json.dumps({"question": w, "expect": wordings[i][0]}) for i in intents[:8] for w in wordings[i][6:]]
                                    + [json.dumps({"question": w, "expect": None}) for i in intents[8:] for w in wordings[i]]))
    run = _finetune("--faq", str(faq), "--steps", "2", "--tenant", "t", "--versions-dir", str(tmp_path / "v"), "--eval", str(evaluation))
    assert run.returncode == 0, run.stderr[-2000:]
    version = tmp_path / "v" / "t" / "v1"
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["decides_with"] == "head" and (version / "head.npz").exists() and "classifier head)" in run.stdout
    answerer = load_version(load_faq(faq), version, manifest, "a person will help")
    assert isinstance(answerer.scorer, HeadScorer) and answerer.threshold == manifest["threshold"]
    held = [w for i in intents[:8] for w in wordings[i][6:]]
    right = sum(answerer.answer(w).matched == (wordings[i][0],) for i in intents[:8] for w in wordings[i][6:])
    assert right >= len(held) / 2, f"{right} of {len(held)} unseen wordings answered with their own entry"
    handed = sum(answerer.answer(w).handoff for i in intents[8:] for w in wordings[i])
    assert handed >= 1  # its threshold is a real line: some questions of intents it never saw go to a person


def test_encoders_are_named_in_the_config_and_a_missing_one_says_how_to_install_it(tmp_path):
    from agent.config import ConfigError, load_config

    (tmp_path / "faq.csv").write_text("question,answer\nq?,a\n")
    path = tmp_path / "agent.yaml"
    path.write_text("answer:\n  faq_path: faq.csv\n  encoders: [all-MiniLM-L6-v2]\n")
    assert load_config(path).answer.encoders == [MINILM]
    for wrong in ("[bert-base]", "[]", "[all-MiniLM-L6-v2, all-MiniLM-L6-v2]"):
        path.write_text(f"answer:\n  faq_path: faq.csv\n  encoders: {wrong}\n")
        with pytest.raises(ConfigError, match="answer.encoders"):
            load_config(path)
    with pytest.raises(EncoderMissing, match="unknown encoder"):
        load_encoder("bert-base")
    from agent.answer.registry import AnswererRegistry

    version = tmp_path / "versions" / "t" / "v1"  # saved by a server whose config named another encoder
    version.mkdir(parents=True)
    (version / "faq.csv").write_text("question,answer\nq?,a\n")
    (version / "manifest.json").write_text('{"version": "v1", "threshold": 0.5, "encoders": ["bert-base"]}')
    with pytest.raises(EncoderMissing, match="bert-base"):
        AnswererRegistry(None, tmp_path / "versions").load("t", "v1")


def test_threshold_config_is_auto_or_a_number_between_0_and_1(tmp_path):
    from agent.config import ConfigError, load_config

    (tmp_path / "faq.csv").write_text("question,answer\nq?,a\n")
    for value, ok in (("auto", True), ("0.42", True), ("1.5", False), ("high", False)):
        path = tmp_path / "agent.yaml"
        path.write_text(f"answer:\n  faq_path: faq.csv\n  confidence_threshold: {value}\n")
        if ok:
            assert str(load_config(path).answer.confidence_threshold) == value
        else:
            with pytest.raises(ConfigError, match="answer.confidence_threshold"):
                load_config(path)
