"""The face model stage: speech audio -> ARKit poses at the video frame rate, with our trained audio-to-face model.

Works for any voice (our TTS, another TTS, a human operator): the model hears
the audio, it is not told the text. The reply's emotion is an input, so the
expression while speaking comes from the model too.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.audio2face.runtime import WEIGHTS_DIR, FaceModel, resample_poses


class AudioToFace:
    def __init__(self, fps: int = 25, model_dir: Path | None = None, device: str = "auto", threads: int = 1, whisper=None) -> None:
        self.fps = fps
        self.model = FaceModel(model_dir or WEIGHTS_DIR, device=device, threads=threads, whisper=whisper)

    def animate(self, audio: np.ndarray, sample_rate: int, emotion: str = "neutral") -> np.ndarray:
        """[frames, 52] weights, frame i at i / fps seconds, one frame per started 1/fps of audio."""
        n_frames = max(1, int(np.ceil(len(audio) / sample_rate * self.fps)))
        return resample_poses(self.model.animate(audio, sample_rate, emotion), self.fps, n_frames)
