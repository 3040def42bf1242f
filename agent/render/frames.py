"""Where a call's frames are drawn: in a worker process of its own (`render.isolation: process`, the default) or a thread."""
from __future__ import annotations

from typing import Callable

import numpy as np

from models.devices import gl_platform

from ..avatars.avatar import Avatar
from ..stages import FrameSource
from .renderer import RenderThread
from .worker import RenderWorker, RenderWorkerDied


def start_renderer(avatar: Avatar, settings) -> FrameSource:
    if settings.isolation == "thread":
        return RenderThread(avatar, settings)
    return RenderWorker(avatar, settings, gl_platform(settings.backend))


class StartedWhenConnected:
    """A `FrameSource` whose renderer (a process, by default) starts only once the call's media connects (`start`), or
    at its first frame: an offer whose connection never completes costs no render process."""

    def __init__(self, start: Callable[[], FrameSource], width: int, height: int) -> None:
        self._start, self.width, self.height = start, width, height
        self._source: FrameSource | None = None
        self._closed = False

    def start(self) -> None:
        if self._source is None and not self._closed:
            self._source = self._start()

    async def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        self.start()
        if self._source is None:
            raise RenderWorkerDied("the call's renderer was closed")
        return await self._source.render(weights, head_rotation)

    def close(self) -> None:
        self._closed = True
        if self._source is not None:
            self._source.close()
