"""The questions the avatar missed, kept for the tenant's operator (`tenants.<id>.keep_questions`), so the FAQ learns the
customers' own words.

A turn is kept when the avatar handed off, asked which of two entries was meant, or answered close to the hand-off
line. What is kept is masked first (e-mail addresses; then number words as digits, so "four one two three" goes as
"4123" does; then card-like numbers and every other digit), with what the avatar did; nothing is kept for a tenant that
has not opted in. One JSON line per question, one file per tenant, at most `keep_questions_max` of them (the oldest go
first); entries older than the tenant's retention are deleted by `QuestionStore.purge` (the server's timer) and whenever
the store is compacted. The operator groups similar questions (`group`) and gives a group to an entry: its wordings
become that entry's paraphrases in the FAQ the next fine-tune reads (`with_paraphrases`, stripped of what a spreadsheet
would take for a formula), and they leave the store.
"""
from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

from ..messages import Answer
from ..numbers import numbers_as_digits
from .faq import FaqEntry

NEAR_LINE = 0.05  # an answer this close above the hand-off threshold was a near thing
GROUP_OVERLAP = 0.4  # questions sharing this share of their content words are one group
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_DIGIT = re.compile(r"\d")
_FORMULA_START = "=+-@\t\r "  # a CSV cell starting with one of these is a formula to a spreadsheet (" =" to some)


def mask(text: str) -> str:
    """`text` with e-mail addresses, card-like numbers and digits hidden, number words too ("four one two three",
    "forty seven"): they become digits first, as `numbers_as_digits` reads them (a lone "one" stays a word)."""
    text = _EMAIL.sub("[email]", text)
    text = numbers_as_digits(text)
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
    """One tenant's kept questions, at most `max_rows` (the oldest go first) and none older than `retention_days`.

    Safe from any thread, instance or process: every read and write holds an exclusive `fcntl.flock` on a sidecar
    `<file>.lock`, which is never replaced (the store itself is, atomically, when compacted). `keep` appends one line;
    the file is compacted (expired and damaged lines dropped, the newest `max_rows` kept) when it has grown past
    `max_rows` by a margin (`slack`), and by `purge`, `all` and `remove`. The lock file holds the store's line count, so
    `keep` never reads the store."""

    def __init__(self, path: Path, retention_days: float, max_rows: int = 10_000) -> None:
        self.path, self.retention_s, self.max_rows = Path(path), retention_days * 86400, max(1, int(max_rows))
        self.lock_path = self.path.with_name(self.path.name + ".lock")

    @property
    def slack(self) -> int:
        """How far past `max_rows` the file may grow before a `keep` compacts it."""
        return max(10, self.max_rows // 10)

    def keep(self, text: str, answer: Answer, threshold: float) -> MissedQuestion | None:
        did = missed(answer, threshold)
        if did is None or not text.strip():
            return None
        masked = mask(text.strip())
        with self._locked() as lock:
            question = MissedQuestion(time.time(), masked, did, answer.matched_question if did == "near_line" else None, tuple(answer.options))
            self._append(question)
            rows = _count(lock)
            if rows is None or rows + 1 > self.max_rows + self.slack:
                self._compact(lock)
            else:
                _set_count(lock, rows + 1)
        return question

    def all(self) -> list[MissedQuestion]:
        with self._locked() as lock:
            return self._compact(lock)[0]

    def remove(self, texts: Sequence[str]) -> int:
        """Drops the questions with these (masked) texts; how many went."""
        gone = set(texts)
        with self._locked() as lock:
            kept, _ = self._compact(lock)
            left = [q for q in kept if q.text not in gone]
            if len(left) != len(kept):
                self._write(left, lock)
            return len(kept) - len(left)

    def purge(self) -> int:
        """Drops the expired lines (and damaged ones, and the oldest beyond `max_rows`) now; how many went. For a timer:
        without it, what has expired stays on disk until the store is next used."""
        with self._locked() as lock:
            return self._compact(lock)[1]

    @contextmanager
    def _locked(self) -> Iterator[int]:
        """The lock file's descriptor, held exclusively (across threads too: each call opens its own description)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _append(self, question: MissedQuestion) -> None:
        line = (json.dumps(asdict(question)) + "\n").encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a line cut short (a crash mid-write) stays one damaged line
                line = b"\n" + line
            os.write(fd, line)
        finally:
            os.close(fd)

    def _compact(self, lock: int) -> tuple[list[MissedQuestion], int]:
        """The fresh questions, oldest first, at most `max_rows`; the file rewritten if any line went. Returns them and
        how many lines went."""
        if not self.path.exists():
            _set_count(lock, 0)
            return [], 0
        lines = self.path.read_bytes().splitlines()
        oldest = time.time() - self.retention_s
        fresh = []
        for line in lines:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                question = MissedQuestion(float(row["at"]), str(row["text"]), str(row["did"]), row.get("answered"), tuple(row.get("options") or ()))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a damaged line is dropped, not fatal
            if question.at >= oldest:
                fresh.append(question)
        fresh.sort(key=lambda q: q.at)  # stable: lines kept at the same time keep their order
        kept = fresh[-self.max_rows:]
        if len(kept) != len(lines):
            self._write(kept, lock)
        else:
            _set_count(lock, len(kept))
        return kept, len(lines) - len(kept)

    def _write(self, questions: list[MissedQuestion], lock: int) -> None:
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text("".join(json.dumps(asdict(q)) + "\n" for q in questions))
        os.chmod(temporary, 0o600)
        temporary.replace(self.path)
        _set_count(lock, len(questions))


def _count(lock: int) -> int | None:
    """The store's line count the lock file holds; None if it holds none (a new lock file, or one from before)."""
    try:
        return int(os.pread(lock, 32, 0).decode().strip())
    except (ValueError, UnicodeDecodeError):
        return None


def _set_count(lock: int, rows: int) -> None:
    data = f"{rows}\n".encode()
    os.pwrite(lock, data, 0)
    os.ftruncate(lock, len(data))


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
    """The FAQ with `wordings` added to the paraphrases of the entry asking `question` (those it does not have yet).
    The wordings are the customers': what a spreadsheet would read as a formula at their start ("=", "+", "-", "@", a
    tab or CR) goes, so the operator can open `faq_csv` of the result safely."""
    out, added = [], 0
    for entry in entries:
        if entry.question == question:
            known = {t.lower() for t in entry.texts}
            cleaned = (_not_a_formula(w.replace("|", " ")) for w in wordings)  # "|" separates paraphrases in a CSV
            new = tuple(dict.fromkeys(w for w in cleaned if w and w.lower() not in known))
            entry = FaqEntry(entry.question, entry.answer, (*entry.paraphrases, *new), entry.emotion, entry.tags)
            added = len(new)
        out.append(entry)
    return out, added


def _not_a_formula(wording: str) -> str:
    return wording.strip().lstrip(_FORMULA_START).strip()


def faq_csv(entries: Sequence[FaqEntry]) -> str:
    """A FAQ as the CSV `load_faq` reads (paraphrases and tags `|`-separated)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["question", "answer", "paraphrases", "emotion", "tags"])
    for e in entries:
        writer.writerow([e.question, e.answer, "|".join(e.paraphrases), e.emotion, "|".join(e.tags)])
    return out.getvalue()
