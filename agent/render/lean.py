"""The lean renderer: our own shaders on pyrender's OpenGL platform (OSMesa or EGL).

A draw call per surface (skin, eyes, mouth, lashes, hair) into a framebuffer of
our own, no multisampling unless asked for, and a colour-only read-back. On
software GL (llvmpipe) the time went to pyrender's per-frame scene walk and its
read-back of a depth image; ours lights each pixel with the BRDF of pyrender's PBR
shader (`shaders/face.frag`) from the avatar's textures, over a gradient backdrop.
Only the vertices the blendshapes move are uploaded each frame.
"""
from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np

from ..avatars.avatar import Avatar, Surface
from .gl import create_platform
from .view import AMBIENT, Backdrop, FaceView

SHADERS = Path(__file__).resolve().parent / "shaders"
# Flipping y in clip space makes glReadPixels return rows top-first, as video frames are
# stored, so no flip is needed after the read-back; it also mirrors the triangle winding.
FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])


class LeanRenderer:
    """Renders an Avatar at given blendshape weights. Use from one thread only (the GL context belongs to it)."""

    def __init__(self, avatar: Avatar, width: int = 512, height: int = 512, backend: str = "osmesa", msaa: int = 0,
                 backdrop: Backdrop = Backdrop(), lighting: str = "auto") -> None:
        from OpenGL import GL

        self.avatar, self.width, self.height, self.backend = avatar, width, height, backend
        self.lighting = lighting if lighting != "auto" else ("pixel" if backend == "egl" else "vertex")
        self.view = FaceView.for_avatar(avatar, width, height)
        self._platform = create_platform(backend, width, height)
        self._programs = {cutout: _program(f"face_{self.lighting}", cutout) for cutout in (False, True)}
        self._backdrop_program = _program("backdrop")
        GL.glUseProgram(self._backdrop_program)
        for name, colour in (("top", backdrop.top), ("bottom", backdrop.bottom), ("glow", backdrop.glow)):
            GL.glUniform3fv(GL.glGetUniformLocation(self._backdrop_program, name), 1, np.array(colour, np.float32))
        self._empty_vao = GL.glGenVertexArrays(1)
        self._msaa = msaa
        self._framebuffers = self._make_framebuffers(msaa)
        self._backdrop_framebuffer: int | None = None
        self._vertices = np.empty(avatar.vertex_count * 6, np.float32)
        self._moving = _runs(avatar.moving_vertices)
        self._make_mesh()
        self._draws = [_Draw(surface, *self._make_textures(surface)) for surface in avatar.surfaces]
        self._set_scene_uniforms()
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glFrontFace(GL.GL_CW)  # FLIP_Y mirrors the winding
        GL.glBlendFunc(GL.GL_SRC_ALPHA, GL.GL_ONE_MINUS_SRC_ALPHA)
        GL.glViewport(0, 0, width, height)
        self._uniforms = {cutout: {name: GL.glGetUniformLocation(program, name) for name in ("model", "wrap", "alpha_cut", "roughness")}
                          for cutout, program in self._programs.items()}

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
        self._mesh_vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(self._mesh_vao)
        self._vertex_buffer = GL.glGenBuffers(1)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, self._vertices.nbytes, avatar.deform_with_normals(np.zeros(52), self._vertices), GL.GL_DYNAMIC_DRAW)
        for location, offset in ((0, 0), (1, 12)):
            GL.glEnableVertexAttribArray(location)
            GL.glVertexAttribPointer(location, 3, GL.GL_FLOAT, GL.GL_FALSE, 24, ctypes.c_void_p(offset))
        uvs = avatar.uvs if avatar.uvs is not None else np.zeros((avatar.vertex_count, 2), np.float32)
        for location, data in ((2, avatar.colors), (3, uvs)):
            data = np.ascontiguousarray(data, np.float32)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, GL.glGenBuffers(1))
            GL.glBufferData(GL.GL_ARRAY_BUFFER, data.nbytes, data, GL.GL_STATIC_DRAW)
            GL.glEnableVertexAttribArray(location)
            GL.glVertexAttribPointer(location, data.shape[1], GL.GL_FLOAT, GL.GL_FALSE, data.shape[1] * 4, ctypes.c_void_p(0))
        indices = np.ascontiguousarray(avatar.faces, np.uint32)
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, GL.glGenBuffers(1))
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, indices.nbytes, indices, GL.GL_STATIC_DRAW)
        self._index_count = indices.size
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)

    def _make_textures(self, surface: Surface) -> tuple[int, int]:
        """(albedo, roughness) texture names on units 0 and 1; an untextured surface gets 1x1 ones (white; its roughness)."""
        from OpenGL import GL

        albedo = surface.albedo if surface.albedo is not None else np.full((1, 1, 4), 255, np.uint8)
        roughness = surface.roughness_map if surface.roughness_map is not None else np.full((1, 1), round(surface.roughness * 255), np.uint8)
        names = []
        for image, internal, fmt in ((albedo, GL.GL_SRGB8_ALPHA8, GL.GL_RGBA), (roughness, GL.GL_R8, GL.GL_RED)):
            name = GL.glGenTextures(1)
            GL.glBindTexture(GL.GL_TEXTURE_2D, name)
            GL.glPixelStorei(GL.GL_UNPACK_ALIGNMENT, 1)
            # Rows top-first, so texture t = 0 is the image's top: glTF's UV convention, used as is.
            GL.glTexImage2D(GL.GL_TEXTURE_2D, 0, internal, image.shape[1], image.shape[0], 0, fmt, GL.GL_UNSIGNED_BYTE,
                            np.ascontiguousarray(image))
            GL.glGenerateMipmap(GL.GL_TEXTURE_2D)
            # Bilinear within the nearest mip level: trilinear cost software GL a tenth more of the frame, for no visible gain.
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_LINEAR_MIPMAP_NEAREST if self.lighting == "vertex" else GL.GL_LINEAR_MIPMAP_LINEAR)
            GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_LINEAR)
            for axis in (GL.GL_TEXTURE_WRAP_S, GL.GL_TEXTURE_WRAP_T):
                GL.glTexParameteri(GL.GL_TEXTURE_2D, axis, GL.GL_REPEAT)
            names.append(name)
        return names[0], names[1]

    def _set_scene_uniforms(self) -> None:
        for program in self._programs.values():
            self._set_program_uniforms(program)

    def _set_program_uniforms(self, program: int) -> None:
        from OpenGL import GL

        GL.glUseProgram(program)
        view = self.view
        world_to_camera = np.linalg.inv(view.camera_pose)
        view_projection = FLIP_Y @ view.projection @ world_to_camera

        def uniform(name: str) -> int:
            return GL.glGetUniformLocation(program, name)

        GL.glUniformMatrix4fv(uniform("view_projection"), 1, GL.GL_TRUE, view_projection.astype(np.float32))
        GL.glUniform3fv(uniform("camera_position"), 1, view.camera_pose[:3, 3].astype(np.float32))
        directions = np.array([light.direction for light in view.lights], np.float32)
        radiance = np.array([np.array(light.color) * light.intensity for light in view.lights], np.float32)
        GL.glUniform3fv(uniform("light_directions"), len(directions), directions)
        GL.glUniform3fv(uniform("light_radiance"), len(radiance), radiance)
        GL.glUniform3fv(uniform("ambient_light"), 1, np.array(AMBIENT, np.float32))
        GL.glUniform1i(uniform("albedo_map"), 0)
        GL.glUniform1i(uniform("roughness_map"), 1)

    def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        """RGB uint8 image [H, W, 3], the caller's to keep."""
        from OpenGL import GL

        self._platform.make_current()  # cheap, and lets several renderers share a thread
        self.avatar.deform_with_normals(weights, self._vertices)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vertex_buffer)
        for start, stop in self._moving:  # the rest never changes
            GL.glBufferSubData(GL.GL_ARRAY_BUFFER, start * 24, (stop - start) * 24, self._vertices[start * 6:stop * 6])
        GL.glClear(GL.GL_DEPTH_BUFFER_BIT)
        self._draw_backdrop()
        pose = self.view.head_pose(head_rotation).astype(np.float32)
        for cutout, program in self._programs.items():
            GL.glUseProgram(program)
            GL.glUniformMatrix4fv(self._uniforms[cutout]["model"], 1, GL.GL_TRUE, pose)
        for blended in (False, True):  # opaque surfaces first; blended ones over them, in triangle order (inner hair first)
            for draw in self._draws:
                if draw.surface.blend == blended:
                    self._draw_surface(draw)
        GL.glDisable(GL.GL_BLEND)
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

    def _draw_backdrop(self) -> None:
        """Copies the backdrop, drawn once into a framebuffer of its own (a copy costs far less than shading every pixel)."""
        from OpenGL import GL

        draw, _ = self._framebuffers
        if self._backdrop_framebuffer is None:
            self._backdrop_framebuffer, _ = self._make_framebuffers(self._msaa)  # blits keep the sample count
            GL.glUseProgram(self._backdrop_program)
            GL.glBindVertexArray(self._empty_vao)
            GL.glDisable(GL.GL_DEPTH_TEST)
            GL.glDisable(GL.GL_CULL_FACE)
            GL.glDrawArrays(GL.GL_TRIANGLES, 0, 3)
            GL.glEnable(GL.GL_DEPTH_TEST)
            GL.glBindVertexArray(self._mesh_vao)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._backdrop_framebuffer)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, draw)
        GL.glBlitFramebuffer(0, 0, self.width, self.height, 0, 0, self.width, self.height, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, draw)

    def _draw_surface(self, draw: "_Draw") -> None:
        from OpenGL import GL

        surface = draw.surface
        uniforms = self._uniforms[draw.cutout]
        GL.glUseProgram(self._programs[draw.cutout])
        # Lashes are cards seen from both sides; hair cards face away from the head, so the back of the head's are culled.
        (GL.glDisable if draw.cutout and not surface.blend else GL.glEnable)(GL.GL_CULL_FACE)
        (GL.glEnable if surface.blend else GL.glDisable)(GL.GL_BLEND)
        GL.glUniform1f(uniforms["wrap"], surface.wrap)
        GL.glUniform1f(uniforms["roughness"], draw.roughness)
        GL.glUniform1f(uniforms["alpha_cut"], surface.alpha_cut)
        for unit, name in ((GL.GL_TEXTURE0, draw.albedo_texture), (GL.GL_TEXTURE1, draw.roughness_texture)):
            GL.glActiveTexture(unit)
            GL.glBindTexture(GL.GL_TEXTURE_2D, name)
        GL.glDrawElements(GL.GL_TRIANGLES, surface.face_count * 3, GL.GL_UNSIGNED_INT, ctypes.c_void_p(surface.first_face * 12))

    def close(self) -> None:
        if self._platform is not None:
            self._platform.delete_context()
            self._platform = None


def _program(name: str, cutout: bool = False) -> int:
    from OpenGL import GL
    from OpenGL.GL import shaders

    def source(suffix: str) -> str:
        text = (SHADERS / f"{name}.{suffix}").read_text()
        return text.replace("\n", "\n#define CUTOUT\n", 1) if cutout else text  # after the #version line

    return shaders.compileProgram(
        shaders.compileShader(source("vert"), GL.GL_VERTEX_SHADER),
        shaders.compileShader(source("frag"), GL.GL_FRAGMENT_SHADER),
        validate=False,  # validation needs the vertex arrays bound; the backdrop has none
    )


class _Draw:
    """A surface as drawn: its textures and what its draw call needs, worked out once."""

    def __init__(self, surface: Surface, albedo_texture: int, roughness_texture: int) -> None:
        self.surface, self.albedo_texture, self.roughness_texture = surface, albedo_texture, roughness_texture
        self.cutout = surface.cutout  # worked out once: it reads the whole texture
        self.roughness = surface.typical_roughness  # lit per vertex, a surface has one


def _runs(indices: np.ndarray) -> list[tuple[int, int]]:
    """Sorted vertex indices as [start, stop) runs, merged across gaps too small to be worth a separate upload."""
    runs: list[tuple[int, int]] = []
    for i in indices.tolist():
        if runs and i - runs[-1][1] < 64:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs
