"""Streaming voice activity detection with the Silero VAD model that faster-whisper ships."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.audio import SPEECH_RATE
from models.devices import onnx_session

WINDOW = 512  # samples per decision (32 ms), fixed by the model
CONTEXT = 64  # samples of the previous window the model sees


def silero_model_path() -> Path:
    import faster_whisper

    return Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"


class SileroVad:
    """Speech probability per 32 ms window, keeping the recurrent state between calls."""

    def __init__(self) -> None:
        self._session = onnx_session(silero_model_path(), threads=1, device="cpu")  # 32 ms windows: a GPU would only add latency
        self.reset()

    def reset(self) -> None:
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(CONTEXT, np.float32)

    def __call__(self, window: np.ndarray) -> float:
        if window.shape != (WINDOW,):
            raise ValueError(f"expected {WINDOW} samples, got {window.shape}")
        x = np.concatenate([self._context, window.astype(np.float32)])[None, :]
        prob, self._h, self._c = self._session.run(None, {"input": x, "h": self._h, "c": self._c})
        self._context = window[-CONTEXT:].astype(np.float32)
        return float(np.asarray(prob).reshape(-1)[0])
