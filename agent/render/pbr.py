"""The full pyrender scene with its PBR shader: `render.shading: pbr`, worth it on a GPU (EGL).

On software GL the lean renderer draws the same lighting several times faster.
"""
from __future__ import annotations

import numpy as np

from ..avatars.avatar import Avatar, Surface
from .view import AMBIENT, YFOV, Backdrop, FaceView, backdrop_image


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

    def __init__(self, avatar: Avatar, width: int = 512, height: int = 512, backend: str = "osmesa", msaa: int = 0,
                 backdrop: Backdrop = Backdrop()) -> None:
        import pyrender

        self.avatar, self.width, self.height, self.backend = avatar, width, height, backend
        self.view = FaceView.for_avatar(avatar, width, height)  # pyrender multisamples on EGL by itself; msaa is ignored
        rest = avatar.deform_with_normals(np.zeros(52, np.float32))
        self._static = []  # per surface: its (texcoords, colours), the parts of its vertex buffer that never change
        primitives = []
        for surface in avatar.surfaces:
            vertices = surface.vertex_slice
            uv = avatar.uvs[vertices] * (1, -1) + (0, 1) if avatar.uvs is not None else None  # pyrender flips images: t up
            colours = avatar.colors[vertices].astype(np.float32)
            primitives.append(pyrender.Primitive(
                positions=rest[vertices, :3], normals=rest[vertices, 3:], texcoord_0=uv, color_0=colours,
                indices=avatar.faces[surface.face_slice] - surface.first_vertex, material=_material(surface), mode=4))
            self._static.append([part for part in (uv, colours) if part is not None])
        self.scene = pyrender.Scene(bg_color=(*backdrop.glow, 1.0), ambient_light=AMBIENT)  # the backdrop goes in after
        self._node = self.scene.add(pyrender.Mesh(primitives))
        self._primitives = primitives
        view = self.view
        camera = pyrender.PerspectiveCamera(yfov=YFOV, aspectRatio=width / height, znear=view.znear, zfar=view.zfar)
        self.scene.add(camera, pose=view.camera_pose)
        for light in view.lights:
            self.scene.add(pyrender.DirectionalLight(color=light.color, intensity=light.intensity), pose=light.pose)
        self._renderer = pyrender.OffscreenRenderer(width, height)
        _cache_shader_programs(self._renderer._renderer._program_cache)
        self._backdrop = backdrop_image(backdrop, width, height)
        moving = avatar.moving_vertices
        self._moves = [bool(np.any((moving >= s.first_vertex) & (moving < s.first_vertex + s.vertex_count))) for s in avatar.surfaces]
        self._vertex_buffers = None
        self.render(np.zeros(52, np.float32))  # uploads the mesh to the GPU context
        self._vertex_buffers = [primitive._buffers[0] for primitive in primitives]

    def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        """RGB uint8 image [H, W, 3]."""
        import pyrender
        from OpenGL import GL

        self._renderer._platform.make_current()  # another renderer may share this thread
        if self._vertex_buffers is not None:
            deformed = self.avatar.deform_with_normals(weights)
            for surface, buffer, static, moves in zip(self.avatar.surfaces, self._vertex_buffers, self._static, self._moves):
                if not moves:
                    continue  # a surface no shape moves (hair cards) keeps the buffer it was uploaded with
                interleaved = np.ascontiguousarray(np.hstack([deformed[surface.vertex_slice], *static]), np.float32)
                GL.glBindBuffer(GL.GL_ARRAY_BUFFER, buffer)
                GL.glBufferSubData(GL.GL_ARRAY_BUFFER, 0, interleaved.nbytes, interleaved)
            GL.glBindBuffer(GL.GL_ARRAY_BUFFER, 0)
        self.scene.set_pose(self._node, self.view.head_pose(head_rotation))
        color, depth = self._renderer.render(self.scene, flags=pyrender.RenderFlags.NONE)
        image = color.copy()
        empty = depth <= 0  # pyrender's depth is 0 where nothing was drawn: the backdrop goes there
        image[empty] = self._backdrop[empty]
        return image

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.delete()
            self._renderer = None


def _material(surface: Surface):
    """The surface as a glTF metallic-roughness material: its albedo and roughness maps, blended or cut out by its alpha."""
    import pyrender

    textures = {}
    if surface.albedo is not None:
        textures["baseColorTexture"] = pyrender.Texture(source=surface.albedo, source_channels="RGBA")
    if surface.roughness_map is not None:
        packed = np.zeros((*surface.roughness_map.shape, 3), np.uint8)
        packed[..., 1] = surface.roughness_map  # glTF: roughness in green, metallic (0) in blue
        textures["metallicRoughnessTexture"] = pyrender.Texture(source=packed, source_channels="RGB")
    holes = surface.albedo is not None and int(surface.albedo[..., 3].min()) < 255
    mode = "BLEND" if surface.blend else ("MASK" if holes else "OPAQUE")
    return pyrender.MetallicRoughnessMaterial(metallicFactor=0.0, roughnessFactor=1.0 if surface.roughness_map is not None else surface.roughness,
                                              baseColorFactor=(1.0, 1.0, 1.0, 1.0), alphaMode=mode, alphaCutoff=0.5,
                                              doubleSided=holes and not surface.blend, **textures)
