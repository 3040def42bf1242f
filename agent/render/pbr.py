"""The full pyrender scene with its PBR shader: `render.shading: pbr`, worth it on a GPU (EGL).

On software GL the lean renderer draws the same lighting several times faster.
"""
from __future__ import annotations

import numpy as np

from ..avatars.avatar import Avatar
from .view import AMBIENT, BACKGROUND, YFOV, FaceView


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


class PbrRenderer:
    """Renders an Avatar at given blendshape weights. Use from one thread only."""

    def __init__(self, avatar: Avatar, width: int = 512, height: int = 512, backend: str = "osmesa", msaa: int = 0) -> None:
        import pyrender

        self.avatar, self.width, self.height, self.backend = avatar, width, height, backend
        self.view = FaceView.for_avatar(avatar, width, height)  # pyrender multisamples on EGL by itself; msaa is ignored
        self._colors = avatar.colors.astype(np.float32)
        material = pyrender.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=0.65, baseColorFactor=(1.0, 1.0, 1.0, 1.0))  # ints would be read as 0..255
        rest = avatar.deform_with_normals(np.zeros(52, np.float32))
        self._primitive = pyrender.Primitive(
            positions=rest[:, :3], normals=rest[:, 3:], color_0=self._colors, indices=avatar.faces, material=material, mode=4,
        )
        self.scene = pyrender.Scene(bg_color=(*BACKGROUND, 1.0), ambient_light=AMBIENT)
        self._node = self.scene.add(pyrender.Mesh([self._primitive]))
        view = self.view
        camera = pyrender.PerspectiveCamera(yfov=YFOV, aspectRatio=width / height, znear=view.znear, zfar=view.zfar)
        self.scene.add(camera, pose=view.camera_pose)
        for light in view.lights:
            self.scene.add(pyrender.DirectionalLight(color=light.color, intensity=light.intensity), pose=light.pose)
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
        from OpenGL import GL

        self._renderer._platform.make_current()  # another renderer may share this thread
        if self._vertex_buffer is not None:
            interleaved = np.ascontiguousarray(np.hstack([self.avatar.deform_with_normals(weights), self._colors]), np.float32)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, interleaved.nbytes, interleaved)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        self.scene.set_pose(self._node, self.view.head_pose(head_rotation))
        color, _ = self._renderer.render(self.scene, flags=pyrender.RenderFlags.NONE)
        return color

    def _read_color(self, scene, flags):
        """Replaces pyrender's read-back: colour only, into one reused array
        (pyrender also reads and converts a depth image we never use)."""
        from OpenGL import GL

        inner = self._renderer._renderer
        if inner._main_fb_ms is not None:  # EGL: resolve pyrender's multisampled buffer first
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, inner._main_fb_ms)
            GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, inner._main_fb)
            GL.glBlitFramebuffer(0, 0, self.width, self.height, 0, 0, self.width, self.height, GL.GL_COLOR_BUFFER_BIT, GL.GL_LINEAR)
            GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, inner._main_fb)
        GL.glPixelStorei(GL.GL_PACK_ALIGNMENT, 1)
        GL.glReadPixels(0, 0, self.width, self.height, GL.GL_RGB, GL.GL_UNSIGNED_BYTE, self._pixels)
        return self._pixels[::-1].copy(), None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None
