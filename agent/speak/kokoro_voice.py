"""Kokoro-82M (int8 ONNX, Apache-2.0): natural voices, 28 English speakers, run directly with onnxruntime.

`scripts/fetch_kokoro.sh` (run by setup) puts the model, its phoneme table and
the voice vectors in `.venv/share/kokoro`. Phonemes come from the espeak-ng
program, as for Piper. Each voice is a table of style vectors, one per phoneme
count. About real time on one busy CPU core (README, "Voices"): use it with a
GPU or spare cores; Piper "joe" stays the fast default.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from .phonemes import VoiceUnavailable, espeak_ipa, require_espeak
from models.devices import onnx_session

SAMPLE_RATE = 24000
MAX_PHONEMES = 510
KOKORO_DIR = Path(sys.prefix) / "share" / "kokoro"


def kokoro_voices(folder: Path = KOKORO_DIR) -> list[str]:
    """The installed voice names (af_heart, am_michael, bf_emma, ...); empty when Kokoro is not installed."""
    if not (folder / "voices.npz").exists():
        return []
    with np.load(folder / "voices.npz") as voices:
        return sorted(voices.files)


class KokoroVoice:
    sample_rate = SAMPLE_RATE

    def __init__(self, name: str, threads: int = 1, length_scale: float = 1.0, folder: Path = KOKORO_DIR) -> None:
        require_espeak()
        if not (folder / "kokoro.onnx").exists():
            raise VoiceUnavailable(f"Kokoro is not installed in {folder} (bash scripts/fetch_kokoro.sh)")
        with np.load(folder / "voices.npz") as voices:
            if name not in voices.files:
                raise VoiceUnavailable(f"no Kokoro voice {name!r}; installed: {', '.join(sorted(voices.files))}")
            self._styles = voices[name]
        self.name = name
        self._vocab = json.loads((folder / "vocab.json").read_text())
        self._speed = np.array([1.0 / length_scale], np.float32)  # Piper's length_scale >1 is slower; Kokoro's speed >1 is faster
        self._espeak_voice = "en-gb" if name.startswith("b") else "en-us"
        self._session = onnx_session(folder / "kokoro.onnx", threads)

    def synthesize(self, text: str) -> np.ndarray:
        """Mono float32 audio at 24 kHz; empty for text with nothing to say."""
        if not any(ch.isalnum() for ch in text):
            return np.zeros(0, np.float32)
        tokens = [self._vocab[c] for c in espeak_ipa(text, self._espeak_voice) if c in self._vocab][:MAX_PHONEMES]
        if not tokens:
            return np.zeros(0, np.float32)
        style = self._styles[min(len(tokens), len(self._styles)) - 1]
        audio = self._session.run(None, {"tokens": np.array([[0, *tokens, 0]], np.int64), "style": style, "speed": self._speed})[0]
        return np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
