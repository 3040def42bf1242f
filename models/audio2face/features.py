"""What the face model hears: features shared by training and inference, one kind per trained model.

Two kinds, named in the model card (`features.kind`):
- `logmel`: 80 log-mel bins at 100 fps, numpy. No per-utterance normalisation: every frame depends only
  on its own 25 ms window, so streaming gives exactly the whole-utterance frames.
- `whisper`: the Whisper tiny.en encoder (CTranslate2, the model the transcriber already ships), 384-d at
  50 fps (`encoder.py`). Trained on 680k hours of many speakers, it carries across voices better.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import numpy as np

from models.audio import SPEECH_RATE, resample

SAMPLE_RATE = SPEECH_RATE
HOP = 160  # 10 ms
WINDOW = 400  # 25 ms
N_FFT = 512
N_MELS = 80
LOG_FLOOR = 1e-5
# Half a window of leading zeros puts frame i's centre at exactly i * 10 ms.
LEAD = WINDOW // 2


def to_model_rate(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    return resample(audio, sample_rate, SAMPLE_RATE)


@lru_cache(maxsize=1)
def mel_filters() -> np.ndarray:
    """Slaney-style triangular filters, 0..8 kHz, [N_MELS, N_FFT // 2 + 1]."""

    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def mel_to_hz(m):
        return 700.0 * (10 ** (np.asarray(m) / 2595.0) - 1.0)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_points = mel_to_hz(np.linspace(hz_to_mel(40.0), hz_to_mel(7600.0), N_MELS + 2))
    filters = np.zeros((N_MELS, len(fft_freqs)), np.float32)
    for i in range(N_MELS):
        lo, mid, hi = mel_points[i : i + 3]
        up = (fft_freqs - lo) / (mid - lo)
        down = (hi - fft_freqs) / (hi - mid)
        filters[i] = np.maximum(0, np.minimum(up, down)) * (2.0 / (hi - lo))
    return filters


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    return np.hanning(WINDOW + 1)[:-1].astype(np.float32)


def log_mel_frames(padded: np.ndarray) -> np.ndarray:
    """Log-mel of every complete window in already-led audio: [frames, N_MELS]."""
    n = (len(padded) - WINDOW) // HOP + 1
    if n <= 0:
        return np.zeros((0, N_MELS), np.float32)
    idx = np.arange(WINDOW)[None, :] + HOP * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(padded[idx] * _window(), N_FFT)) ** 2
    return np.log(spec @ mel_filters().T + LOG_FLOOR).astype(np.float32)


def log_mel(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Whole-utterance features, frame i centred at i * 10 ms."""
    audio = to_model_rate(audio, sample_rate)
    return log_mel_frames(np.concatenate([np.zeros(LEAD, np.float32), audio]))


class StreamingLogMel:
    """Feeds audio in any chunk sizes; yields exactly the frames log_mel() would."""

    def __init__(self) -> None:
        self._buffer = np.zeros(LEAD, np.float32)

    def push(self, audio16k: np.ndarray) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, np.asarray(audio16k, np.float32)])
        feats = log_mel_frames(self._buffer)
        self._buffer = self._buffer[len(feats) * HOP :]
        return feats

    def flush(self) -> np.ndarray:
        """Nothing is held back: a partial window makes no frame, in the whole utterance either."""
        return np.zeros((0, N_MELS), np.float32)


def silence_frame() -> np.ndarray:
    return np.full(N_MELS, np.log(LOG_FLOOR), np.float32)


# The network emits 50 poses a second: pose k is centred at k / OUTPUT_FPS seconds.
OUTPUT_FPS = 50


def output_frames(n_samples: int) -> int:
    """Poses for 16 kHz audio of n_samples: pose k at k / OUTPUT_FPS seconds, for every k inside the audio."""
    return -(-n_samples // (SAMPLE_RATE // OUTPUT_FPS))


class FeatureStream(Protocol):
    def push(self, audio16k: np.ndarray) -> np.ndarray: ...  # the frames this audio completes, [n, dim]

    def flush(self) -> np.ndarray: ...  # the frames still held back, as if silence followed


class Features(Protocol):
    """One kind of features: frame i of `stride` frames per pose is centred at i / (OUTPUT_FPS * stride) s."""

    kind: str
    dim: int
    stride: int  # feature frames per pose
    look_ahead_s: float  # how much later audio a streamed frame waits for

    def __call__(self, audio16k: np.ndarray) -> np.ndarray: ...  # whole utterance, [frames, dim]

    def silence(self) -> np.ndarray: ...  # the frame the network is padded with, [dim]

    def stream(self) -> FeatureStream: ...


class LogMelFeatures:
    kind, dim, stride, look_ahead_s = "logmel", N_MELS, 2, 0.0

    def __call__(self, audio16k: np.ndarray) -> np.ndarray:
        return log_mel(audio16k)

    def silence(self) -> np.ndarray:
        return silence_frame()

    def stream(self) -> StreamingLogMel:
        return StreamingLogMel()
