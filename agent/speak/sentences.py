"""Splits a reply into sentences so speech can start before the whole reply is synthesised."""
from __future__ import annotations

import re

_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'])")
_ABBREVIATIONS = ("e.g.", "i.e.", "Mr.", "Mrs.", "Ms.", "Dr.", "St.", "etc.", "a.m.", "p.m.")


def split_sentences(text: str, max_chars: int = 220, first_max_chars: int = 60) -> list[str]:
    """Sentences of at most `max_chars`; the first piece is kept short (cut at a comma)
    because the customer waits for it, later pieces are synthesised while earlier ones play."""
    text = " ".join(text.split())
    if not text:
        return []
    pieces = _BOUNDARY.split(text)
    sentences: list[str] = []
    for piece in pieces:
        if sentences and sentences[-1].endswith(_ABBREVIATIONS):
            sentences[-1] += " " + piece
        else:
            sentences.append(piece)
    first = _wrap(sentences[0], first_max_chars)
    return [*first, *(chunk for s in sentences[1:] for chunk in _wrap(s, max_chars))]


def _wrap(sentence: str, max_chars: int) -> list[str]:
    """Very long sentences are cut at commas so the first audio is not delayed."""
    if len(sentence) <= max_chars:
        return [sentence]
    out, current = [], ""
    for part in re.split(r"(?<=[,;:])\s+", sentence):
        if current and len(current) + len(part) + 1 > max_chars:
            out.append(current)
            current = part
        else:
            current = f"{current} {part}".strip()
    if current:
        out.append(current)
    return out
