"""Where a call's frames are drawn: in a worker process of its own (`render.isolation: process`, the default) or a thread."""
from __future__ import annotations

from models.devices import gl_platform

from ..avatars.avatar import Avatar
from ..stages import FrameSource
from .renderer import RenderThread
from .worker import RenderWorker


def start_renderer(avatar: Avatar, settings) -> FrameSource:
    if settings.isolation == "thread":
        return RenderThread(avatar, settings)
    return RenderWorker(avatar, settings, gl_platform(settings.backend))
