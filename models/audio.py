"""Audio helpers the model and the agent share: resampling (soxr) and 16-bit WAV files."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

SPEECH_RATE = 16_000  # what every model that hears speech takes: Whisper, the VAD, the turn model, the face model


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """Float audio in -1..1 -> 16-bit PCM (clipped), as WAV files, codecs and WebRTC take it."""
    return (np.clip(np.asarray(audio, np.float32), -1.0, 1.0) * 32767).astype(np.int16)


def from_pcm16(pcm: np.ndarray) -> np.ndarray:
    """16-bit PCM -> float32 in -1..1."""
    return np.asarray(pcm, np.int16).astype(np.float32) / 32768.0


def resample(audio: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """A whole clip from one rate to another (soxr, high quality)."""
    import soxr

    audio = np.asarray(audio, np.float32)
    if source_rate == target_rate or audio.size == 0:
        return audio
    return soxr.resample(audio, source_rate, target_rate, quality="HQ").astype(np.float32)


def stream_resampler(source_rate: int, target_rate: int):
    """For audio that arrives in pieces: `.resample_chunk(piece)` keeps the filter's state between them."""
    import soxr

    return soxr.ResampleStream(source_rate, target_rate, 1, dtype="float32", quality="HQ")


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    """Mono float32 in -1..1 and the sample rate; channels are averaged."""
    try:
        with wave.open(str(path)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            if width != 2:
                raise ValueError(f"{path}: only 16-bit PCM WAV is supported (got {8 * width}-bit)")
            pcm = from_pcm16(np.frombuffer(w.readframes(w.getnframes()), np.int16))
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a readable WAV file ({exc})") from None
    return pcm.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: str | Path, audio: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(to_pcm16(audio).tobytes())
    return Path(path)
