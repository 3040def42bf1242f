"""aiortc media tracks: the avatar's voice and face, paced by one real-time clock each."""
from __future__ import annotations

import asyncio
import fractions
import logging
import time

import av
import numpy as np
from aiortc import MediaStreamTrack

from .. import metrics
from ..animate.expression import FaceComposer
from ..playout import FRAME_SAMPLES, OUTPUT_RATE, Playout
from ..render.worker import RenderWorkerDied

VIDEO_CLOCK = 90_000
log = logging.getLogger(__name__)


class _Pacer:
    """Hands out presentation timestamps no faster than real time."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.start: float | None = None
        self.pts = 0

    def elapsed(self) -> float:
        return 0.0 if self.start is None else time.time() - self.start

    async def next(self, step: int) -> int:
        if self.start is None:
            self.start = time.time()
            return 0
        self.pts += step
        wait = self.start + self.pts / self.clock_rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.5:  # fell far behind (busy machine): skip ahead rather than burst
            self.pts = int((time.time() - self.start) * self.clock_rate)
        return self.pts


class AvatarAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, playout: Playout) -> None:
        super().__init__()
        self.playout = playout
        self._pacer = _Pacer(OUTPUT_RATE)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise _media_error()
        pts = await self._pacer.next(FRAME_SAMPLES)
        pcm = self.playout.next_audio_frame()
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OUTPUT_RATE
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, OUTPUT_RATE)
        return frame


class AvatarVideoTrack(MediaStreamTrack):
    """Renders the face for the audio just handed out, with emotion and idle life on top."""

    kind = "video"

    def __init__(self, playout: Playout, renderer, fps: int = 25, seed: int = 0, session: str = "-") -> None:
        super().__init__()
        self.playout = playout
        self.renderer = renderer
        self.fps = fps
        self.face = FaceComposer(seed)
        self._pacer = _Pacer(VIDEO_CLOCK)
        self.frames_sent = 0
        self.session = session
        self._fps_window = (time.perf_counter(), 0)  # start of the current one-second window, frames sent before it
        self.recent_fps: float | None = None  # frames sent per second over the last full window
        self._next_image: asyncio.Task | None = None
        self._last_image: np.ndarray | None = None
        self._render_failed = False

    def current_weights(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        return self.face.compose(self.playout.pose(), self.playout.speaking, t)

    def _render_now(self) -> asyncio.Task:
        weights, head = self.current_weights(self._pacer.elapsed())

        async def render() -> np.ndarray:
            started = time.perf_counter()
            try:
                image = await self.renderer.render(weights, head)
            except RenderWorkerDied as exc:
                if self._last_image is None:
                    raise
                if not self._render_failed:
                    log.error("session %s: %s; the video keeps its last frame, the voice goes on", self.session, exc)
                    metrics.ERRORS.labels("render").inc()
                    self._render_failed = True
                return self._last_image
            metrics.RENDER_SECONDS.observe(time.perf_counter() - started)
            self._last_image = image
            return image

        return asyncio.get_running_loop().create_task(render())

    def stop(self) -> None:
        if self._next_image is not None:
            self._next_image.cancel()
        super().stop()

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise _media_error()
        pts = await self._pacer.next(VIDEO_CLOCK // self.fps)
        if self._next_image is None:
            self._next_image = self._render_now()
        image = await self._next_image
        # Render the next frame while this one is encoded and sent: the pose is taken now,
        # so the mouth can only lag the audio by a frame, never lead it.
        self._next_image = self._render_now()
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.frames_sent += 1
        started, before = self._fps_window
        now = time.perf_counter()
        if now - started >= 1.0:
            self.recent_fps = (self.frames_sent - before) / (now - started)
            metrics.VIDEO_FPS.labels(self.session).set(self.recent_fps)
            self._fps_window = (now, self.frames_sent)
        metrics.VIDEO_FRAMES.inc()
        return frame


def _media_error():
    from aiortc.mediastreams import MediaStreamError

    return MediaStreamError()
