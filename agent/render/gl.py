"""OpenGL for this process: which platform draws (OSMesa, or EGL on a GPU), and an off-screen context on it.

PyOpenGL reads the platform once, when it is first imported, so it is a setting of the whole process:
each entry point that draws chooses it once, before anything draws (the render worker, `avatar-agent
render` and `avatar sheet`, a server that renders in threads, the tests); renderers only read it.
"""
from __future__ import annotations

import os

from models.devices import gl_platform


def use_gl_backend(requested: str = "auto") -> str:
    """Chooses this process's OpenGL platform; asking again for the same one is fine, for another one is an error."""
    backend = gl_platform(requested)
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current and current != backend:
        raise RuntimeError(f"this process already renders with {current}; cannot switch to {backend}")
    os.environ["PYOPENGL_PLATFORM"] = backend
    return backend


def current_gl_backend() -> str:
    """The platform this process chose (use_gl_backend)."""
    backend = os.environ.get("PYOPENGL_PLATFORM")
    if backend not in ("osmesa", "egl"):
        raise RuntimeError("no OpenGL platform chosen for this process: call agent.render.gl.use_gl_backend() first")
    return backend


def create_platform(backend: str, width: int, height: int):
    """pyrender's off-screen GL context for the backend chosen for this process."""
    if backend == "egl":
        from pyrender.platforms.egl import EGLPlatform

        platform = EGLPlatform(width, height)
    else:
        from pyrender.platforms.osmesa import OSMesaPlatform

        platform = OSMesaPlatform(width, height)
    platform.init_context()
    platform.make_current()
    return platform
