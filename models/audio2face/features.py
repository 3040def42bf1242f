"""Log-mel features shared by data preparation, training and streaming inference.

Computed with numpy so serving needs no torch. No per-utterance normalisation:
every frame depends only on its own 25 ms window, which makes streaming output
identical to whole-utterance output.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from models.audio import resample

SAMPLE_RATE = 16000
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


def silence_frame() -> np.ndarray:
    return np.full(N_MELS, np.log(LOG_FLOOR), np.float32)


# The network emits one pose per OUTPUT_STRIDE feature frames: pose k is centred at k / OUTPUT_FPS seconds.
FEATURE_FPS = SAMPLE_RATE // HOP
OUTPUT_STRIDE = 2
OUTPUT_FPS = FEATURE_FPS // OUTPUT_STRIDE


def output_times(n_feature_frames: int) -> np.ndarray:
    return np.arange((n_feature_frames + OUTPUT_STRIDE - 1) // OUTPUT_STRIDE) / OUTPUT_FPS
