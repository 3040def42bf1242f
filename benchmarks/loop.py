"""The missed-questions loop, measured: do customers' own words, kept and assigned by the operator, make the next
fine-tune answer more of them right?

For each evaluation FAQ, its unseen in-scope wordings are split in half per entry (seeded), and so are its off-topic
questions. One half plays the calls: each goes through the FAQ's fine-tuned version as a turn, and what the avatar
missed (handed off, asked "X or Y?", answered near the line) is kept by the same `QuestionStore` the agent uses
(masked). The operator's step is the console's: the kept in-scope questions are assigned, group by group, to the entry
they asked about (the evaluation file's label stands for the operator's judgement) with `with_paraphrases`; the kept
off-topic ones are dismissed. The FAQ is then fine-tuned again, and both versions are scored on the other half.
"""
from __future__ import annotations

import argparse
import random
import tempfile
from collections import defaultdict
from pathlib import Path

FAQ_DIR = Path(__file__).resolve().parent.parent / "configs" / "faq"


def _halves(in_scope, off_topic, seed: int):
    by_entry = defaultdict(list)
    for question, expect in in_scope:
        by_entry[expect].append((question, expect))
    rng = random.Random(seed)
    calls, scored = [], []
    for expect in sorted(by_entry):
        items = by_entry[expect][:]
        rng.shuffle(items)
        calls += items[: len(items) // 2]
        scored += items[len(items) // 2:]
    off = list(off_topic)
    rng.shuffle(off)
    return calls, off[: len(off) // 2], scored, off[len(off) // 2:]


def _version_answerer(entries, manifest, versions_dir: Path, tenant: str):
    from agent.answer.registry import load_version

    return load_version(entries, versions_dir / tenant / manifest["version"], manifest, "Let me connect you to a person.")


def run(name: str, steps: int, seed: int) -> dict:
    from agent.answer.calibrate import evaluate
    from agent.answer.encoders import ENCODERS
    from agent.answer.faq import load_faq
    from agent.answer.finetune import check_eval_file, finetune
    from agent.answer.questions import QuestionStore, faq_csv, group, with_paraphrases

    entries = load_faq(FAQ_DIR / f"{name}.csv")
    in_scope, off_topic = check_eval_file(FAQ_DIR / f"{name}_eval.jsonl", entries)
    calls, off_calls, scored, off_scored = _halves(in_scope, off_topic, seed)
    with tempfile.TemporaryDirectory() as tmp:
        versions = Path(tmp) / "versions"
        before = finetune(FAQ_DIR / f"{name}.csv", entries, versions, name, steps=steps, seed=seed, encoders=ENCODERS)
        answerer = _version_answerer(entries, before, versions, name)
        store = QuestionStore(Path(tmp) / "questions.jsonl", retention_days=30)
        label = {}
        for question, expect in calls:
            kept = store.keep(question, answerer.answer(question), answerer.threshold)
            if kept is not None:
                label[kept.text] = expect
        for question in off_calls:
            store.keep(question, answerer.answer(question), answerer.threshold)
        kept_all = store.all()
        improved = list(entries)
        for members in group(kept_all):  # the operator gives each group's questions to the entries they asked about
            for expect in {label[q.text] for q in members if q.text in label}:
                improved, _ = with_paraphrases(improved, expect, [q.text for q in members if label.get(q.text) == expect])
            store.remove([q.text for q in members])  # assigned or dismissed: they leave the store
        faq = Path(tmp) / f"{name}-with-calls.csv"
        faq.write_text(faq_csv(improved))
        after = finetune(faq, improved, versions, name, steps=steps, seed=seed, encoders=ENCODERS)
        score_before = evaluate(answerer, scored, off_scored)
        score_after = evaluate(_version_answerer(improved, after, versions, name), scored, off_scored)
    return {"faq": name, "calls": len(calls) + len(off_calls), "kept": len(kept_all), "kept_in_scope": len(label),
            "scored": len(scored) + len(off_scored), "before": score_before, "after": score_after}


def main(argv: list[str] | None = None) -> int:
    from models.devices import use_models_offline

    parser = argparse.ArgumentParser(prog="benchmarks.loop", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--faq", action="append", help="FAQ name in configs/faq (repeatable; default: shop, telecom, bank)")
    parser.add_argument("--steps", type=int, default=120, help="fine-tuning steps of both versions (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    use_models_offline(1)
    print("| FAQ | turns from calls (kept: missed, of them in scope) | scored on | before: top-1 / answered wrong / off-topic recall "
          "| after: top-1 / answered wrong / off-topic recall |")
    print("|---|---|---|---|---|")
    for name in args.faq or ["shop", "telecom", "bank"]:
        r = run(name, args.steps, args.seed)
        b, a = r["before"], r["after"]
        print(f"| {name} | {r['calls']} ({r['kept']}, {r['kept_in_scope']}) | {r['scored']} | {b.top1_accuracy:.1%} / {b.wrong:.1%} / "
              f"{b.off_topic_recall:.1%} | {a.top1_accuracy:.1%} / {a.wrong:.1%} / {a.off_topic_recall:.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
