"""The port's two sinks: the face drawn on the server into the call's video, or sent to the page as poses to draw.

- `ServerVideo`: each video frame's pose for the audio just handed out, drawn by the call's renderer
  (a worker process, `render/frames.py`); the video track paces and wraps the images.
- `BrowserPoses`: each video frame's pose, sent `LEAD_S` before its audio is handed out and tagged with
  that audio's place on the clock, so the page shows the pose of the sound it is playing now. A page
  that does not read its channel costs nothing: poses are dropped once `MAX_BUFFERED` bytes wait.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

import numpy as np

from .. import metrics
from ..messages import OUTPUT_RATE
from ..render.worker import RenderWorkerDied
from ..stages import FrameSource
from .port import AvatarOutput
from .poses import clear_message, pose_message

log = logging.getLogger(__name__)


class ServerVideo:
    """Draws the port's poses; `await next_image()` once per video frame gives the picture of the audio just handed out."""

    def __init__(self, port: AvatarOutput, frames: FrameSource, session: str = "-") -> None:
        self.port, self.frames, self.session = port, frames, session
        self.width, self.height = frames.width, frames.height
        self._next: asyncio.Task | None = None
        self._last: np.ndarray | None = None
        self._failed = False

    def _draw_now(self) -> asyncio.Task:
        pose = self.port.compose()

        async def draw() -> np.ndarray:
            started = asyncio.get_running_loop().time()
            try:
                image = await self.frames.render(pose.weights, pose.head)
            except RenderWorkerDied as exc:
                if self._last is None:
                    raise
                if not self._failed:
                    log.error("session %s: %s; the video keeps its last frame, the voice goes on", self.session, exc)
                    metrics.ERRORS.labels("render").inc()
                    self._failed = True
                return self._last
            metrics.RENDER_SECONDS.observe(asyncio.get_running_loop().time() - started)
            self._last = image
            return image

        return asyncio.get_running_loop().create_task(draw())

    async def next_image(self) -> np.ndarray:
        if self._next is None:
            self._next = self._draw_now()
        image = await self._next
        # Draw the next frame while this one is encoded and sent: the pose is taken now,
        # so the mouth can only lag the audio by a frame, never lead it.
        self._next = self._draw_now()
        return image

    def on_audio(self, samples_out: int) -> None:
        pass  # the video track asks for frames at its own pace

    def on_speech(self) -> None:
        pass  # nothing is drawn ahead

    def clear(self) -> None:
        pass  # the playout is at rest already; the next frame shows it

    def cancel_pending(self) -> None:
        """Stops drawing ahead (on the event loop, when the call's video stops)."""
        if self._next is not None:
            self._next.cancel()

    def close(self) -> None:
        """Ends the renderer (blocks for at most a few seconds: call it off the event loop)."""
        self.frames.close()


class BrowserPoses:
    """Sends the port's poses ahead of their audio; `send(bytes)` is the call's pose channel, `buffered()` its backlog in bytes."""

    LEAD_S = 0.2  # sent this long before the audio is handed out: the page always has the pose when the sound plays
    PER_MESSAGE = 4  # poses a message (160 ms): a sixth of the messages, each the channel's main cost
    MAX_BUFFERED = 8_000  # about 4 s of poses waiting: a page this far behind gets fresh ones, not old ones

    def __init__(self, port: AvatarOutput, send: Callable[[bytes], None], buffered: Callable[[], int]) -> None:
        self.port, self._send, self._buffered = port, send, buffered
        self._step = OUTPUT_RATE // port.fps
        self._lead = int(self.LEAD_S * OUTPUT_RATE)
        self._next_pts = 0
        self._take = 0  # a new take restarts the poses from now (poses.py)
        self.sent = self.dropped = 0
        self.bytes_sent = 0

    def on_audio(self, samples_out: int) -> None:
        while self._next_pts <= samples_out + self._lead:
            poses = []
            for _ in range(self.PER_MESSAGE):
                poses.append(self.port.compose(max(0, self._next_pts - samples_out)))
                self._next_pts += self._step
            self._deliver(pose_message(poses, self._take), len(poses))

    def on_speech(self) -> None:
        """Poses already sent for the next LEAD_S may be rest where this sentence will now be said: send them again."""
        if self._next_pts > self.port.playout.samples_out + self._step:
            self._restart()

    def clear(self) -> None:
        """The page drops what it holds from now on; poses are sent again from now, at rest."""
        self._restart()
        self._deliver(clear_message(self._next_pts, self._take), always=True)

    def _restart(self) -> None:
        now = self.port.playout.samples_out
        self._next_pts = now - now % self._step
        self._take += 1

    def _deliver(self, message: bytes, poses: int = 0, always: bool = False) -> None:
        if not always and self._buffered() > self.MAX_BUFFERED:
            self.dropped += poses
            metrics.POSES_DROPPED.inc(poses)
            return
        self._send(message)
        self.sent += poses
        self.bytes_sent += len(message)

    def close(self) -> None:
        pass
