"""An avatar is a mesh plus one vertex offset per ARKit blendshape.

Deforming it is one matrix product. Each shape also carries the change it makes
to the vertex normals (computed once, at load), so a frame's positions and
normals come out of the same product, interleaved the way the GPU buffer wants
them, instead of recomputing normals from the deformed mesh every frame. Blended
normal deltas are exact for a single shape at full weight and a close
approximation for mixes; the renderer normalises them per pixel.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from models.arkit import ARKIT_NAMES, COUNT


@dataclass
class Avatar:
    name: str
    positions: np.ndarray  # [V, 3] float32, rest pose
    faces: np.ndarray  # [F, 3] uint32
    colors: np.ndarray  # [V, 4] float32 in 0..1
    deltas: np.ndarray  # [52, V, 3] float32, ARKit order
    missing: tuple[str, ...] = ()  # ARKit shapes the avatar does not have (their deltas are zero)

    def __post_init__(self) -> None:
        n = len(self.positions)
        if self.deltas.shape != (COUNT, n, 3):
            raise ValueError(f"deltas must be [{COUNT}, {n}, 3], got {self.deltas.shape}")
        self._incidence = _vertex_face_incidence(self.faces, n)

    def __reduce__(self):
        """Pickles as its data alone (for the render process); caches are rebuilt there."""
        return Avatar, (self.name, self.positions, self.faces, self.colors, self.deltas, self.missing)

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
        vn = self._incidence @ face_n
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

    def deform_with_normals(self, weights: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Positions and (unnormalised) normals interleaved, [V, 6] float32, for ARKit weights [52]."""
        rest, shapes = self._rest_and_shapes
        w = np.asarray(weights, np.float32)
        out = np.empty_like(rest) if out is None else out.reshape(-1)
        np.dot(w, shapes, out=out)
        out += rest
        return out.reshape(-1, 6)

    def shape_extent(self, name: str) -> float:
        """Largest vertex movement of one blendshape at weight 1."""
        return float(np.linalg.norm(self.deltas[ARKIT_NAMES.index(name)], axis=1).max())


def _vertex_face_incidence(faces: np.ndarray, n_vertices: int):
    from scipy.sparse import csr_matrix

    rows = faces.reshape(-1)
    cols = np.repeat(np.arange(len(faces)), 3)
    data = np.ones(len(rows), np.float32)
    return csr_matrix((data, (rows, cols)), shape=(n_vertices, len(faces)))
