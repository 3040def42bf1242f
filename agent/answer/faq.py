"""FAQ files: CSV or JSONL, validated whole before anything is used."""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

EMOTIONS = ("neutral", "happy", "concerned", "apologetic", "surprised")
MAX_FAQ_BYTES = 5_000_000


class FaqError(ValueError):
    """A FAQ that cannot be loaded; lists every problem with its line number."""


@dataclass(frozen=True)
class FaqEntry:
    question: str
    answer: str
    paraphrases: tuple[str, ...] = ()
    emotion: str = "neutral"
    tags: tuple[str, ...] = field(default=())

    @property
    def phrasings(self) -> tuple[str, ...]:
        return (self.question, *self.paraphrases)

    @property
    def texts(self) -> tuple[str, ...]:
        """Everything the entry says: its ways of asking, its answer, its tags."""
        return (*self.phrasings, self.answer, *self.tags)


def load_faq(path: Path | str) -> list[FaqEntry]:
    path = Path(path)
    data = path.read_bytes()
    if len(data) > MAX_FAQ_BYTES:
        raise FaqError(f"{path}: {len(data)} bytes is over the {MAX_FAQ_BYTES} byte limit")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FaqError(f"{path}: not UTF-8 text ({exc})") from None
    if path.suffix.lower() == ".jsonl":
        rows = _jsonl_rows(text, path)
    elif path.suffix.lower() == ".csv":
        rows = _csv_rows(text, path)
    else:
        raise FaqError(f"{path}: unsupported FAQ format {path.suffix!r} (use .csv or .jsonl)")
    return _validate(rows, path)


QUOTING_HELP = 'put the text in double quotes, e.g. "How do I pay?","We take Visa, Mastercard and PayPal."'


def _csv_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text))
    header = [name.strip() for name in next(reader, [])]
    if not {"question", "answer"} <= set(header):
        raise FaqError(f"{path}:1: the header must name at least 'question' and 'answer' columns")
    rows, errors = [], []
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        if len(fields) > len(header):
            fields = _rejoin_unquoted_commas(fields, header)
            if fields is None:
                errors.append(f"{path}:{reader.line_num}: more fields than the header has, and the commas cannot be told apart: {QUOTING_HELP}")
                continue
        rows.append((reader.line_num, dict(zip(header, fields))))
    if errors:
        raise FaqError("\n".join(errors))
    return rows


def _rejoin_unquoted_commas(fields: list[str], header: list[str]) -> list[str] | None:
    """For a question,answer file, the one split where the question ends in '?' (the rest is the answer); None if not exactly one."""
    if header != ["question", "answer"]:
        return None
    splits = [i for i in range(1, len(fields)) if ",".join(fields[:i]).rstrip().endswith("?")]
    if len(splits) != 1:
        return None
    return [",".join(fields[: splits[0]]), ",".join(fields[splits[0] :])]


def _jsonl_rows(text: str, path: Path) -> list[tuple[int, dict]]:
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.append(f"{path}:{number}: invalid JSON ({exc.msg})")
            continue
        if not isinstance(obj, dict):
            errors.append(f"{path}:{number}: expected an object")
            continue
        rows.append((number, obj))
    if errors:
        raise FaqError("\n".join(errors))
    return rows


def _split_list(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = value.split("|")
    return tuple(str(v).strip() for v in value if str(v).strip())


def _validate(rows: list[tuple[int, dict]], path: Path) -> list[FaqEntry]:
    entries, errors, seen = [], [], {}
    for number, row in rows:
        question = str(row.get("question") or "").strip()
        answer = str(row.get("answer") or "").strip()
        emotion = str(row.get("emotion") or "neutral").strip() or "neutral"
        if not question:
            errors.append(f"{path}:{number}: empty question")
        if not answer:
            errors.append(f"{path}:{number}: empty answer")
        if emotion not in EMOTIONS:
            errors.append(f"{path}:{number}: unknown emotion {emotion!r} (one of {', '.join(EMOTIONS)})")
        key = question.lower()
        if question and key in seen:
            errors.append(f"{path}:{number}: duplicate question (first on line {seen[key]})")
        seen.setdefault(key, number)
        entries.append(
            FaqEntry(question, answer, _split_list(row.get("paraphrases")), emotion, _split_list(row.get("tags")))
        )
    if errors:
        raise FaqError("\n".join(errors))
    if not entries:
        raise FaqError(f"{path}: no FAQ entries")
    return entries
