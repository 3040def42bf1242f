"""espeak-ng as a voice: instant, robotic, many languages. Run as a separate program (GPL), never linked.

The agent can speak with it (`speak.voice: espeak:<voice>`, e.g. espeak:en-us, espeak:cmn for Mandarin,
where no neural voice is installed); tests and benchmarks use it as a customer who sounds nothing like
the avatar's own voices.
"""
from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np

from models.audio import read_wav
from .phonemes import require_espeak

SAMPLE_RATE = 22_050  # espeak-ng's own


class EspeakVoice:
    sample_rate = SAMPLE_RATE

    def __init__(self, voice: str = "en-us", words_per_minute: int = 150) -> None:
        require_espeak()
        self.voice, self.words_per_minute = voice, words_per_minute

    def synthesize(self, text: str) -> np.ndarray:
        """Mono float32 at 22.05 kHz; empty for text with nothing to say."""
        if not any(ch.isalnum() for ch in text):
            return np.zeros(0, np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "speech.wav"
            subprocess.run(["espeak-ng", "-v", self.voice, "-s", str(self.words_per_minute), "-w", str(path), "--", text],
                           check=True, timeout=30, capture_output=True)
            audio, rate = read_wav(path)
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"espeak-ng wrote {rate} Hz audio, expected {SAMPLE_RATE}")
        return audio
