"""Offscreen avatar rendering with pyrender.

The OpenGL platform is chosen once per process before pyrender is imported:
EGL on an NVIDIA GPU, OSMesa (software) otherwise. Each frame writes the
deformed vertices and normals into the existing vertex buffer instead of
rebuilding the mesh.
"""
from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..animate.arkit import ARKIT_NAMES
from .avatar import Avatar

log = logging.getLogger(__name__)


def choose_backend(requested: str = "auto") -> str:
    """Sets PYOPENGL_PLATFORM for this process (first call wins, as OpenGL allows)."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    if current:
        return current
    if requested == "auto":
        requested = "egl" if Path("/dev/nvidia0").exists() else "osmesa"
    os.environ["PYOPENGL_PLATFORM"] = requested
    return requested


def _rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    cx, sx = np.cos(pitch), np.sin(pitch)
    cy, sy = np.cos(yaw), np.sin(yaw)
    cz, sz = np.cos(roll), np.sin(roll)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, up, -forward, eye
    return pose


def _cache_shader_programs(cache) -> None:
    """pyrender keys its shader cache on the GL context object, which current PyOpenGL
    returns anew on every call: it compiled (and leaked) a program per frame, about
    3 MB each. One renderer owns one context, so the key can leave the context out."""
    original = cache.get_program
    programs: dict = {}

    def get_program(vertex_shader, fragment_shader, geometry_shader=None, defines=None):
        key = (vertex_shader, fragment_shader, geometry_shader, tuple(sorted((defines or {}).items())))
        if key not in programs:
            programs[key] = original(vertex_shader, fragment_shader, geometry_shader, defines)
        return programs[key]

    cache.get_program = get_program


def _framing(avatar: Avatar) -> tuple[np.ndarray, float, np.ndarray]:
    """Camera target, distance and head pivot, found from what the blendshapes move.

    The eyelids (eyeBlink) and the chin (jawOpen) give eye line and chin on any
    head, with or without shoulders, in any units; the picture then runs from
    below the chin to above the crown.
    """
    def moved_by(*names: str) -> np.ndarray:
        idx = [ARKIT_NAMES.index(n) for n in names if n not in avatar.missing]
        if not idx:
            return np.zeros((0, 3), np.float32)
        amount = np.linalg.norm(avatar.deltas[idx], axis=2).max(axis=0)
        return avatar.positions[amount > 0.3 * max(float(amount.max()), 1e-9)]

    lids, chin = moved_by("eyeBlinkLeft", "eyeBlinkRight"), moved_by("jawOpen")
    if len(lids) and len(chin):
        eye_y, chin_y = float(lids[:, 1].mean()), float(chin[:, 1].min())
        centre_x, front_z = float(lids[:, 0].mean()), float(lids[:, 2].mean())
    else:  # no eyes or jaw to go by: frame the whole mesh
        lo, hi = avatar.positions.min(0), avatar.positions.max(0)
        chin_y, eye_y = lo[1] + 0.15 * (hi[1] - lo[1]), lo[1] + 0.55 * (hi[1] - lo[1])
        centre_x, front_z = 0.5 * (lo[0] + hi[0]), 0.5 * (lo[2] + hi[2])
    unit = max(eye_y - chin_y, 1e-6)
    target = np.array([centre_x, chin_y + 0.8 * unit, front_z - 0.5 * unit])
    distance = 2.6 * unit / (2 * np.tan(0.3))
    pivot = np.array([centre_x, chin_y - 0.3 * unit, front_z - 0.8 * unit])  # about the top of the neck
    return target, distance, pivot


class FaceRenderer:
    """Renders an Avatar at given blendshape weights. Use from one thread only."""

    def __init__(self, avatar: Avatar, width: int = 512, height: int = 512, backend: str = "auto") -> None:
        self.backend = choose_backend(backend)
        import pyrender

        self.avatar = avatar
        self.width, self.height = width, height
        positions = avatar.positions
        self._colors = avatar.colors.astype(np.float32)
        material = pyrender.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.65, baseColorFactor=(1.0, 1.0, 1.0, 1.0))  # ints would be read as 0..255
        self._primitive = pyrender.Primitive(
            positions=positions, normals=avatar.normals(positions), color_0=self._colors,
            indices=avatar.faces, material=material, mode=4,
        )
        mesh = pyrender.Mesh([self._primitive])
        self.scene = pyrender.Scene(bg_color=(0.93, 0.95, 0.98, 1.0), ambient_light=(0.22, 0.22, 0.24))
        self._node = self.scene.add(mesh)
        target, distance, self._pivot = _framing(avatar)
        eye = target + np.array([0.0, 0.05 * distance, distance])
        camera = pyrender.PerspectiveCamera(yfov=0.6, aspectRatio=width / height, znear=distance * 0.05, zfar=distance * 10)
        self.scene.add(camera, pose=_look_at(eye, target))
        key = _look_at(target + np.array([0.6, 0.8, 1.0]) * distance, target)
        fill = _look_at(target + np.array([-1.0, 0.1, 0.8]) * distance, target)
        rim = _look_at(target + np.array([0.0, 0.6, -1.0]) * distance, target)
        self.scene.add(pyrender.DirectionalLight(color=(1.0, 0.97, 0.92), intensity=2.4), pose=key)
        self.scene.add(pyrender.DirectionalLight(color=(0.85, 0.9, 1.0), intensity=0.9), pose=fill)
        self.scene.add(pyrender.DirectionalLight(color=(1.0, 1.0, 1.0), intensity=0.7), pose=rim)
        self._renderer = pyrender.OffscreenRenderer(width, height)
        _cache_shader_programs(self._renderer._renderer._program_cache)
        self._pixels = np.empty((height, width, 3), np.uint8)
        self._renderer._renderer._read_main_framebuffer = self._read_color
        self._vertex_buffer = None
        self.render(np.zeros(52, np.float32))  # uploads the mesh to the GPU context
        self._vertex_buffer = self._primitive._buffers[0]

    def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        """RGB uint8 image [H, W, 3]."""
        import pyrender

        positions = self.avatar.deform(weights)
        normals = self.avatar.normals(positions)
        if self._vertex_buffer is not None:
            self._upload(positions, normals)
        pose = np.eye(4)
        rot = _rotation(*head_rotation)
        pose[:3, :3] = rot
        pose[:3, 3] = self._pivot - rot @ self._pivot
        self.scene.set_pose(self._node, pose)
        color, _ = self._renderer.render(self.scene, flags=pyrender.RenderFlags.NONE)
        return color

    def _read_color(self, scene, flags):
        """Replaces pyrender's read-back: colour only, into one reused array
        (pyrender also reads and converts a depth image we never use)."""
        from OpenGL import GL

        inner = self._renderer._renderer
        width, height = inner._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, inner._main_fb_ms)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, inner._main_fb)
        GL.glBlitFramebuffer(0, 0, width, height, 0, 0, width, height, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, inner._main_fb)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        GL.glReadPixels(0, 0, width, height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, self._pixels)
        return self._pixels[::-1].copy(), None

    def _upload(self, positions: np.ndarray, normals: np.ndarray) -> None:
        from OpenGL import GL

        interleaved = np.ascontiguousarray(np.hstack([positions, normals, self._colors]), np.float32)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)
        GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, interleaved.nbytes, interleaved)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None


class RenderThread:
    """Owns one FaceRenderer on its own thread (GL contexts belong to a thread)."""

    def __init__(self, avatar: Avatar, width: int, height: int, backend: str = "auto") -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="render")
        self._renderer: FaceRenderer | None = None
        self._args = (avatar, width, height, backend)

    def _render(self, weights, head) -> np.ndarray:
        if self._renderer is None:
            self._renderer = FaceRenderer(*self._args)
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
