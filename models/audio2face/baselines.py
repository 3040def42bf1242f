"""The two methods the model must beat, run on the same audio.

- LoudnessJaw: the jaw follows the level of the speech (what many avatar SDKs ship).
- RuleVisemes: phones from forced alignment of the known transcript -> viseme
  targets held per phone with a short cross-fade (classic rule-based lip-sync).
  It is given the transcript, which the model never sees.
"""
from __future__ import annotations

import numpy as np

from models.arkit import COUNT, INDEX

from .data.align import Aligner, AlignmentError
from .data.visemes import VISEME_TARGETS
from .features import OUTPUT_FPS, SAMPLE_RATE, to_model_rate


class LoudnessJaw:
    name = "loudness jaw"

    def __call__(self, audio: np.ndarray, sample_rate: int, transcript: str | None = None) -> np.ndarray:
        audio = to_model_rate(audio, sample_rate)
        hop, win = SAMPLE_RATE // OUTPUT_FPS, int(0.04 * SAMPLE_RATE)
        n = int(np.ceil(len(audio) / hop))
        padded = np.concatenate([np.zeros(win // 2, np.float32), audio, np.zeros(win, np.float32)])
        db = np.array([10 * np.log10(np.mean(padded[i * hop : i * hop + win] ** 2) + 1e-10) for i in range(n)])
        level = np.clip((db - (db.max() - 35.0)) / 35.0, 0.0, 1.0)
        jaw = np.convolve(level, np.ones(3) / 3, "same") * 0.6
        poses = np.zeros((n, COUNT), np.float32)
        poses[:, INDEX["jawOpen"]] = jaw
        for side in ("Left", "Right"):
            poses[:, INDEX[f"mouthLowerDown{side}"]] = 0.5 * jaw
        return poses


class RuleVisemes:
    name = "rule-based visemes"

    def __init__(self, crossfade_s: float = 0.06) -> None:
        self._aligner = Aligner()
        self.crossfade = crossfade_s
        self.failures = 0  # clips the aligner could not align: the face stays still, as such a system's would

    def __call__(self, audio: np.ndarray, sample_rate: int, transcript: str | None = None) -> np.ndarray:
        if not transcript:
            raise ValueError("the rule-based baseline needs the transcript")
        audio = to_model_rate(audio, sample_rate)
        n = int(np.ceil(len(audio) / (SAMPLE_RATE // OUTPUT_FPS)))
        try:
            phones = self._aligner.align(audio, transcript)
        except AlignmentError:
            self.failures += 1
            return np.zeros((n, COUNT), np.float32)
        t = np.arange(n) / OUTPUT_FPS
        poses = np.zeros((n, COUNT), np.float32)
        for p in phones:
            poses[(t >= p.start) & (t < p.end)] = VISEME_TARGETS[p.viseme]
        k = max(1, int(round(self.crossfade * OUTPUT_FPS)))
        kernel = np.ones(k) / k
        return np.stack([np.convolve(poses[:, c], kernel, "same") for c in range(COUNT)], axis=1).astype(np.float32)
