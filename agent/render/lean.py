"""The lean renderer: our own shaders on pyrender's OpenGL platform (OSMesa or EGL).

One draw call per frame into a framebuffer of our own, no multisampling unless
asked for, and a colour-only read-back. On software GL (llvmpipe) the time went
to pyrender's per-frame scene walk, its read-back of a depth image and its per-pixel
lighting; ours lights each vertex with the same BRDF as pyrender's PBR shader
(`shaders/face.vert`), so the picture keeps its look.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..avatars.avatar import Avatar
from .gl import create_platform
from .view import AMBIENT, BACKGROUND, FaceView

SHADERS = Path(__file__).resolve().parent / "shaders"
ROUGHNESS = 0.65
# Flipping y in clip space makes glReadPixels return rows top-first, as video frames are
# stored, so no flip is needed after the read-back; it also mirrors the triangle winding.
FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])


class LeanRenderer:
    """Renders an Avatar at given blendshape weights. Use from one thread only (the GL context belongs to it)."""

    def __init__(self, avatar: Avatar, width: int = 512, height: int = 512, backend: str = "osmesa", msaa: int = 0) -> None:
        from OpenGL import GL
        from OpenGL.GL import shaders

        self.avatar, self.width, self.height, self.backend = avatar, width, height, backend
        self.view = FaceView.for_avatar(avatar, width, height)
        self._platform = create_platform(backend, width, height)
        self._program = shaders.compileProgram(
            shaders.compileShader((SHADERS / "face.vert").read_text(), GL.GL_VERTEX_SHADER),
            shaders.compileShader((SHADERS / "face.frag").read_text(), GL.GL_FRAGMENT_SHADER),
        )
        GL.glUseProgram(self._program)
        self._framebuffers = self._make_framebuffers(msaa)
        self._vertices = np.empty(avatar.vertex_count * 6, np.float32)
        self._make_mesh()
        self._set_scene_uniforms()
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glEnable(GL.GL_CULL_FACE)
        GL.glFrontFace(GL.GL_CW)  # FLIP_Y mirrors the winding
        GL.glViewport(0, 0, width, height)
        GL.glClearColor(*BACKGROUND, 1.0)
        self._model_location = GL.glGetUniformLocation(self._program, "model")

    def _make_framebuffers(self, msaa: int) -> tuple[int, int | None]:
        """(the framebuffer drawn into, the resolved one read from when multisampling)."""
        from OpenGL import GL

        def framebuffer(samples: int) -> int:
            fb = GL.glGenFramebuffers(1)
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, fb)
            for attachment, fmt in ((GL.GL_COLOR_ATTACHMENT0, GL.GL_RGBA8), (GL.GL_DEPTH_ATTACHMENT, GL.GL_DEPTH_COMPONENT24)):
                rb = GL.glGenRenderbuffers(1)
                GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, rb)
                if samples:
                    GL.glRenderbufferStorageMultisample(GL.GL_RENDERBUFFER, samples, fmt, self.width, self.height)
                else:
                    GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, fmt, self.width, self.height)
                GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, attachment, GL.GL_RENDERBUFFER, rb)
            if GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER) != GL.GL_FRAMEBUFFER_COMPLETE:
                raise RuntimeError("could not create an off-screen framebuffer")
            return fb

        draw = framebuffer(msaa)
        resolved = framebuffer(0) if msaa else None
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, draw)
        return draw, resolved

    def _make_mesh(self) -> None:
        from OpenGL import GL

        avatar = self.avatar
        GL.glBindVertexArray(GL.glGenVertexArrays(1))
        self._vertex_buffer = GL.glGenBuffers(1)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, self._vertices.nbytes, avatar.deform_with_normals(np.zeros(52), self._vertices), GL.GL_DYNAMIC_DRAW)
        for location, offset in ((0, 0), (1, 12)):
            GL.glEnableVertexAttribArray(location)
            GL.glVertexAttribPointer(location, 3, GL.GL_FLOAT, GL.GL_FALSE, 24, ctypes.c_void_p(offset))
        colors = np.ascontiguousarray(avatar.colors, np.float32)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, GL.glGenBuffers(1))
        GL.glBufferData(GL.GL_ARRAY_BUFFER, colors.nbytes, colors, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(2)
        GL.glVertexAttribPointer(2, 4, GL.GL_FLOAT, GL.GL_FALSE, 16, ctypes.c_void_p(0))
        indices = np.ascontiguousarray(avatar.faces, np.uint32)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, GL.glGenBuffers(1))
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, indices.nbytes, indices, GL.GL_STATIC_DRAW)
        self._index_count = indices.size
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)

    def _set_scene_uniforms(self) -> None:
        from OpenGL import GL

        view = self.view
        world_to_camera = np.linalg.inv(view.camera_pose)
        view_projection = FLIP_Y @ view.projection @ world_to_camera

        def uniform(name: str) -> int:
            return GL.glGetUniformLocation(self._program, name)

        GL.glUniformMatrix4fv(uniform("view_projection"), 1, GL.GL_TRUE, view_projection.astype(np.float32))
        GL.glUniform3fv(uniform("camera_position"), 1, view.camera_pose[:3, 3].astype(np.float32))
        directions = np.array([light.direction for light in view.lights], np.float32)
        radiance = np.array([np.array(light.color) * light.intensity for light in view.lights], np.float32)
        GL.glUniform3fv(uniform("light_directions"), len(directions), directions)
        GL.glUniform3fv(uniform("light_radiance"), len(radiance), radiance)
        GL.glUniform3fv(uniform("ambient_light"), 1, np.array(AMBIENT, np.float32))
        GL.glUniform1f(uniform("roughness"), ROUGHNESS)

    def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        """RGB uint8 image [H, W, 3], the caller's to keep."""
        from OpenGL import GL

        self._platform.make_current()  # cheap, and lets several renderers share a thread
        self.avatar.deform_with_normals(weights, self._vertices)
        GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, self._vertices.nbytes, self._vertices)
        GL.glUniformMatrix4fv(self._model_location, 1, GL.GL_TRUE, self.view.head_pose(head_rotation).astype(np.float32))
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glDrawElements(GL.GL_TRIANGLES, self._index_count, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0))
        draw, resolved = self._framebuffers
        if resolved is not None:
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, draw)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, resolved)
            GL.glBlitFramebuffer(0, 0, self.width, self.height, 0, 0, self.width, self.height, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, resolved)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        pixels = np.empty((self.height, self.width, 3), np.uint8)
        GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, pixels)
        if resolved is not None:
            GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, draw)
        return pixels

    def close(self) -> None:
        if self._platform is not None:
            self._platform.delete_context()
            self._platform = None
