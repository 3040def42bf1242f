"""The one way speech becomes a face: a sentence's audio -> AnimatedSpeech for the playout.

Live calls, the offline MP4 render and the benchmarks all go through here, then
through the avatar output port (`output/port.py`: the playout hands out audio and
the pose for it, the composer adds emotion easing and idle life per video frame).
"""
from __future__ import annotations

import numpy as np

from models.audio import resample
from ..messages import OUTPUT_RATE, AnimatedSpeech


def animate_sentence(face_model, turn_id: int, text: str, audio: np.ndarray, sample_rate: int,
                     emotion: str = "neutral", is_last: bool = True) -> AnimatedSpeech:
    """The face model's poses for the audio, and the audio at the playout's rate."""
    weights = face_model.animate(audio, sample_rate, emotion)
    return AnimatedSpeech(turn_id, text, resample(audio, sample_rate, OUTPUT_RATE), OUTPUT_RATE, weights,
                          face_model.fps, emotion, is_last)
