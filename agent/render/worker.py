"""Rendering in a separate, lower-priority process, so a call's video can never starve its voice.

Software GL needs whole cores and, in-process, the GIL too: VAD, echo
cancelling, Whisper, TTS and the face model would wait behind it. Here each
call's renderer runs in a process at `render.nice` (the OS gives the rest of
the agent the CPU first); frames come back through shared memory, and the event
loop is woken by the pipe, so waiting for a frame costs the agent nothing.
Under overload the video gets fewer frames, the audio none fewer.

This module imports only the standard library at the top: the worker sets its
priority, thread counts and GL platform before numpy or OpenGL are loaded.
"""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from multiprocessing import shared_memory

log = logging.getLogger(__name__)


class RenderWorkerDied(RuntimeError):
    pass


def _serve(conn, shm_name: str, nice: int, backend: str) -> None:
    """The worker process: render each (weights, head) request into the shared image."""
    os.nice(nice)
    # One BLAS thread (a frame's blend is one small matrix product); llvmpipe keeps its own threads,
    # which inherit this process's priority.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["PYOPENGL_PLATFORM"] = backend
    import numpy as np

    shm = shared_memory.SharedMemory(name=shm_name)  # the parent owns it and unlinks it (one resource tracker for both)
    renderer = None
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            kind = message[0]
            if kind == "open":
                from .renderer import make_renderer

                _, avatar, settings = message
                renderer = make_renderer(avatar, settings, backend)
                conn.send(("ready",))
            elif kind == "render":
                _, weights, head = message
                image = renderer.render(weights, head)
                np.ndarray(image.shape, np.uint8, shm.buf)[...] = image
                conn.send(("frame",))
            elif kind == "close":
                return
    finally:
        if renderer is not None:
            renderer.close()
        shm.close()


class RenderWorker:
    """One call's renderer in its own process; `await render(...)` gives the RGB frame.

    One request at a time (the video track asks for the next frame only after
    the last one came back); the returned image is valid until the next call.
    """

    def __init__(self, avatar, settings, backend: str) -> None:
        import numpy as np

        self.width, self.height = settings.width, settings.height
        self._shm = shared_memory.SharedMemory(create=True, size=self.width * self.height * 3)
        self._image = np.ndarray((self.height, self.width, 3), np.uint8, self._shm.buf)
        context = multiprocessing.get_context("spawn")  # never fork a process that holds model threads
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, self._shm.name, settings.nice, backend),
                                        name="render", daemon=True)
        self._process.start()
        child.close()
        self._open_message = ("open", avatar, settings)
        self._lock = asyncio.Lock()

    async def _reply(self) -> tuple:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self._conn.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            while not self._conn.poll():
                if not self._process.is_alive():
                    raise RenderWorkerDied(f"the render process ended (exit code {self._process.exitcode})")
                await asyncio.wait({readable}, timeout=1.0)
        finally:
            loop.remove_reader(fd)
        try:
            return self._conn.recv()
        except (EOFError, OSError) as exc:
            raise RenderWorkerDied(f"the render process ended ({exc})") from None

    async def render(self, weights, head=(0.0, 0.0, 0.0)):
        async with self._lock:
            if self._process.exitcode is not None:
                raise RenderWorkerDied(f"the render process ended (exit code {self._process.exitcode})")
            if self._open_message is not None:
                # Several MB through a pipe the starting process is not reading yet: not on the event loop.
                await asyncio.get_running_loop().run_in_executor(None, self._conn.send, self._open_message)
                self._open_message = None
                await self._reply()  # "ready": the avatar is loaded
            try:
                self._conn.send(("render", weights, head))
            except (BrokenPipeError, OSError) as exc:
                raise RenderWorkerDied(f"the render process ended ({exc})") from None
            await self._reply()
            return self._image

    def close(self) -> None:
        """Ends the process and frees the shared image (blocking for at most a few seconds)."""
        if self._process is None:
            return
        try:
            self._conn.send(("close",))
        except OSError:
            pass
        self._process.join(5)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
        self._conn.close()
        del self._image
        self._shm.close()
        self._shm.unlink()
        self._process = None
