"""Playout: the one owner of what the avatar is saying right now, and of the audio clock.

The audio track pulls 20 ms frames from here in real time. Each pose belongs to the
audio it was made for: the server-video sink draws the pose of the audio most
recently handed out (the mouth never runs ahead of the sound), and the browser sink
sends the pose of audio that is about to be handed out (`speech_pose(ahead)`),
tagged with that audio's position on the clock.
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import numpy as np

from models.arkit import COUNT
from models.audio import to_pcm16
from ..messages import FRAME_SAMPLES, OUTPUT_RATE, AnimatedSpeech

REST = np.zeros(COUNT, np.float32)


@dataclass(frozen=True)
class PlayoutEvent:
    kind: str  # "started" (a sentence began playing), "finished" (the reply ended), "flushed"
    turn_id: int
    text: str = ""
    at: float = 0.0


class Playout:
    def __init__(self, on_event: Callable[[PlayoutEvent], None] | None = None,
                 on_audio: Callable[[np.ndarray], None] | None = None) -> None:
        self._queue: deque[AnimatedSpeech] = deque()
        self._current: AnimatedSpeech | None = None
        self._offset = 0  # samples of the current sentence already handed out
        self._pose = REST
        self._on_event = on_event or (lambda event: None)
        self._on_audio = on_audio  # sees every frame handed out (the echo canceller's reference)
        self.samples_out = 0  # the audio clock: samples handed out since the call began, silence included

    @property
    def speaking(self) -> bool:
        return self._current is not None or bool(self._queue)

    @property
    def seconds_out(self) -> float:
        return self.samples_out / OUTPUT_RATE

    def enqueue(self, speech: AnimatedSpeech) -> None:
        if speech.sample_rate != OUTPUT_RATE:
            raise ValueError(f"playout expects {OUTPUT_RATE} Hz audio, got {speech.sample_rate}")
        self._queue.append(speech)

    def flush(self) -> int | None:
        """Drops everything queued or playing (barge-in). Returns the interrupted turn, if any."""
        interrupted = self._current.turn_id if self._current else (self._queue[0].turn_id if self._queue else None)
        self._queue.clear()
        self._current = None
        self._offset = 0
        self._pose = REST
        if interrupted is not None:
            self._on_event(PlayoutEvent("flushed", interrupted, at=time.monotonic()))
        return interrupted

    def next_audio_frame(self) -> np.ndarray:
        """The next 20 ms of output as int16 mono; silence when nothing is being said."""
        out = np.zeros(FRAME_SAMPLES, np.float32)
        filled = 0
        while filled < FRAME_SAMPLES:
            if self._current is None:
                if not self._queue:
                    break
                self._current = self._queue.popleft()
                self._offset = 0
                self._on_event(PlayoutEvent("started", self._current.turn_id, self._current.text, time.monotonic()))
            take = min(FRAME_SAMPLES - filled, len(self._current.audio) - self._offset)
            out[filled : filled + take] = self._current.audio[self._offset : self._offset + take]
            filled += take
            self._offset += take
            self._pose = _pose_at(self._current, self._offset)
            if self._offset >= len(self._current.audio):
                finished = self._current
                self._current = None
                if finished.is_last:
                    self._pose = REST
                    self._on_event(PlayoutEvent("finished", finished.turn_id, at=time.monotonic()))
        self.samples_out += FRAME_SAMPLES
        if self._on_audio is not None:
            self._on_audio(out)
        return to_pcm16(out)

    def pose(self) -> np.ndarray:
        """Speech blendshape weights for the audio most recently handed out."""
        return self._pose

    def speech_pose(self, ahead: int) -> tuple[np.ndarray, bool]:
        """(speech pose, speaking) for the audio `ahead` samples past what was handed out, as things stand now."""
        if ahead <= 0:
            return self._pose, self.speaking
        sentences = ([self._current] if self._current is not None else []) + list(self._queue)
        offset = self._offset if self._current is not None else 0
        for speech in sentences:
            left = len(speech.audio) - offset
            if ahead <= left:
                return _pose_at(speech, offset + ahead), True
            ahead -= left
            offset = 0
            if speech.is_last:
                return REST, False
        return REST, False


def _pose_at(speech: AnimatedSpeech, offset: int) -> np.ndarray:
    frame = int(offset / speech.sample_rate * speech.fps)
    return speech.weights[min(frame, len(speech.weights) - 1)]
