"""Acoustic augmentation so a model trained on clean TTS copes with real rooms and phones."""
from __future__ import annotations

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

from models.audio import resample

from ..features import SAMPLE_RATE
from .visemes import Phone


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    spectrum = np.fft.rfft(rng.standard_normal(n))
    spectrum /= np.sqrt(np.maximum(np.arange(len(spectrum)), 1))
    noise = np.fft.irfft(spectrum, n)
    return noise / (np.std(noise) + 1e-9)


def _room_impulse(rt60: float, rng: np.random.Generator) -> np.ndarray:
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0
    ir = np.concatenate([[1.0], 0.4 * tail / (np.abs(tail).max() + 1e-9)])
    return ir / np.sqrt(np.sum(ir**2))


def augment(audio: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """A random mix of room reverb, band limiting, noise and gain; returns audio and what was done."""
    out = audio.astype(np.float64)
    done: dict = {}
    if rng.random() < 0.5:
        rt60 = float(rng.uniform(0.15, 0.6))
        out = fftconvolve(out, _room_impulse(rt60, rng))[: len(out)]
        done["rt60"] = round(rt60, 3)
    if rng.random() < 0.3:
        sos = butter(4, [300, 3400], btype="bandpass", fs=SAMPLE_RATE, output="sos")
        out = sosfilt(sos, out)
        done["telephone"] = True
    if rng.random() < 0.7:
        snr = float(rng.uniform(5, 35))
        noise = pink_noise(len(out), rng) if rng.random() < 0.5 else rng.standard_normal(len(out))
        signal_rms = np.sqrt(np.mean(out**2) + 1e-12)
        out = out + noise * signal_rms / (10 ** (snr / 20))
        done["snr_db"] = round(snr, 1)
    gain_db = float(rng.uniform(-18, 6))
    out = out * 10 ** (gain_db / 20)
    done["gain_db"] = round(gain_db, 1)
    peak = np.abs(out).max()
    if peak > 0.99:
        out *= 0.99 / peak
    return out.astype(np.float32), done


def perturb_speed(audio: np.ndarray, phones: list[Phone], factor: float) -> tuple[np.ndarray, list[Phone]]:
    """Speech played `factor` times as fast, pitch moving with it (Kaldi's speed perturbation); the phones keep in step."""
    out = resample(audio, round(SAMPLE_RATE * factor), SAMPLE_RATE)
    duration = len(out) / SAMPLE_RATE
    return out, [Phone(p.phone, min(p.start / factor, duration), min(p.end / factor, duration)) for p in phones]


def non_speech(rng: np.random.Generator, seconds: float) -> tuple[np.ndarray, str]:
    """Audio where nobody speaks: digital silence, hiss, room rumble or mains hum, at -80 to -30 dBFS."""
    n = int(seconds * SAMPLE_RATE)
    kind = ("silence", "hiss", "rumble", "hum")[int(rng.integers(4))]
    if kind == "silence":
        return np.zeros(n, np.float32), kind
    if kind == "hiss":
        noise = rng.standard_normal(n)
    elif kind == "rumble":
        noise = pink_noise(n, rng)
    else:
        t = np.arange(n) / SAMPLE_RATE
        mains = float(rng.choice([50.0, 60.0]))
        noise = sum(np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 6.3)) / k for k in range(1, 6)) + 0.1 * rng.standard_normal(n)
    level = 10 ** (float(rng.uniform(-80, -30)) / 20)
    return (noise * level / (np.std(noise) + 1e-9)).astype(np.float32), kind
