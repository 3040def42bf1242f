"""The hand-off threshold, chosen on held-out data, and the evaluation that reports what it does.

Held-out data, never in the index the threshold is chosen for:
- in scope: phrasings made from each entry (phrasings.py) and held back from
  the fine-tune (for the un-tuned model: all of them);
- near misses: the same phrasings with their own entry taken out of the FAQ
  (leave-one-entry-out): questions of the operator's own domain that this FAQ
  does not answer, which must hand off;
- generic off-topic questions (below; the shipped evaluation files use others).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from .answerer import BUILT_IN, HUMAN_REQUEST, FastGate
from .phrasings import make_phrasings

BUILT_IN_QUESTIONS = {e.question for e in BUILT_IN}

GENERIC_OFF_TOPIC = (
    "what time is it in london", "can you sing a song", "who is the president", "how do i bake bread", "whats two plus two",
    "recommend a movie for tonight", "is it going to rain", "how far is the moon", "whats your favourite colour",
    "translate hello into french", "how do i lose weight", "book me a flight", "what is the speed of light", "who wrote hamlet",
    "how do i tie a tie", "whats a good name for a cat", "can you help me with my maths homework", "what year did world war two end",
    "how do i get rid of hiccups", "is coffee bad for you", "what should i watch on tv", "where is the nearest hospital",
    "how tall is the eiffel tower", "can you dance", "do you dream", "what is love", "how do i plant tomatoes",
    "whats the score of the match", "how do i fix a flat tyre", "what is the population of china", "write me a poem",
    "how many legs does a spider have", "why is the sky blue", "what is bitcoin worth today", "how do i learn to swim",
    "who is the richest person in the world", "what is the best pizza topping", "how do i meditate", "are aliens real",
    "what does my dream mean", "how do i unclog a sink", "whats the news today", "what is quantum physics",
    "how do i make friends", "what is the boiling point of water", "who painted the mona lisa", "tell me something interesting",
    "how old is the universe", "can you call a plumber for me", "what is my name", "what language do they speak in brazil",
    "how do i cure a cold", "where can i park my car", "which football team is the best", "how do i write a cv",
    "what is the square root of nine", "i like turtles", "banana", "test test one two", "um hello is this thing on",
)


class Scorer(Protocol):
    entries: list

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(entries)) scores."""


@dataclass(frozen=True)
class Outcomes:
    """What one threshold does to held-out questions."""

    threshold: float
    top1_accuracy: float  # in scope, answered with the right entry
    handoff_precision: float  # of all hand-offs, the share that were out of scope
    off_topic_recall: float  # out of scope, handed off
    near_miss_recall: float  # leave-one-entry-out questions, handed off


# The threshold hands off this share of near misses and of generic off-topic questions. Chosen once, on the demo FAQ and
# the shop FAQ of configs/faq (the telecom and bank FAQs only checked it): a rule on quantiles carries across FAQs, where
# maximising accuracy on made phrasings did not (they score lower than real customers' wordings and the optimum jumped).
NEAR_MISS_SHARE = 0.65
OFF_TOPIC_SHARE = 0.95


def choose_threshold(scorer: Scorer, in_scope: Sequence[tuple[str, int]], off_topic: Sequence[str]) -> Outcomes:
    """The lowest threshold that hands off most near misses and nearly all generic off-topic questions.

    In-scope texts (with the index of their entry) score against the full index; as near misses their own entry is taken out.
    """
    texts = [t for t, _ in in_scope]
    expected = np.array([e for _, e in in_scope], int)
    scores = scorer.scores([*texts, *off_topic])
    inside, outside = scores[: len(texts)], scores[len(texts):]
    best = inside.max(1)
    near = inside.copy()
    near[np.arange(len(texts)), expected] = -np.inf
    near_best, off_best = near.max(1), outside.max(1)
    threshold = float(max(np.quantile(near_best, NEAR_MISS_SHARE) if len(texts) else -np.inf,
                          np.quantile(off_best, OFF_TOPIC_SHARE) if len(off_topic) else -np.inf))
    accuracy = float(np.mean((inside.argmax(1) == expected) & (best >= threshold))) if len(texts) else 0.0
    handed_in, handed_out = float(np.sum(best < threshold)), float(np.sum(off_best < threshold))
    precision = handed_out / (handed_in + handed_out) if handed_in + handed_out else 1.0
    return Outcomes(threshold, accuracy, precision, float(np.mean(off_best < threshold)) if len(off_topic) else 1.0,
                    float(np.mean(near_best < threshold)) if len(texts) else 1.0)


@dataclass(frozen=True)
class Report:
    in_scope: int
    off_topic: int
    top1_accuracy: float
    handoff_precision: float
    off_topic_recall: float
    clarified: float  # in scope, asked "X or Y?" with the right entry among the two
    wrong: float  # in scope, answered with another entry (or a clarification without the right one)
    threshold: float
    misses: tuple[tuple[str, str, str], ...]  # (question, expected, what it did) for the report

    def as_dict(self) -> dict:
        return {"in_scope": self.in_scope, "off_topic": self.off_topic, "top1_accuracy": self.top1_accuracy,
                "fallback_precision": self.handoff_precision, "fallback_recall": self.off_topic_recall,
                "clarified": self.clarified, "wrong": self.wrong, "threshold": self.threshold,
                "misses": [list(m) for m in self.misses]}


def evaluate(answerer, in_scope: Sequence[tuple[str, str]], off_topic: Sequence[str]) -> Report:
    """Runs every question through the answerer as a call would (one turn, no context) and counts what it did."""
    correct = clarified = handed_in = 0
    misses = []
    for (question, expect), answer in zip(in_scope, answerer.answer_each([q for q, _ in in_scope])):
        if answer.matched == (expect,) and not answer.handoff:
            correct += 1
            continue
        if answer.handoff and answer.matched_question is None:
            handed_in += 1
            did = "handed off"
        elif answer.options:
            clarified += expect in answer.options
            did = "asked: " + " / ".join(answer.options)
        else:
            did = " + ".join(answer.matched) or str(answer.matched_question)
        misses.append((question, expect, did))
    handed_out = 0
    for question, answer in zip(off_topic, answerer.answer_each(list(off_topic))):
        if answer.handoff and answer.matched_question is None:
            handed_out += 1
        elif answer.matched or answer.options:
            misses.append((question, "(hand off)", " + ".join(answer.matched) or "asked: " + " / ".join(answer.options)))
    n = max(len(in_scope), 1)
    return Report(
        len(in_scope), len(off_topic), correct / n,
        handed_out / (handed_in + handed_out) if handed_in + handed_out else 1.0,
        handed_out / max(len(off_topic), 1), clarified / n, (len(in_scope) - correct - handed_in - clarified) / n,
        float(answerer.threshold), tuple(misses),
    )


FAST_MARGIN = 0.12  # how far the first encoder's best entry must lead its next for it to answer alone
GATE_SAFETY = 0.05  # the gate is set this much inside the last agreement seen on the held-out phrasings


def choose_fast_gate(answerer, texts: Sequence[str]) -> FastGate | None:
    """Where the first encoder alone gives the answer every encoder would give, on these held-out texts.

    The lowest score above which, with a lead of FAST_MARGIN, its best entry was always the full answer's, and the
    highest below which the full answer always handed off; each moved GATE_SAFETY inside. None without two encoders.
    """
    if answerer.fast is None or not texts:
        return None
    answerer.gate = None  # the full answer, for reference
    fast = answerer.fast.scores(list(texts))
    order = np.argsort(-fast, axis=1)
    best, lead = fast[np.arange(len(texts)), order[:, 0]], fast[np.arange(len(texts)), order[:, 0]] - fast[np.arange(len(texts)), order[:, 1]]
    full = answerer.answer_each(list(texts))
    agrees = np.array([a.matched == (answerer.entries[i].question,) and not a.options and a.handoff == (answerer.entries[i] is HUMAN_REQUEST)
                       for a, i in zip(full, order[:, 0])])
    handed = np.array([a.handoff and a.matched_question is None for a in full])
    clear = lead >= FAST_MARGIN
    disagreeing = best[clear & ~agrees]
    answer_above = (float(disagreeing.max()) if disagreeing.size else float(answerer.threshold)) + GATE_SAFETY
    answered = best[~handed]
    handoff_below = min(float(answered.min()) if answered.size else float(answerer.threshold), float(answerer.threshold)) - GATE_SAFETY
    return FastGate(max(answer_above, float(answerer.threshold) + GATE_SAFETY), FAST_MARGIN, handoff_below)


def calibrate(answerer, held_out: Sequence[tuple[str, int]]) -> Outcomes:
    """Sets the answerer's hand-off threshold (and, with several encoders, when the first decides alone: its fast gate)
    from held-out phrasings and generic off-topic questions; says what the threshold does there."""
    outcomes = choose_threshold(answerer.scorer, held_out, GENERIC_OFF_TOPIC)
    answerer.threshold = outcomes.threshold
    answerer.gate = choose_fast_gate(answerer, [*(t for t, _ in held_out), *GENERIC_OFF_TOPIC])
    return outcomes


# A head's threshold: answers to phrasings it did not see are wrong for at most this share (cross-validated), it hands
# off at least HEAD_NEAR_MISS_SHARE of the questions of entries it was trained without, and OFF_TOPIC_SHARE of the
# generic off-topic ones. Chosen on BANKING77 (benchmarks/faq.py --set banking77), checked on the shipped FAQs.
HEAD_MAX_WRONG = 0.03
HEAD_NEAR_MISS_SHARE = 0.85


def fit_heads(answerer, phrasings: Sequence[tuple[str, int]], seed: int = 0) -> Outcomes:
    """Fits the answerer's classifier heads on every way of asking it knows (text, entry index: the FAQ's own and the
    made ones, and the built-ins'), sets their threshold by cross-validation and the fast gate; says what that does."""
    from .head import fit_head, held_out_scores, lowest_threshold_for

    texts = [t for t, _ in phrasings]
    labels = np.array([e for _, e in phrasings], int)
    count, topical = len(answerer.entries), len(answerer.entries) - len(BUILT_IN)
    features, first = answerer.features(texts), answerer.features(texts, first_only=True)
    answerer.use_heads(fit_head(features, labels, count), fit_head(first, labels, count) if answerer.fast is not None else None)
    held = held_out_scores(features, labels, count, topical, seed)
    off_best = answerer.scorer.scores(list(GENERIC_OFF_TOPIC)).max(1)
    threshold = max(lowest_threshold_for(held.confidence, held.right, HEAD_MAX_WRONG),
                    float(np.quantile(held.near_miss, HEAD_NEAR_MISS_SHARE)) if held.near_miss.size else 0.0,
                    float(np.quantile(off_best, OFF_TOPIC_SHARE)))
    answerer.threshold = threshold
    handed_in = float(np.sum(held.confidence < threshold))
    handed_out = float(np.sum(off_best < threshold))
    answerer.gate = choose_fast_gate(answerer, [*texts, *GENERIC_OFF_TOPIC])
    return Outcomes(threshold, float(np.mean(held.right & (held.confidence >= threshold))),
                    handed_out / (handed_in + handed_out) if handed_in + handed_out else 1.0, float(np.mean(off_best < threshold)),
                    float(np.mean(held.near_miss < threshold)) if held.near_miss.size else 1.0)


def calibrate_untuned(answerer, seed: int = 0) -> Outcomes:
    """For a FAQ used without a fine-tune: every made phrasing is held out, since nothing was trained on them."""
    topical = [e for e in answerer.entries if e.question not in BUILT_IN_QUESTIONS]
    split = make_phrasings(topical, answerer.scorer, seed)
    return calibrate(answerer, [*split.held_out_pairs(), *split.train_pairs()])


def risk_coverage(answerer, in_scope: Sequence[tuple[str, str]], off_topic: Sequence[str], rows: int = 11) -> list[dict]:
    """How the hand-off threshold trades answers for wrong answers, on held-out questions: per threshold, the share of
    all questions answered, the share answered wrongly (another entry, or any entry for an off-topic one), top-1 in
    scope and off-topic handed off. One turn each, as `evaluate`; a clarifying question counts as its first option here.
    The rows run from answering everything down to answering about half, plus the version's own threshold."""
    questions = [q for q, _ in in_scope] + list(off_topic)
    if not questions:
        return []
    scores = np.concatenate([answerer.scorer.scores(questions[i:i + 256]) for i in range(0, len(questions), 256)])
    best, confidence = scores.argmax(1), scores.max(1)
    named = [answerer.entries[i].question for i in best]
    asked_for_person = np.array([answerer.entries[i] is HUMAN_REQUEST for i in best])
    inside = np.arange(len(questions)) < len(in_scope)
    right = np.array([i < len(in_scope) and named[i] == in_scope[i][1] for i in range(len(questions))])
    thresholds = sorted({*np.quantile(confidence, np.linspace(0, 0.5, rows - 1)).tolist(), float(answerer.threshold)}, reverse=True)
    table = []
    for threshold in thresholds:
        answered = (confidence >= threshold) & ~asked_for_person
        table.append({"threshold": round(float(threshold), 4), "answered": float(np.mean(answered)),
                      "wrong": float(np.mean(answered & ~right)), "top1_in_scope": float(np.mean(answered[inside] & right[inside])) if inside.any() else 0.0,
                      "off_topic_handed_off": float(np.mean(~answered[~inside])) if (~inside).any() else 1.0,
                      "this_version": bool(threshold == float(answerer.threshold))})
    return table


def format_risk_coverage(table: Sequence[dict]) -> list[str]:
    """The risk-coverage table as Markdown lines."""
    lines = ["| threshold | questions answered | answered wrongly (of all) | top-1 in scope | off-topic handed off |",
             "|---|---|---|---|---|"]
    for row in table:
        mark = " (this version)" if row["this_version"] else ""
        lines.append(f"| {row['threshold']:.3f}{mark} | {row['answered']:.1%} | {row['wrong']:.1%} | {row['top1_in_scope']:.1%} "
                     f"| {row['off_topic_handed_off']:.1%} |")
    return lines
