"""A FAQ made from a public intent benchmark, with out-of-scope questions: BANKING77 (PolyAI, CC BY 4.0).

One entry per intent: its question the intent's first training example, its
paraphrases the next K (all: every one), its answer a line naming the intent.
`held_out` intents, chosen by the seed, are left out of the FAQ: their test
questions are ones the bank's FAQ does not answer, and must be handed off.
The data stays in ../shared (tests and benchmarks only, never the package).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BANKING77 = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "banking77"


@dataclass(frozen=True)
class IntentFaq:
    faq_rows: list[dict]  # question, answer, paraphrases (for a CSV FAQ)
    in_scope: list[tuple[str, str]]  # test question, the FAQ question it asks
    off_topic: list[str]  # test questions of the held-out intents
    held_out: list[str]  # those intents


def _rows(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return [(row["text"].strip(), row["category"]) for row in csv.DictReader(handle)]


def banking77(shots: int | None, held_out: int = 10, seed: int = 0, data: Path = BANKING77) -> IntentFaq:
    """`shots`: paraphrases an entry (None: every training example)."""
    if not (data / "train.csv").exists():
        raise SystemExit(f"BANKING77 is not at {data} (it ships in the project's shared/ folder, beside the repository)")
    train, test = _rows(data / "train.csv"), _rows(data / "test.csv")
    intents = sorted({intent for _, intent in train})
    left_out = sorted(np.random.default_rng(seed).choice(intents, held_out, replace=False).tolist())
    examples: dict[str, list[str]] = {}
    for text, intent in train:
        if text.lower() not in {t.lower() for t in examples.get(intent, [])}:
            examples.setdefault(intent, []).append(text)
    rows, question_of = [], {}
    for intent in intents:
        if intent in left_out:
            continue
        first, *rest = examples[intent]
        question_of[intent] = first
        rows.append({"question": first, "answer": f"Here is how we can help with {intent.replace('_', ' ')}.",
                     "paraphrases": "|".join(t.replace("|", "/") for t in (rest if shots is None else rest[:shots]))})
    in_scope = [(text, question_of[intent]) for text, intent in test if intent in question_of]
    off_topic = [text for text, intent in test if intent in left_out]
    return IntentFaq(rows, in_scope, off_topic, left_out)


def write(faq: IntentFaq, folder: Path) -> tuple[Path, Path]:
    """The FAQ as CSV and the test questions as the evaluation file `finetune-faq --eval` reads."""
    faq_path, eval_path = folder / "banking77.csv", folder / "banking77_eval.jsonl"
    with faq_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["question", "answer", "paraphrases"])
        writer.writeheader()
        writer.writerows(faq.faq_rows)
    lines = [json.dumps({"question": q, "expect": e}) for q, e in faq.in_scope] + [json.dumps({"question": q, "expect": None}) for q in faq.off_topic]
    eval_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return faq_path, eval_path
