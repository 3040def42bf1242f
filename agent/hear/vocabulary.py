"""The words of a tenant's FAQ that Whisper would miss: product, brand and place names and acronyms ("Brompton", "SEPA",
"Klarna", "PUK"), put in the recogniser's prompt so a customer who says them is heard.

A word qualifies when it is written with a capital past its first letter or mid-sentence, or mixes
letters and digits, and Whisper's tokenizer needs more than one token for it: a name Whisper knows
well (" Monday", " Google") is a single token and needs no help.
"""
from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-'][A-Za-z0-9]+)*")
MAX_WORDS = 24


def _candidates(text: str) -> Iterable[str]:
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        for index, match in enumerate(_WORD.finditer(sentence)):
            word = match.group(0)
            named = any(c.isupper() for c in word[1:]) or (word[0].isupper() and index > 0) or (
                any(c.isdigit() for c in word) and any(c.isalpha() for c in word))
            if named and len(word) > 1:
                yield word


def faq_vocabulary(texts: Iterable[str], tokenizer, max_words: int = MAX_WORDS) -> tuple[str, ...]:
    """The rare names in a FAQ's texts (`FaqEntry.texts`), most frequent first; `tokenizer` is Whisper's (`tokenizers.Tokenizer`)."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(_candidates(text))
    rare = [word for word in counts if len(tokenizer.encode(" " + word, add_special_tokens=False).ids) > 1]
    rare.sort(key=lambda word: (-counts[word], word))
    return tuple(rare[:max_words])
