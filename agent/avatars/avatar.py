"""An avatar is a mesh plus one vertex offset per ARKit blendshape.

Deforming it is one matrix product. Each shape also carries the change it makes
to the vertex normals (computed once, at load), so a frame's positions and
normals come out of the same product, interleaved the way the GPU buffer wants
them, instead of recomputing normals from the deformed mesh every frame. Blended
normal deltas are exact for a single shape at full weight and a close
approximation for mixes; the renderer normalises them per pixel. Only the
vertices some shape moves are blended (hair cards and shoulders stay put).

A textured avatar has UVs and surfaces: contiguous runs of vertices and
triangles drawn with one texture each (the head's atlas, the hair cards). A
vertex split at a UV seam keeps the normal of the vertex it was split from
(`weld`), so the seam does not show in the shading.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.arkit import ARKIT_NAMES, COUNT


@dataclass(frozen=True)
class Surface:
    """Vertices [first_vertex, first_vertex + vertex_count) and triangles [first_face, first_face + face_count), one material."""
    name: str
    first_vertex: int
    vertex_count: int
    first_face: int
    face_count: int
    albedo: np.ndarray | None = None  # [H, W, 4] uint8, sRGB colour and coverage (alpha); None: the vertex colours alone
    roughness_map: np.ndarray | None = None  # [H, W] uint8, 0..255 = roughness 0..1; None: `roughness` everywhere
    roughness: float = 0.65
    blend: bool = False  # alpha-blended (hair cards): drawn after the opaque surfaces, in triangle order
    wrap: float = 0.0  # light wrapping round the terminator (0 hard, ~0.4 skin-like)

    @property
    def cutout(self) -> bool:
        """Drawn with its texels' coverage cutting it (hair, lashes): blended, or a texture with holes."""
        return self.blend or (self.albedo is not None and int(self.albedo[..., 3].min()) < 255)

    @property
    def alpha_cut(self) -> float:
        """Coverage below which a texel is not drawn: a blended surface's empty texels must write no depth, so
        almost any coverage is kept; a cut-out one's edge (lashes' gaps) sits halfway."""
        return 0.02 if self.blend else 0.5

    @property
    def typical_roughness(self) -> float:
        """One roughness for the whole surface (its map's median): what lighting by vertex uses."""
        return float(np.median(self.roughness_map)) / 255 if self.roughness_map is not None else self.roughness

    @property
    def face_slice(self) -> slice:
        return slice(self.first_face, self.first_face + self.face_count)

    @property
    def vertex_slice(self) -> slice:
        return slice(self.first_vertex, self.first_vertex + self.vertex_count)


@dataclass
class Avatar:
    name: str
    positions: np.ndarray  # [V, 3] float32, rest pose
    faces: np.ndarray  # [F, 3] uint32
    colors: np.ndarray  # [V, 4] float32 in 0..1
    deltas: np.ndarray  # [52, V, 3] float32, ARKit order
    missing: tuple[str, ...] = ()  # ARKit shapes the avatar does not have (their deltas are zero)
    uvs: np.ndarray | None = None  # [V, 2] float32, glTF convention (v down from the image's top)
    surfaces: tuple[Surface, ...] = ()  # empty: one untextured surface of every vertex and triangle
    weld: np.ndarray | None = None  # [V] the vertex whose normal each vertex shares (UV seams); None: its own

    def __post_init__(self) -> None:
        n = len(self.positions)
        if self.deltas.shape != (COUNT, n, 3):
            raise ValueError(f"deltas must be [{COUNT}, {n}, 3], got {self.deltas.shape}")
        if not self.surfaces:
            self.surfaces = (Surface("default", 0, n, 0, len(self.faces)),)
        if any(s.albedo is not None for s in self.surfaces) and (self.uvs is None or len(self.uvs) != n):
            raise ValueError("a textured avatar needs one UV per vertex")
        self._weld = np.arange(n) if self.weld is None else np.asarray(self.weld, np.int64)
        self._incidence = _vertex_face_incidence(self._weld[self.faces], n)

    def __reduce__(self):
        """Pickles as its data alone (for the render process); caches are rebuilt there."""
        return Avatar, (self.name, self.positions, self.faces, self.colors, self.deltas, self.missing, self.uvs, self.surfaces, self.weld)

    @property
    def textured(self) -> bool:
        return any(s.albedo is not None for s in self.surfaces)

    @property
    def vertex_count(self) -> int:
        return len(self.positions)

    def deform(self, weights: np.ndarray) -> np.ndarray:
        """Vertex positions [V, 3] for ARKit weights [52] (the positions of `deform_with_normals`)."""
        return self.deform_with_normals(weights)[:, :3]

    def normals(self, positions: np.ndarray) -> np.ndarray:
        """Smooth vertex normals (area-weighted face normals summed per vertex), unit length."""
        tri = positions[self.faces]
        face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        vn = (self._incidence @ face_n)[self._weld]
        length = np.linalg.norm(vn, axis=1, keepdims=True)
        return (vn / np.maximum(length, 1e-12)).astype(np.float32)

    @cached_property
    def _rest_and_shapes(self) -> tuple[np.ndarray, np.ndarray]:
        """Rest pose [V*6] and per-shape offsets [52, V*6], each vertex as (x, y, z, nx, ny, nz)."""
        n = self.vertex_count
        rest_normals = self.normals(self.positions)
        rest = np.hstack([self.positions, rest_normals]).astype(np.float32).reshape(-1)
        shapes = np.zeros((COUNT, n, 6), np.float32)
        for i in range(COUNT):
            if not self.deltas[i].any():
                continue
            shapes[i, :, :3] = self.deltas[i]
            shapes[i, :, 3:] = self.normals(self.positions + self.deltas[i]) - rest_normals
        return rest, shapes.reshape(COUNT, n * 6)

    @property
    def rest_normals(self) -> np.ndarray:
        """[V, 3] unit normals of the rest pose."""
        rest, _ = self._rest_and_shapes
        return np.ascontiguousarray(rest.reshape(-1, 6)[:, 3:])

    @property
    def normal_deltas(self) -> np.ndarray:
        """[52, V, 3]: how each shape at weight 1 changes the normals (what the renderer blends with the positions)."""
        _, shapes = self._rest_and_shapes
        return shapes.reshape(COUNT, -1, 6)[:, :, 3:]

    @cached_property
    def _moving(self) -> tuple[np.ndarray, np.ndarray]:
        """The vertices some shape moves (or re-shades), and their offsets [52, M*6]."""
        _, shapes = self._rest_and_shapes
        per_vertex = shapes.reshape(COUNT, -1, 6)
        moving = np.flatnonzero(np.abs(per_vertex).max(axis=(0, 2)) > 0)
        return moving, np.ascontiguousarray(per_vertex[:, moving].reshape(COUNT, -1))

    @property
    def moving_vertices(self) -> np.ndarray:
        """Sorted indices of the vertices some shape moves; the others stay at rest whatever the weights."""
        return self._moving[0]

    def deform_with_normals(self, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Positions and (unnormalised) normals interleaved, [V, 6] float32, for ARKit weights [52]."""
        rest, _ = self._rest_and_shapes
        moving, shapes = self._moving
        w = np.asarray(weights, np.float32)
        out = np.empty_like(rest) if out is None else out.reshape(-1)
        out[:] = rest
        rows = out.reshape(-1, 6)
        rows[moving] += np.dot(w, shapes).reshape(-1, 6)
        return rows

    def shape_extent(self, name: str) -> float:
        """Largest vertex movement of one blendshape at weight 1."""
        return float(np.linalg.norm(self.deltas[ARKIT_NAMES.index(name)], axis=1).max())


def _vertex_face_incidence(faces: np.ndarray, n_vertices: int):
    from scipy.sparse import csr_matrix

    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(len(faces)), 3)
    data = np.ones(len(rows), np.float32)
    return csr_matrix((data, (rows, cols)), shape=(n_vertices, len(faces)))
