"""Audio-driven lip-sync: one ARKit pose per video frame from loudness and spectral shape.

This works for any voice (our TTS, another TTS, a human operator). Loudness
opens the jaw; where the energy sits in the spectrum tells rounded vowels
(energy low, "oo") from spread ones (energy high, "ee"); quiet frames close
the lips. Attack is faster than release, like real articulators.
"""
from __future__ import annotations

import numpy as np

from .arkit import COUNT, INDEX


class SpectralLipSync:
    def __init__(self, fps: int = 25, floor_db: float = -48.0, range_db: float = 32.0) -> None:
        self.fps = fps
        self.floor_db = floor_db
        self.range_db = range_db

    def features(self, audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: loudness in 0..1, spectral 'brightness' in 0..1, and high-band (fricative) share."""
        hop = sample_rate / self.fps
        n_frames = max(1, int(np.ceil(len(audio) / hop)))
        win = int(2 * hop)
        nfft = 1 << int(np.ceil(np.log2(win)))
        freqs = np.fft.rfftfreq(nfft, 1.0 / sample_rate)
        vowel_band = (freqs >= 250) & (freqs < 3000)
        fric_band = freqs >= 4000
        window = np.hanning(win).astype(np.float32)
        padded = np.concatenate([np.zeros(win // 2, np.float32), audio.astype(np.float32), np.zeros(win, np.float32)])
        loud = np.zeros(n_frames, np.float32)
        bright = np.zeros(n_frames, np.float32)
        fric = np.zeros(n_frames, np.float32)
        for i in range(n_frames):
            start = int(round(i * hop))
            seg = padded[start : start + win]
            rms = float(np.sqrt(np.mean(seg**2) + 1e-12))
            db = 20 * np.log10(rms + 1e-9)
            loud[i] = np.clip((db - self.floor_db) / self.range_db, 0.0, 1.0)
            spec = np.abs(np.fft.rfft(seg * window, nfft)) ** 2
            v = spec[vowel_band]
            total = v.sum() + 1e-12
            centroid = float((freqs[vowel_band] * v).sum() / total)
            bright[i] = np.clip((centroid - 700.0) / 1300.0, 0.0, 1.0)
            fric[i] = float(spec[fric_band].sum() / (spec.sum() + 1e-12))
        return loud, bright, fric

    def __call__(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """[frames, 52] weights, frame i covering audio around i / fps seconds."""
        loud, bright, fric = self.features(audio, sample_rate)
        voiced = loud * (1.0 - np.clip(fric * 2.0, 0.0, 0.8))
        jaw = _smooth(np.clip(voiced**1.3 * 0.75, 0, 1), attack=0.7, release=0.45)
        rounded = _smooth(np.clip((0.45 - bright) / 0.45, 0, 1) * voiced, attack=0.6, release=0.4)
        spread = _smooth(np.clip((bright - 0.5) / 0.5, 0, 1) * voiced, attack=0.6, release=0.4)
        closed = _smooth(np.clip(0.35 - loud, 0, 0.35) / 0.35, attack=0.5, release=0.5)
        w = np.zeros((len(jaw), COUNT), np.float32)
        w[:, INDEX["jawOpen"]] = jaw
        w[:, INDEX["mouthFunnel"]] = 0.55 * rounded
        w[:, INDEX["mouthPucker"]] = 0.45 * rounded
        for side in ("Left", "Right"):
            w[:, INDEX[f"mouthStretch{side}"]] = 0.35 * spread
            w[:, INDEX[f"mouthSmile{side}"]] = 0.15 * spread
            w[:, INDEX[f"mouthLowerDown{side}"]] = 0.4 * jaw
            w[:, INDEX[f"mouthUpperUp{side}"]] = 0.2 * jaw
        w[:, INDEX["mouthClose"]] = 0.15 * closed * (1 - jaw)
        return np.clip(w, 0.0, 1.0)


def _smooth(x: np.ndarray, attack: float, release: float) -> np.ndarray:
    out = np.empty_like(x)
    prev = 0.0
    for i, v in enumerate(x):
        k = attack if v > prev else release
        prev = prev + k * (v - prev)
        out[i] = prev
    return out
