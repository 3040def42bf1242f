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
import os
import socket
import subprocess
import sys
from multiprocessing import shared_memory
from multiprocessing.connection import Connection

log = logging.getLogger(__name__)
# One BLAS thread: a frame's blend is one small matrix product, and idle BLAS threads spin.
WORKER_ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class RenderWorkerDied(RuntimeError):
    pass


def _serve(conn: Connection, shm_name: str) -> None:
    """The worker process: render each (weights, head) request into the shared image."""
    import numpy as np

    try:
        shm = shared_memory.SharedMemory(name=shm_name)
    except FileNotFoundError:  # the agent died while this process started, and its image went with it
        sys.exit(f"render worker: the agent's shared image {shm_name} is gone (the agent stopped); exiting")
    # The parent owns the image and unlinks it; this process must not have it cleaned up when it exits.
    from multiprocessing import resource_tracker

    resource_tracker.unregister(shm._name, "shared_memory")
    renderer = None
    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "open":
                from .renderer import make_renderer

                _, avatar, settings = message
                renderer = make_renderer(avatar, settings)
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
    """One call's renderer in its own process (a `FrameSource`); `await render(...)` gives the RGB frame.

    One request at a time (the video track asks for the next frame only after
    the last one came back); the returned image is valid until the next call.
    """

    def __init__(self, avatar, settings, backend: str) -> None:
        import numpy as np

        self.width, self.height = settings.width, settings.height
        self._shm = shared_memory.SharedMemory(create=True, size=self.width * self.height * 3)
        self._image = np.ndarray((self.height, self.width, 3), np.uint8, self._shm.buf)
        ours, theirs = socket.socketpair()
        env = {**os.environ, **WORKER_ENV, "PYOPENGL_PLATFORM": backend}
        # No preexec_fn: Python code run between fork and exec in a process full of model threads can hang on a
        # lock one of them held at the fork (a CI run hung so); the worker lowers its own priority first thing.
        self._process = subprocess.Popen(
            [sys.executable, "-m", "agent.render.worker", str(theirs.fileno()), self._shm.name, str(settings.nice)],
            pass_fds=[theirs.fileno()], env=env,
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        self._open_message = ("open", avatar, settings)
        self._lock = asyncio.Lock()

    def _ended(self) -> RenderWorkerDied:
        return RenderWorkerDied(f"the render process ended (exit code {self._process.poll()})")

    async def _reply(self) -> tuple:
        loop = asyncio.get_running_loop()
        readable = loop.create_future()
        fd = self._conn.fileno()
        loop.add_reader(fd, lambda: readable.done() or readable.set_result(None))
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        try:
            return self._conn.recv()
        except (EOFError, OSError):
            raise self._ended() from None

    async def render(self, weights, head=(0.0, 0.0, 0.0)):
        async with self._lock:
            if self._process is None or self._process.poll() is not None:
                raise self._ended()
            try:
                if self._open_message is not None:
                    # Several MB to a process that is still starting: not on the event loop.
                    await asyncio.get_running_loop().run_in_executor(None, self._conn.send, self._open_message)
                    self._open_message = None
                    await self._reply()  # "ready": the avatar is loaded
                self._conn.send(("render", weights, head))
            except OSError:
                raise self._ended() from None
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
        try:
            self._process.wait(5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(5)
        self._conn.close()
        del self._image
        self._shm.close()
        self._shm.unlink()
        self._process = None


if __name__ == "__main__":
    os.nice(int(sys.argv[3]))
    _serve(Connection(int(sys.argv[1])), sys.argv[2])
