"""The questions the avatar missed, kept for the tenant's operator (`tenants.<id>.keep_questions`), so the FAQ learns the
customers' own words.

A turn is kept when the avatar handed off, asked which of two entries was meant, or answered close to the hand-off
line. What is kept is masked first (e-mail addresses, card-like numbers, then every other digit), with what the avatar
did; nothing is kept for a tenant that has not opted in, and entries older than the tenant's retention are deleted
whenever the store is read or written. One JSON line per question, one file per tenant. The operator groups similar
questions (`group`) and gives a group to an entry: its wordings become that entry's paraphrases in the FAQ the next
fine-tune reads (`with_paraphrases`), and they leave the store.
"""
from __future__ import annotations

import csv
import io
import json
import re
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..messages import Answer
from .faq import FaqEntry

NEAR_LINE = 0.05  # an answer this close above the hand-off threshold was a near thing
GROUP_OVERLAP = 0.4  # questions sharing this share of their content words are one group
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_CARD = re.compile(r"\b(?:\d[ -]?){13,19}\b")
_DIGIT = re.compile(r"\d")


def mask(text: str) -> str:
    """`text` with e-mail addresses, card-like numbers and digits hidden."""
    text = _EMAIL.sub("[email]", text)
    text = _CARD.sub("[card]", text)
    return _DIGIT.sub("#", text)


def missed(answer: Answer, threshold: float) -> str | None:
    """What the avatar did if the turn is one to keep: 'handoff', 'clarify' or 'near_line'; None for a sure answer."""
    if answer.options:
        return "clarify"
    if answer.handoff and answer.matched_question is None:
        return "handoff"
    if not answer.handoff and answer.confidence < threshold + NEAR_LINE:
        return "near_line"
    return None


@dataclass(frozen=True)
class MissedQuestion:
    at: float  # unix time
    text: str  # masked
    did: str  # handoff, clarify, near_line
    answered: str | None = None  # the entry answered (near_line) or None
    options: tuple[str, ...] = field(default_factory=tuple)  # the entries a clarifying question offered


class QuestionStore:
    """One tenant's kept questions. Thread-safe: calls keep from the model threads, the operator reads from the server."""

    def __init__(self, path: Path, retention_days: float) -> None:
        self.path, self.retention_s = Path(path), retention_days * 86400
        self._lock = threading.Lock()

    def keep(self, text: str, answer: Answer, threshold: float) -> MissedQuestion | None:
        did = missed(answer, threshold)
        if did is None or not text.strip():
            return None
        question = MissedQuestion(time.time(), mask(text.strip()), did,
                                  answer.matched_question if did == "near_line" else None, tuple(answer.options))
        with self._lock:
            kept = self._read_fresh()
            kept.append(question)
            self._write(kept)
        return question

    def all(self) -> list[MissedQuestion]:
        with self._lock:
            kept = self._read_fresh()
            self._write(kept)
            return kept

    def remove(self, texts: Sequence[str]) -> int:
        """Drops the questions with these (masked) texts; how many went."""
        gone = set(texts)
        with self._lock:
            kept = self._read_fresh()
            left = [q for q in kept if q.text not in gone]
            self._write(left)
            return len(kept) - len(left)

    def _read_fresh(self) -> list[MissedQuestion]:
        if not self.path.exists():
            return []
        oldest = time.time() - self.retention_s
        out = []
        for line in self.path.read_text().splitlines():
            try:
                row = json.loads(line)
                question = MissedQuestion(float(row["at"]), str(row["text"]), str(row["did"]), row.get("answered"), tuple(row.get("options") or ()))
            except (ValueError, KeyError, TypeError):
                continue  # a damaged line is dropped, not fatal
            if question.at >= oldest:
                out.append(question)
        return out

    def _write(self, questions: list[MissedQuestion]) -> None:
        if not questions and not self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text("".join(json.dumps(asdict(q)) + "\n" for q in questions))
        temporary.replace(self.path)


def group(questions: Sequence[MissedQuestion]) -> list[list[MissedQuestion]]:
    """Similar questions together, largest groups first: greedy, by the overlap of their content words (no model, so the
    console works on a cluster's front as well as on a node)."""
    groups: list[tuple[set[str], list[MissedQuestion]]] = []
    for question in questions:
        words = _content_words(question.text)
        best, best_overlap = None, 0.0
        for index, (seen, _) in enumerate(groups):
            overlap = len(words & seen) / max(len(words | seen), 1)
            if overlap > best_overlap:
                best, best_overlap = index, overlap
        if best is not None and best_overlap >= GROUP_OVERLAP:
            groups[best][0].update(words)
            groups[best][1].append(question)
        else:
            groups.append((set(words), [question]))
    return [members for _, members in sorted(groups, key=lambda g: len(g[1]), reverse=True)]


_STOP = frozenset("a an and are be can could do does for from have how i i'd i'm is it me my of on or please so the there this "
                  "to want was what when where which who why will with would you your".split())


def _content_words(text: str) -> set[str]:
    """Lower-case words but the commonest ones, plurals as singulars ("cards" = "card")."""
    words = {w for w in re.findall(r"[a-z']+", text.lower()) if w not in _STOP} or set(text.lower().split())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words}


def with_paraphrases(entries: Sequence[FaqEntry], question: str, wordings: Sequence[str]) -> tuple[list[FaqEntry], int]:
    """The FAQ with `wordings` added to the paraphrases of the entry asking `question` (those it does not have yet)."""
    out, added = [], 0
    for entry in entries:
        if entry.question == question:
            known = {t.lower() for t in entry.texts}
            cleaned = (w.replace("|", " ").strip() for w in wordings)  # "|" separates paraphrases in a CSV
            new = tuple(dict.fromkeys(w for w in cleaned if w and w.lower() not in known))
            entry = FaqEntry(entry.question, entry.answer, (*entry.paraphrases, *new), entry.emotion, entry.tags)
            added = len(new)
        out.append(entry)
    return out, added


def faq_csv(entries: Sequence[FaqEntry]) -> str:
    """A FAQ as the CSV `load_faq` reads (paraphrases and tags `|`-separated)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "answer", "paraphrases", "emotion", "tags"])
    for e in entries:
        writer.writerow([e.question, e.answer, "|".join(e.paraphrases), e.emotion, "|".join(e.tags)])
    return out.getvalue()
