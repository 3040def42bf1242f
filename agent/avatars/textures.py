"""Textures painted by the project: deterministic, procedural, CC0-clean.

A texture is painted in its own UV space: `rasterise` finds, for every texel, the
point of the mesh it shows (any per-vertex values interpolated across the
triangle), so the look can be written as functions of where on the head a texel
is, at texel resolution instead of per vertex. Empty texels take their nearest
painted neighbour's value, so filtering never bleeds the background in at seams.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def rasterise(uvs: np.ndarray, faces: np.ndarray, values: np.ndarray, size: tuple[int, int],
              priority: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-vertex `values` [V, K] interpolated over the texels [H, W, K] that `faces` cover in `uvs` (glTF: v from the top),
    and the mask [H, W] of covered texels; uncovered texels hold their nearest covered one's values. Where triangles
    overlap in UV space, the one of highest `priority` [F] keeps the texel."""
    height, width = size
    pixel = uvs * np.array([width, height]) - 0.5  # texel centres at integers
    out = np.zeros((height * width, values.shape[1]), np.float32)
    covered = np.zeros(height * width, bool)
    best = np.full(height * width, -np.inf)
    priority = np.zeros(len(faces)) if priority is None else np.asarray(priority, np.float64)
    tri = pixel[faces]  # [F, 3, 2]
    lo = np.floor(tri.min(1)).astype(np.int64)
    extent = np.ceil(tri.max(1)).astype(np.int64) - lo + 1
    span = extent.max(1)
    size_class = np.ceil(np.log2(np.maximum(span, 1))).astype(np.int64)
    for k in np.unique(size_class):  # triangles of about one size together, so the candidate grid stays small
        which = np.flatnonzero(size_class == k)
        step = 1 << int(k)
        gy, gx = np.mgrid[0:step, 0:step]
        for start in range(0, len(which), max(1, 200_000 // (step * step))):
            chunk = which[start:start + max(1, 200_000 // (step * step))]
            px = lo[chunk, 0, None] + gx.reshape(1, -1)
            py = lo[chunk, 1, None] + gy.reshape(1, -1)
            a, b, c = tri[chunk, 0], tri[chunk, 1], tri[chunk, 2]
            v0, v1 = b - a, c - a
            det = v0[:, 0] * v1[:, 1] - v0[:, 1] * v1[:, 0]
            det = np.where(np.abs(det) < 1e-12, 1e-12, det)
            dx, dy = px - a[:, 0, None], py - a[:, 1, None]
            w1 = (dx * v1[:, 1, None] - dy * v1[:, 0, None]) / det[:, None]
            w2 = (v0[:, 0, None] * dy - v0[:, 1, None] * dx) / det[:, None]
            w0 = 1 - w1 - w2
            inside = (w0 >= -1e-6) & (w1 >= -1e-6) & (w2 >= -1e-6) & (px >= 0) & (py >= 0) & (px < width) & (py < height)
            rows, cols = np.nonzero(inside)
            corner = faces[chunk[rows]]
            interpolated = (w0[rows, cols, None] * values[corner[:, 0]] + w1[rows, cols, None] * values[corner[:, 1]]
                            + w2[rows, cols, None] * values[corner[:, 2]])
            flat = py[rows, cols] * width + px[rows, cols]
            rank = priority[chunk[rows]]
            order = np.argsort(rank, kind="stable")  # the highest last, so it is the one written
            flat, rank, interpolated = flat[order], rank[order], interpolated[order]
            keep = rank >= best[flat]
            out[flat[keep]] = interpolated[keep]
            best[flat[keep]] = rank[keep]
            covered[flat[keep]] = True
    out, covered = out.reshape(height, width, -1), covered.reshape(height, width)
    if covered.any() and not covered.all():
        _, (iy, ix) = ndimage.distance_transform_edt(~covered, return_indices=True)
        out = out[iy, ix]
    return out, covered


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def value_noise(shape: tuple[int, int], cell: float, seed: int) -> np.ndarray:
    """Smooth noise in 0..1 with features about `cell` texels across (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((int(np.ceil(shape[0] / cell)) + 2, int(np.ceil(shape[1] / cell)) + 2))
    zoom = (shape[0] / (coarse.shape[0] - 2), shape[1] / (coarse.shape[1] - 2))
    return ndimage.zoom(coarse, zoom, order=3, mode="reflect")[: shape[0], : shape[1]].clip(0, 1)


def strokes(shape: tuple[int, int], starts: np.ndarray, directions: np.ndarray, length: np.ndarray, width: float, supersample: int = 2) -> np.ndarray:
    """Coverage [H, W] in 0..1 of thin anti-aliased line strokes (brows, stubble, hair strands) drawn from texel
    positions `starts` [N, 2] (x, y) along unit `directions` [N, 2] for `length` [N] texels."""
    from PIL import Image, ImageDraw

    big = Image.new("L", (shape[1] * supersample, shape[0] * supersample), 0)
    draw = ImageDraw.Draw(big)
    ends = starts + directions * length[:, None]
    line_width = max(1, int(round(width * supersample)))
    for (x0, y0), (x1, y1) in zip(starts * supersample, ends * supersample):
        draw.line([(float(x0), float(y0)), (float(x1), float(y1))], fill=255, width=line_width)
    small = big.resize((shape[1], shape[0]), Image.BOX)
    return np.asarray(small, np.float32) / 255.0


def to_srgb8(linear: np.ndarray) -> np.ndarray:
    """Linear colours in 0..1 to sRGB-encoded uint8 (how glTF stores a base colour texture; the GPU decodes it back)."""
    c = np.clip(linear, 0, 1)
    return to_unorm8(np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055))


def to_unorm8(values: np.ndarray) -> np.ndarray:
    """Data in 0..1 (roughness, coverage) to uint8, as is."""
    return np.clip(np.round(np.asarray(values) * 255), 0, 255).astype(np.uint8)
