"""The feature kinds a face model can hear, by the name its model card gives (`features.kind`)."""
from __future__ import annotations

from .encoder import WhisperEncoderFeatures
from .features import Features, LogMelFeatures

FEATURE_KINDS = ("whisper", "logmel")


def make_features(kind: str, device: str = "cpu", threads: int = 1, whisper=None) -> Features:
    """`whisper`: a loaded `models.whisper.Whisper` tiny.en to hear through (shared with the transcriber), for kind whisper."""
    if kind == "logmel":
        return LogMelFeatures()
    if kind == "whisper":
        return WhisperEncoderFeatures(device=device, threads=threads, whisper=whisper)
    raise ValueError(f"unknown feature kind {kind!r}: use one of {', '.join(FEATURE_KINDS)}")
