"""The avatar output port: the one thing a call's conversation hands speech to, and the one thing barge-in flushes.

Like LiveKit Agents' avatar output: `capture` a sentence (its audio and the face model's poses),
`flush` on barge-in. The port owns the playout (what is being said, and the audio clock) and the
composer (emotion easing, blinks, gaze, breathing, head sway), and composes each video frame's pose
for its sink: `sinks.ServerVideo` draws it into the call's video track, `sinks.BrowserPoses` sends
it to the page, which draws the same avatar itself. A call, the offline MP4 and the benchmarks all
build one the same way.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from ..messages import OUTPUT_RATE, AnimatedSpeech
from .composer import FaceComposer
from .playout import Playout, PlayoutEvent


@dataclass(frozen=True)
class Pose:
    """The avatar at one moment of the audio clock: `pts` in samples at OUTPUT_RATE since the call began."""

    pts: int
    weights: np.ndarray  # [52] ARKit weights, composed (speech, expression, idle life), 0..1
    head: np.ndarray  # (pitch, yaw, roll), radians


class Sink(Protocol):
    """Where the composed face goes. The port calls these on the event loop."""

    def on_audio(self, samples_out: int) -> None:
        """The audio clock moved on by one 20 ms frame (now at `samples_out`)."""

    def on_speech(self) -> None:
        """A sentence was captured: what was sent ahead for the time it plays may be out of date."""

    def clear(self) -> None:
        """Barge-in: what was sent or drawn ahead must go."""

    def close(self) -> None:
        """Frees what the sink holds; may block (called off the event loop)."""


class AvatarOutput:
    def __init__(self, on_event: Callable[[PlayoutEvent], None] | None = None, on_audio: Callable[[np.ndarray], None] | None = None,
                 fps: int = 25, seed: int = 0) -> None:
        self.playout = Playout(on_event, on_audio)
        self.composer = FaceComposer(seed)
        self.fps = fps
        self.sinks: list[Sink] = []

    def attach(self, sink: Sink) -> None:
        self.sinks.append(sink)

    # ---- what the conversation does ----------------------------------------------------------------------------
    def capture(self, speech: AnimatedSpeech) -> None:
        """Queues a sentence to be said; it plays after the ones before it."""
        self.playout.enqueue(speech)
        for sink in self.sinks:
            sink.on_speech()

    def flush(self) -> int | None:
        """Barge-in: drops what is queued or playing, in the playout and in every sink; returns the interrupted turn."""
        interrupted = self.playout.flush()
        for sink in self.sinks:
            sink.clear()
        return interrupted

    @property
    def speaking(self) -> bool:
        return self.playout.speaking

    # ---- what the media side does ------------------------------------------------------------------------------
    def next_audio_frame(self) -> np.ndarray:
        """The next 20 ms of the avatar's voice (int16 at OUTPUT_RATE); every sink hears the clock move."""
        pcm = self.playout.next_audio_frame()
        for sink in self.sinks:
            sink.on_audio(self.playout.samples_out)
        return pcm

    def compose(self, ahead: int = 0) -> Pose:
        """The pose for the audio `ahead` samples past what was handed out (0: the audio just handed out).

        Composes in clock order: the composer eases expressions frame by frame, so one sink asks.
        """
        speech, speaking = self.playout.speech_pose(ahead)
        pts = self.playout.samples_out + ahead
        weights, head = self.composer.compose(speech, speaking, pts / OUTPUT_RATE)
        return Pose(pts, weights, head)

    def close(self) -> None:
        """Closes every sink (a renderer may take seconds to end: call it off the event loop)."""
        for sink in self.sinks:
            sink.close()
        self.sinks.clear()
