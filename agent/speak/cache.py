"""A voice that remembers what it has said.

Replies come from the operator's FAQ, so the same sentences are spoken again
and again: synthesising each once and keeping the audio takes the slowest stage
off the path from the customer's last word to the avatar's first (measured:
0.4-0.6 s a sentence with Piper on one busy core), and saves its CPU on every
repeat. The answers are spoken once in the background at start-up (`warm`).
"""
from __future__ import annotations

import threading
from typing import Iterable

import numpy as np
from cachetools import LRUCache

from models.audio import from_pcm16, to_pcm16
from .. import metrics


class CachedVoice:
    """Wraps any voice (`synthesize(text)`, `sample_rate`); least recently used audio goes first past `max_bytes`."""

    def __init__(self, voice, max_bytes: int = 64 * 2**20) -> None:
        self.voice = voice
        self.sample_rate = voice.sample_rate
        self.max_bytes = max_bytes
        self._audio: LRUCache[str, np.ndarray] = LRUCache(max_bytes, getsizeof=lambda pcm: pcm.nbytes)  # int16: half of float
        self._lock = threading.Lock()  # synthesis runs on several model threads

    def synthesize(self, text: str) -> np.ndarray:
        key = _key(text)
        with self._lock:
            pcm = self._audio.get(key)
        if pcm is not None:
            metrics.SPEECH_CACHE.labels("hit").inc()
            return from_pcm16(pcm)
        metrics.SPEECH_CACHE.labels("miss").inc()
        audio = self.voice.synthesize(text)
        self._store(key, audio)
        return audio

    def _store(self, key: str, audio: np.ndarray) -> None:
        pcm = to_pcm16(audio)
        if pcm.nbytes > self.max_bytes:
            return
        with self._lock:
            if key not in self._audio:
                self._audio[key] = pcm

    def __contains__(self, text: str) -> bool:
        with self._lock:
            return _key(text) in self._audio

    def warm(self, sentences: Iterable[str]) -> int:
        """Speaks the sentences not yet cached, until the cache is full; returns how many were added."""
        added = 0
        for sentence in sentences:
            if sentence in self:
                continue
            if self._audio.currsize >= self.max_bytes:
                break
            self._store(_key(sentence), self.voice.synthesize(sentence))
            added += 1
        return added


def _key(text: str) -> str:
    """The same words with other spacing are the same sentence."""
    return " ".join(text.split())
