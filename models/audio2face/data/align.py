"""Forced alignment with pocketsphinx (its en-us model ships in the PyPI wheel).

Gives ARPAbet phone timings at 10 ms for speech whose engine does not report
them (Piper, espeak-ng) and for real recordings with a transcript.
"""
from __future__ import annotations

import re

import numpy as np

from models.audio import SPEECH_RATE, to_pcm16

from .visemes import Phone

FRAME_S = 0.01


class AlignmentError(RuntimeError):
    pass


def normalise_text(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z' ]", " ", text.lower())).strip()


class Aligner:
    def __init__(self) -> None:
        from pocketsphinx import Decoder

        # Wide beams: the default ones fail on some robotic espeak-ng voices.
        self._decoder = Decoder(samprate=SPEECH_RATE, bestpath=False, loglevel="FATAL", beam=1e-80, wbeam=1e-60, pbeam=1e-80)

    def known(self, word: str) -> bool:
        return self._decoder.lookup_word(word) is not None

    def align(self, audio16k: np.ndarray, text: str) -> list[Phone]:
        phones = [Phone(p.name, p.start * FRAME_S, (p.start + p.duration) * FRAME_S) for word in self._alignment(audio16k, text) for p in word]
        if not phones:
            raise AlignmentError("no phones aligned")
        return phones

    def words(self, audio16k: np.ndarray, text: str) -> list[tuple[str, float, float]]:
        """(word, start s, end s) of every word of `text` in the audio (pauses, `<sil>`, left out)."""
        return [(w.name, w.start * FRAME_S, (w.start + w.duration) * FRAME_S) for w in self._alignment(audio16k, text)
                if not w.name.startswith(("<", "["))]

    def _alignment(self, audio16k: np.ndarray, text: str):
        words = normalise_text(text)
        missing = [w for w in words.split() if not self.known(w)]
        if missing:
            raise AlignmentError(f"words not in the pronunciation dictionary: {missing}")
        pcm = to_pcm16(audio16k).tobytes()
        d = self._decoder
        try:
            d.set_align_text(words)
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            d.set_alignment()
            d.start_utt()
            d.process_raw(pcm, full_utt=True)
            d.end_utt()
            alignment = d.get_alignment()
        except RuntimeError as exc:
            raise AlignmentError(f"alignment failed: {exc}") from exc
        if alignment is None:
            raise AlignmentError("alignment failed")
        return alignment
