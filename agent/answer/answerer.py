"""Picks the FAQ entry closest in meaning to what the customer said, or hands off to a person.

Each entry is read whole: its question and paraphrases (and the phrasings a
fine-tune generated), the sentences of its answer, and the entry as one text.
Customers often use the answer's words ("do you take paypal"), not the
question's. Sentence encoders (encoders.py: all-MiniLM-L6-v2, or a fine-tuned
copy, and all-mpnet-base-v2) score every part; their scores are averaged.

Below the confidence threshold the avatar offers a person instead of guessing;
two entries too close to call get a short clarifying question; two questions
in one turn get both answers.
"""
from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from ..messages import Answer
from ..numbers import numbers_as_digits
from ..speak.sentences import split_sentences
from .faq import FaqEntry
from .head import IntentHead, combined

SMALL_TALK = (
    FaqEntry("Hello", "Hello! How can I help you today?", ("Hi there", "Good morning", "Hey", "Good afternoon"), "happy"),
    FaqEntry("Thank you", "You're welcome! Is there anything else I can help with?", ("Thanks a lot", "Thanks, that helps", "Great, thank you"), "happy"),
    FaqEntry("Goodbye", "Goodbye, and have a great day!", ("Bye", "See you", "That's all, bye"), "happy"),
)
HUMAN_REQUEST = FaqEntry(
    "Can I talk to a person?",
    "Of course. Let me connect you to a person.",
    ("I want to speak to a human", "Connect me to an agent", "Can I talk to someone real?", "Give me a real person",
     "I want to talk to a real person", "Put me through to customer service staff"),
    "neutral",
)
BUILT_IN = (*SMALL_TALK, HUMAN_REQUEST)

FOLLOW_UP = re.compile(r"^\s*(and|also|what about|how about|what if|but|or|on|for|in|at)\b", re.IGNORECASE)
FOLLOW_UP_MARGIN = 0.15  # how far under the threshold a follow-up alone may score for the entry it is read with
# Built-ins score on short phrasings alone, which sit closer to any short sentence than a whole entry does.
BUILT_IN_HANDICAP = 0.1
CLARIFY_MARGIN = 0.02  # two entries closer than this are asked about, not guessed between
# Where one turn may hold two questions: "how much is shipping and how long does it take".
QUESTION_JOINS = re.compile(r"\?\s+|\s+(?:and|also|plus|and also)\s+(?=(?:how|what|when|where|why|who|which|can|could|do|does|is|are|will|would|should|i|my)\b)", re.IGNORECASE)
FIRST = re.compile(r"\b(first|former|1st|number one|the one before)\b", re.IGNORECASE)
SECOND = re.compile(r"\b(second|latter|2nd|number two|last one|other one)\b", re.IGNORECASE)


def is_follow_up(text: str) -> bool:
    """Short and elliptical, like "and on Sundays?" or "what about Canada?": it leans on the previous question."""
    return len(text.split()) <= 6 and FOLLOW_UP.match(text) is not None


def entry_text(entry: FaqEntry) -> str:
    """The whole entry as one text, for matching and for fine-tuning."""
    tags = f" ({', '.join(entry.tags)})" if entry.tags else ""
    return f"{entry.question}{tags} {entry.answer}"


def answer_sentences(entry: FaqEntry) -> list[str]:
    return split_sentences(entry.answer, max_chars=10_000, first_max_chars=10_000)


class EntryScorer:
    """Scores texts against whole entries: the best of the ways to ask, the entry text, and the best answer sentence, averaged.

    Built-in small talk and the request for a person are scored on their phrasings alone (their answers say nothing of a topic).
    """

    def __init__(self, entries: Sequence[FaqEntry], encoder, built_in: int = 0) -> None:
        self.entries = list(entries)
        self._encoder = encoder
        asks, ask_owner, sentences, sentence_owner = [], [], [], []
        for index, entry in enumerate(self.entries):
            for text in entry.phrasings:
                asks.append(text)
                ask_owner.append(index)
            if index < len(self.entries) - built_in:
                for text in answer_sentences(entry):
                    sentences.append(text)
                    sentence_owner.append(index)
        self._topical = np.arange(len(self.entries)) < len(self.entries) - built_in
        self._seen: LRUCache[str, np.ndarray] = LRUCache(512)  # a customer's words are scored again (follow-ups, clarifications)
        self._seen_lock = threading.Lock()
        self._ask_owner, self._sentence_owner = np.array(ask_owner), np.array(sentence_owner, dtype=int)
        self._asks = self.embed(asks)
        self._sentences = self.embed(sentences) if sentences else np.zeros((0, self._asks.shape[1]), np.float32)
        self._entries = self.embed([entry_text(e) for e in self.entries])

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Numbers read as digits on both sides: "ten countries" and "10 countries" are one question."""
        texts = [numbers_as_digits(t) for t in texts]
        return np.asarray(self._encoder.encode(texts, normalize_embeddings=True, convert_to_numpy=True), np.float32)

    def embed_query(self, texts: Sequence[str]) -> np.ndarray:
        """`embed`, each text once: what was said is often scored again."""
        with self._seen_lock:
            found = {t: self._seen[t] for t in texts if t in self._seen}
        missing = list(dict.fromkeys(t for t in texts if t not in found))
        if missing:
            for text, vector in zip(missing, self.embed(missing)):
                found[text] = vector
            with self._seen_lock:
                for text in missing:
                    self._seen[text] = found[text]
        return np.stack([found[t] for t in texts])

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), len(entries)) scores."""
        queries = self.embed_query(texts)
        ask = _best_per_owner(queries @ self._asks.T, self._ask_owner, len(self.entries))
        sentence = _best_per_owner(queries @ self._sentences.T, self._sentence_owner, len(self.entries))
        whole = queries @ self._entries.T
        topical = (ask + whole + sentence) / 3
        return np.where(self._topical, topical, ask - BUILT_IN_HANDICAP).astype(np.float32)


class MeanScorer:
    """The average of several scorers over the same entries: two encoders err on different wordings."""

    def __init__(self, scorers: Sequence[EntryScorer]) -> None:
        self.scorers = list(scorers)
        self.entries = self.scorers[0].entries

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return np.mean([scorer.scores(texts) for scorer in self.scorers], axis=0).astype(np.float32)


class HeadScorer:
    """Entry probabilities from a classifier head (head.py) over the scorers' query embeddings side by side; the
    scorers keep embedding (and caching) what was said, the head decides."""

    def __init__(self, scorers: Sequence[EntryScorer], head: IntentHead) -> None:
        self.scorers = list(scorers)
        self.entries = self.scorers[0].entries
        self.head = head

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        return self.head.probabilities(combined([scorer.embed_query(texts) for scorer in self.scorers]))


def entry_scorer(entries: Sequence[FaqEntry], encoders: Sequence, built_in: int = 0) -> EntryScorer | MeanScorer:
    if not encoders:
        raise ValueError("FAQ matching needs at least one sentence encoder (answer.encoders)")
    scorers = [EntryScorer(entries, encoder, built_in) for encoder in encoders]
    return scorers[0] if len(scorers) == 1 else MeanScorer(scorers)


@dataclass(frozen=True)
class FastGate:
    """When the first encoder alone decides (calibrated per FAQ version, `calibrate.choose_fast_gate`): its best entry
    scores at least `answer_above` and leads the next by `margin` (the pair of encoders would answer it too), or its
    best scores below `handoff_below` (the pair would hand off). The rest is read by every encoder."""

    answer_above: float
    margin: float
    handoff_below: float


def _best_per_owner(similarities: np.ndarray, owner: np.ndarray, count: int) -> np.ndarray:
    best = np.full((similarities.shape[0], count), -1.0, np.float32)
    for column, index in enumerate(owner):
        np.maximum(best[:, index], similarities[:, column], out=best[:, index])
    return best


class FaqAnswerer:
    """`encoders`: the sentence encoders whose scores are averaged; `scorer`: another scorer over the same entries instead
    (the BM25 baseline); `heads`: a fine-tuned version's classifier heads, over every encoder and over the first alone
    (its fast gate), whose probabilities then decide instead of the averaged cosines."""

    def __init__(self, entries: list[FaqEntry], encoders: Sequence = (), threshold: float = 0.5, handoff_text: str = "",
                 clarify_margin: float = CLARIFY_MARGIN, scorer=None, gate: FastGate | None = None,
                 heads: tuple[IntentHead, IntentHead] | None = None) -> None:
        self.entries = [*entries, *BUILT_IN]
        self.encoders = list(encoders or ())
        self.threshold = threshold
        self.clarify_margin = clarify_margin
        self.handoff_text = handoff_text or "Let me connect you to a person who can help."
        self.scorer = scorer or entry_scorer(self.entries, encoders, built_in=len(BUILT_IN))
        self.embedders = self.scorer.scorers if isinstance(self.scorer, MeanScorer) else [self.scorer]
        self.fast = self.embedders[0] if len(self.embedders) > 1 else None  # the first, fastest encoder
        if heads is not None:
            self.use_heads(*heads)
        self.gate = gate

    def use_heads(self, head: IntentHead, fast_head: IntentHead | None) -> None:
        """Decide with classifier heads from now on: `head` over every encoder, `fast_head` over the first alone."""
        self.scorer = HeadScorer(self.embedders, head)
        self.fast = HeadScorer(self.embedders[:1], fast_head) if fast_head is not None and len(self.embedders) > 1 else None

    def features(self, texts: Sequence[str], first_only: bool = False) -> np.ndarray:
        """What a classifier head reads: every encoder's embedding side by side (or the first encoder's alone)."""
        return combined([scorer.embed_query(texts) for scorer in self.embedders[: 1 if first_only else None]])

    def scores(self, text: str) -> np.ndarray:
        """Score per entry."""
        return self.scorer.scores([text])[0]

    def answer(self, text: str, previous: str | None = None) -> Answer:
        """The best answer for one turn; `previous` is the customer's previous turn, for follow-ups and clarifications."""
        text = text.strip()
        if not text:
            return self._handoff(0.0)
        if not (previous and is_follow_up(text)) and not self._asked_which(previous) and len(QUESTION_JOINS.split(text)) == 1:
            quick = self._quick(text)
            if quick is not None:
                return quick
        scores = self.scores(text)
        if previous:
            resolved = self._resolve_clarification(text, scores, previous)
            if resolved is not None:
                return resolved
        single = self._decide(scores)
        if single.handoff and single.matched_question is None and previous and is_follow_up(text):
            together = self.scores(f"{previous} {text}")
            index = int(np.argmax(together))
            # The previous question must not carry the reply alone: the follow-up itself has to lean the same way.
            if together[index] >= self.threshold and scores[index] >= self.threshold - FOLLOW_UP_MARGIN:
                return self._reply(index, float(together[index]))
        both = self._two_questions(text, scores)
        asked_for_a_person = single.handoff and single.matched_question is not None
        return both if both is not None and not asked_for_a_person else single

    def answer_each(self, texts: Sequence[str], batch: int = 256) -> list[Answer]:
        """`answer` for each text on its own, as a call would; their words are embedded a batch at a time first, which
        costs a fraction of embedding them one by one (the scorers keep the last 512 texts they embedded)."""
        answers: list[Answer] = []
        for start in range(0, len(texts), batch):
            chunk = texts[start:start + batch]
            said = [t.strip() for t in chunk if t.strip()]
            if said:
                self.scorer.scores(said)
            answers += [self.answer(t) for t in chunk]
        return answers

    def fast_decision(self, text: str) -> tuple[str, int, float] | None:
        """("answer", entry, score) or ("handoff", -1, score) when the first encoder alone decides under the gate; else None.
        The score is that encoder's, not the pair's average."""
        if self.fast is None or self.gate is None:
            return None
        scores = self.fast.scores([text])[0]
        first, second = np.argsort(-scores)[:2]
        if scores[first] >= self.gate.answer_above and scores[first] - scores[second] >= self.gate.margin:
            return "answer", int(first), float(scores[first])
        if scores[first] < self.gate.handoff_below:
            return "handoff", -1, float(scores[first])
        return None

    def _quick(self, text: str) -> Answer | None:
        decision = self.fast_decision(text)
        if decision is None:
            return None
        kind, index, score = decision
        return self._reply(index, score) if kind == "answer" else self._handoff(score)

    def _asked_which(self, previous: str | None) -> bool:
        """Whether the previous turn may have got "do you mean X or Y?" (then this one may be its answer)."""
        return bool(previous) and self.fast_decision(previous) is None

    def _decide(self, scores: np.ndarray) -> Answer:
        order = np.argsort(-scores)
        first, second = int(order[0]), int(order[1])
        if scores[first] < self.threshold:
            return self._handoff(float(scores[first]))
        if scores[second] >= self.threshold and scores[first] - scores[second] < self.clarify_margin and self._topical(first, second):
            return self._clarify(first, second, float(scores[first]))
        return self._reply(first, float(scores[first]))

    def _topical(self, *indices: int) -> bool:
        return all(self.entries[i] not in BUILT_IN for i in indices)

    def _two_questions(self, text: str, whole: np.ndarray) -> Answer | None:
        """Both answers when the turn splits into two parts that each match a different entry better than the whole does."""
        parts = [p.strip(" ,.?") for p in QUESTION_JOINS.split(text)]
        if len(parts) != 2 or min(len(p.split()) for p in parts) < 2:
            return None
        scores = self.scorer.scores(parts)
        first, second = int(np.argmax(scores[0])), int(np.argmax(scores[1]))
        if first == second or not self._topical(first, second):
            return None
        if min(scores[0, first], scores[1, second]) < self.threshold or max(scores[0, first], scores[1, second]) <= whole.max():
            return None
        a, b = self.entries[first], self.entries[second]
        confidence = float(min(scores[0, first], scores[1, second]))
        return Answer(f"{a.answer} {b.answer}", a.emotion, confidence, False, a.question, matched=(a.question, b.question))

    def _resolve_clarification(self, text: str, scores: np.ndarray, previous: str) -> Answer | None:
        """After "do you mean X or Y?", "the first one" or words of one option answer that option."""
        asked = self._decide(self.scores(previous))
        if not asked.options:
            return None
        options = [next(i for i, e in enumerate(self.entries) if e.question == q) for q in asked.options]
        if FIRST.search(text) and not SECOND.search(text):
            return self._reply(options[0], float(scores[options[0]]))
        if SECOND.search(text) and not FIRST.search(text):
            return self._reply(options[1], float(scores[options[1]]))
        chosen = max(options, key=lambda i: scores[i])
        if int(np.argmax(scores)) in options or scores[chosen] >= self.threshold - FOLLOW_UP_MARGIN:
            return self._reply(chosen, float(scores[chosen]))
        return None

    def _clarify(self, first: int, second: int, confidence: float) -> Answer:
        a, b = self.entries[first].question, self.entries[second].question
        text = f"Just to be sure, which do you mean: {a.rstrip('?.')}? Or: {b.rstrip('?.')}?"
        return Answer(text, "neutral", confidence, False, None, options=(a, b))

    def _handoff(self, confidence: float) -> Answer:
        return Answer(self.handoff_text, "apologetic", confidence, True, None)

    def _reply(self, index: int, confidence: float) -> Answer:
        entry = self.entries[index]
        return Answer(entry.answer, entry.emotion, confidence, entry is HUMAN_REQUEST, entry.question, matched=(entry.question,))
