"""A renderer for an avatar, by `render.shading`, and one inside this process on its own thread.

`lean` (our shaders, the default, several times faster on software GL) or `pbr`
(pyrender's full PBR scene, for a GPU); both frame and light the avatar the same
way (`view.py`). Calls draw in a worker process (`worker.py`; `frames.py` picks).
"""
from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..avatars.avatar import Avatar
from ..stages import Renderer
from .gl import current_gl_backend
from .view import Backdrop


def make_renderer(avatar: Avatar, settings) -> Renderer:
    """A renderer on this process's GL platform (chosen beforehand, `gl.use_gl_backend`), by `settings.shading`."""
    backdrop = Backdrop.configured(settings.backdrop)
    if settings.shading == "pbr":
        from .pbr import PbrRenderer

        return PbrRenderer(avatar, settings.width, settings.height, current_gl_backend(), settings.msaa, backdrop)
    from .lean import LeanRenderer

    return LeanRenderer(avatar, settings.width, settings.height, current_gl_backend(), settings.msaa, backdrop, settings.lighting)


class RenderThread:
    """A renderer inside this process, on its own thread (a GL context belongs to one thread); a `FrameSource`."""

    def __init__(self, avatar: Avatar, settings) -> None:
        self.width, self.height = settings.width, settings.height
        current_gl_backend()  # fail now, not at the first frame
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._renderer = None
        self._args = (avatar, settings)

    def _render(self, weights, head) -> np.ndarray:
        if self._renderer is None:
            self._renderer = make_renderer(*self._args)
        return self._renderer.render(weights, head)

    async def render(self, weights: np.ndarray, head=(0.0, 0.0, 0.0)) -> np.ndarray:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._render, weights, head)

    def _close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def close(self) -> None:
        self._executor.submit(self._close)
        self._executor.shutdown(wait=True)
