"""Whisper tiny.en's encoder as the face model's ears: 384-d frames at 50 fps (CTranslate2, int8 on the CPU).

The encoder attends over its whole input, so a frame depends on the audio around it. A whole sentence
(what the agent's voice gives) is encoded in one call. Live audio is encoded in overlapping windows:
each window adds HOP_S of new frames, with HISTORY_S of audio before them and LOOK_AHEAD_S after, so a
streamed frame waits for at most HOP_S + LOOK_AHEAD_S of later audio. Frames at the very end of a
window lack the future they were trained with, which is why they are not emitted until later.
"""
from __future__ import annotations

from functools import cached_property

import numpy as np

from models.whisper import Whisper, load_whisper

from .features import OUTPUT_FPS, SAMPLE_RATE

FRAME = SAMPLE_RATE // OUTPUT_FPS  # 320 samples: one encoder frame (two 10 ms mel frames, halved by the encoder)
MAX_FRAMES = 1500  # Whisper's 30 s of positions
HISTORY_S, HOP_S, LOOK_AHEAD_S = 1.0, 0.24, 0.32


class WhisperEncoderFeatures:
    kind, dim, stride, look_ahead_s = "whisper", 384, 1, HOP_S + LOOK_AHEAD_S

    def __init__(self, device: str = "cpu", threads: int = 1, whisper: Whisper | None = None) -> None:
        """`whisper`: the process's loaded tiny.en (the transcriber's), else one of its own."""
        self._whisper = whisper or load_whisper("tiny.en", device, threads)
        if self._whisper.name != "tiny.en":
            raise ValueError(f"the face model hears through Whisper tiny.en's encoder, not {self._whisper.name}")
        self.device = self._whisper.device

    def encode_window(self, audio16k: np.ndarray) -> np.ndarray:
        """[ceil(len / 320), 384]: frame i centred at i * 20 ms of this window (at most 30 s)."""
        n = -(-len(audio16k) // FRAME)
        if n == 0:
            return np.zeros((0, self.dim), np.float32)
        if n > MAX_FRAMES:
            raise ValueError(f"the encoder takes at most {MAX_FRAMES * FRAME / SAMPLE_RATE:.0f} s at once")
        padded = np.zeros(n * FRAME, np.float32)
        padded[: len(audio16k)] = audio16k
        mel = self._whisper.mel(padded, padding=0)  # [80, 2n]: frame j centred at j * 10 ms
        encoded = self._whisper.encode(mel[:, : 2 * n], to_cpu=True)
        return np.asarray(encoded, np.float32)[0, :n]

    def __call__(self, audio16k: np.ndarray) -> np.ndarray:
        audio16k = np.asarray(audio16k, np.float32)
        if len(audio16k) <= MAX_FRAMES * FRAME:
            return self.encode_window(audio16k)
        stream = self.stream()
        return np.concatenate([stream.push(audio16k), stream.flush()])

    @cached_property
    def _silence(self) -> np.ndarray:
        return np.median(self.encode_window(np.zeros(SAMPLE_RATE, np.float32)), axis=0).astype(np.float32)

    def silence(self) -> np.ndarray:
        return self._silence

    def stream(self) -> "WhisperFeatureStream":
        return WhisperFeatureStream(self)


class WhisperFeatureStream:
    """Live audio in any chunk sizes -> encoder frames, in overlapping windows (see the module's note)."""

    def __init__(self, features: WhisperEncoderFeatures) -> None:
        self._features = features
        self._audio = np.zeros(0, np.float32)
        self._first_sample = 0  # the absolute sample index of _audio[0], always a multiple of FRAME
        self._emitted = 0  # frames handed out so far
        self._history, self._hop, self._ahead = (round(s * OUTPUT_FPS) for s in (HISTORY_S, HOP_S, LOOK_AHEAD_S))

    def push(self, audio16k: np.ndarray) -> np.ndarray:
        self._audio = np.concatenate([self._audio, np.asarray(audio16k, np.float32)])
        out = [np.zeros((0, self._features.dim), np.float32)]
        end = self._first_sample + len(self._audio)
        while (self._emitted + self._hop + self._ahead) * FRAME <= end:
            out.append(self._emit(self._emitted + self._hop, (self._emitted + self._hop + self._ahead) * FRAME))
        return np.concatenate(out)

    def flush(self) -> np.ndarray:
        """Every frame of the audio so far, as if silence followed; later audio starts on the next frame."""
        self._audio = np.concatenate([self._audio, np.zeros((-len(self._audio)) % FRAME, np.float32)])
        end = self._first_sample + len(self._audio)
        if end // FRAME <= self._emitted:
            return np.zeros((0, self._features.dim), np.float32)
        return self._emit(end // FRAME, end)

    def _emit(self, last: int, end_sample: int) -> np.ndarray:
        """Frames emitted..last, from one window that starts HISTORY_S before them and ends at end_sample."""
        begin = max(self._first_sample, (self._emitted - self._history) * FRAME)
        window = self._audio[begin - self._first_sample : end_sample - self._first_sample]
        frames = self._features.encode_window(window)[self._emitted - begin // FRAME : last - begin // FRAME]
        self._emitted = last
        keep_from = max(self._first_sample, (self._emitted - self._history) * FRAME)
        self._audio = self._audio[keep_from - self._first_sample :]
        self._first_sample = keep_from
        return frames
