"""Choosing a renderer for an avatar, and where it runs: a worker process (calls) or a thread (tools, tests).

`render.shading` picks the renderer: `lean` (our shaders, the default, several
times faster on software GL) or `pbr` (pyrender's full PBR scene, for a GPU).
Both frame and light the avatar the same way (`view.py`).
"""
from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from models.devices import gl_platform

from .avatar import Avatar


def use_gl_backend(requested: str = "auto") -> str:
    """Sets the OpenGL platform for rendering inside this process; it cannot change once OpenGL is loaded."""
    backend = gl_platform(requested)
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current and current != backend:
        raise RuntimeError(f"this process already renders with {current}; cannot switch to {backend}")
    os.environ["PYOPENGL_PLATFORM"] = backend
    return backend


def make_renderer(avatar: Avatar, settings, backend: str):
    """A renderer for this process's GL backend, by `settings.shading`."""
    if settings.shading == "pbr":
        from .pbr import PbrRenderer as renderer_class
    else:
        from .lean import LeanRenderer as renderer_class
    return renderer_class(avatar, settings.width, settings.height, backend, settings.msaa)


class RenderThread:
    """A renderer inside this process, on its own thread (a GL context belongs to one thread)."""

    def __init__(self, avatar: Avatar, settings) -> None:
        self.width, self.height = settings.width, settings.height
        self._backend = use_gl_backend(settings.backend)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._renderer = None
        self._args = (avatar, settings)

    def _render(self, weights, head) -> np.ndarray:
        if self._renderer is None:
            self._renderer = make_renderer(*self._args, self._backend)
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


def start_renderer(avatar: Avatar, settings):
    """A call's renderer: in a lower-priority worker process (`render.isolation: process`) or a thread."""
    if settings.isolation == "thread":
        return RenderThread(avatar, settings)
    from .worker import RenderWorker

    return RenderWorker(avatar, settings, gl_platform(settings.backend))
