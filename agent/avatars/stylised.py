"""The stylised head, generated from code (no third-party asset): `render.avatar: stylised`, and the test fakes' avatar.

A cartoon service agent: head with lips that part, teeth, tongue, eyes with
lids, brows, hair, neck and shirt. Every ARKit blendshape is built as a smooth
regional offset, so the face deforms without seams. Units: the head is about
2 units tall; the subject looks along +z and their left is +x (ARKit's "Left").
"""
from __future__ import annotations

import numpy as np

from models.arkit import ARKIT_NAMES, COUNT
from .avatar import Avatar

SKIN = (0.88, 0.67, 0.55, 1.0)
BLUSH = (0.86, 0.52, 0.48, 1.0)
LIPS = (0.72, 0.32, 0.34, 1.0)
HAIR = (0.16, 0.11, 0.08, 1.0)
BROW = (0.16, 0.10, 0.07, 1.0)
EYE_WHITE = (0.94, 0.94, 0.92, 1.0)
IRIS = (0.28, 0.42, 0.55, 1.0)
PUPIL = (0.03, 0.03, 0.03, 1.0)
LASHES = (0.12, 0.08, 0.07, 1.0)
MOUTH = (0.30, 0.08, 0.10, 1.0)
TEETH = (0.95, 0.94, 0.90, 1.0)
TONGUE = (0.75, 0.35, 0.38, 1.0)
SHIRT = (0.15, 0.36, 0.62, 1.0)
COLLAR = (0.95, 0.95, 0.97, 1.0)

MOUTH_Y = -0.44
MOUTH_HALF_WIDTH = 0.21
EYE_Y = 0.17
EYE_X = 0.27
EYE_R = 0.105
EYE_Z = 0.66
LID_REST = 1.15  # radians from the top of the eye that the upper lid covers at rest
JAW_PIVOT = np.array([0.0, -0.05, -0.15], np.float32)


class _Builder:
    def __init__(self) -> None:
        self.positions: list[np.ndarray] = []
        self.faces: list[np.ndarray] = []
        self.colors: list[np.ndarray] = []
        self.parts: dict[str, slice] = {}
        self._count = 0

    def add(self, name: str, positions: np.ndarray, faces: np.ndarray, colors: np.ndarray) -> slice:
        part = slice(self._count, self._count + len(positions))
        self.positions.append(positions.astype(np.float32))
        self.faces.append((faces + self._count).astype(np.uint32))
        self.colors.append(colors.astype(np.float32))
        self.parts[name] = part
        self._count += len(positions)
        return part


def _grid_faces(rows: int, cols: int, wrap: bool, skip=None) -> np.ndarray:
    faces = []
    col_range = cols if wrap else cols - 1
    for i in range(rows - 1):
        for j in range(col_range):
            if skip is not None and skip(i, j):
                continue
            a, b = i * cols + j, i * cols + (j + 1) % cols
            c, d = (i + 1) * cols + j, (i + 1) * cols + (j + 1) % cols
            faces.append((a, b, d))
            faces.append((a, d, c))
    return np.array(faces, np.int64)


def _gauss(p: np.ndarray, center, radii) -> np.ndarray:
    d = (p - np.asarray(center, np.float32)) / np.asarray(radii, np.float32)
    return np.exp(-0.5 * np.sum(d * d, axis=1)).astype(np.float32)


def _facing(points: np.ndarray, faces: np.ndarray, outward: np.ndarray) -> np.ndarray:
    """Winds each triangle so its normal points along `outward` (per vertex or one vector).

    Thin sheets (lids, teeth) get one side only: a second, reversed copy would
    cancel the smooth vertex normals and shade as noise.
    """
    tri = points[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    direction = outward[faces].mean(axis=1) if np.ndim(outward) == 2 else np.broadcast_to(outward, normal.shape)
    flip = np.sum(normal * direction, axis=1) < 0
    faces = faces.copy()
    faces[flip] = faces[flip][:, ::-1]
    return faces


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _warp(s: np.ndarray, power: float) -> np.ndarray:
    """Maps -1..1 to -1..1 with more samples near 0 (the face)."""
    return np.sign(s) * np.abs(s) ** power


def _head(b: _Builder) -> tuple[slice, int, int, np.ndarray]:
    n_lat, n_lon = 72, 96
    # Denser latitude rows from chin to brow.
    t = np.linspace(-1, 1, n_lat)
    lat = np.pi / 2 * np.sign(t) * np.abs(t) ** np.where(t < 0, 1.15, 1.5) * 0.999
    lon = np.pi * _warp(np.linspace(-1, 1, n_lon, endpoint=False), 1.7)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    x = 0.80 * np.cos(la) * np.sin(lo)
    y = 1.02 * np.sin(la)
    z = 0.88 * np.cos(la) * np.cos(lo)
    p = np.stack([x, y, z], -1).reshape(-1, 3).astype(np.float32)
    front = _smoothstep(0.1, 0.6, p[:, 2])
    # Jaw and chin narrow, the skull is wider.
    lower = _smoothstep(-0.1, -0.9, p[:, 1])
    p[:, 0] *= 1.0 - 0.2 * lower * (0.5 + 0.5 * front)
    p[:, 2] -= 0.10 * lower * (1 - front)
    # Flatter face plane, cheeks, chin, nose, brow ridge, eye sockets, lips.
    p[:, 2] += 0.07 * _gauss(p, (0.34, -0.18, 0.8), (0.16, 0.16, 0.5)) + 0.07 * _gauss(p, (-0.34, -0.18, 0.8), (0.16, 0.16, 0.5))
    p[:, 2] += 0.09 * _gauss(p, (0, -0.78, 0.7), (0.16, 0.09, 0.5))
    nose = _gauss(p, (0, -0.09, 0.9), (0.08, 0.14, 0.5)) + 0.2 * _gauss(p, (0, 0.1, 0.9), (0.05, 0.12, 0.5))
    p[:, 2] += 0.25 * nose
    p[:, 2] += 0.06 * _gauss(p, (0, -0.22, 0.9), (0.1, 0.04, 0.5))  # nostril wings
    for sx in (-1, 1):
        # A socket deep enough that the eyeball shows between the lids.
        p[:, 2] -= 0.19 * _gauss(p, (sx * EYE_X, EYE_Y, 0.8), (0.105, 0.068, 0.4))
        p[:, 2] += 0.035 * _gauss(p, (sx * EYE_X, EYE_Y + 0.16, 0.8), (0.16, 0.04, 0.4))
    p[:, 2] += 0.09 * _gauss(p, (0, MOUTH_Y, 0.85), (0.19, 0.075, 0.5))  # full lips
    # Ears.
    for sx in (-1, 1):
        p[:, 0] += sx * 0.09 * _gauss(p, (sx * 0.8, 0.02, -0.05), (0.05, 0.17, 0.09))

    # The lip line: the two latitude rows closest to the mouth meet there at rest,
    # and the faces between them are left out so the jaw can part the lips.
    grid_y = (1.02 * np.sin(lat))
    row_lower = int(np.argmin(np.abs(grid_y - MOUTH_Y)))
    if grid_y[row_lower] > MOUTH_Y:
        row_lower -= 1
    row_upper = row_lower + 1
    lon_x = 0.8 * np.sin(lon) * np.cos(np.arcsin(MOUTH_Y / 1.02))
    mouth_cols = np.flatnonzero((np.abs(lon_x) < MOUTH_HALF_WIDTH) & (np.cos(lon) > 0))
    grid = p.reshape(n_lat, n_lon, 3)
    for j in mouth_cols:
        corner = 1.0 - (abs(lon_x[j]) / MOUTH_HALF_WIDTH) ** 2
        mid = 0.5 * (grid[row_lower, j] + grid[row_upper, j])
        grid[row_lower, j] = mid - np.array([0, 0.004 * corner, 0], np.float32)
        grid[row_upper, j] = mid + np.array([0, 0.004 * corner, 0], np.float32)
    # Close the poles: a fan would be nicer, but collapsing rows to points is seamless and cheap.
    mouth_set = set(mouth_cols[:-1].tolist())
    faces = _grid_faces(n_lat, n_lon, wrap=True, skip=lambda i, j: i == row_lower and j in mouth_set)
    p = grid.reshape(-1, 3)

    colors = np.tile(np.array(SKIN, np.float32), (len(p), 1))
    for sx in (-1, 1):  # a little warmth on the cheeks
        blush = 0.35 * _gauss(p, (sx * 0.38, -0.22, 0.8), (0.13, 0.1, 0.4))[:, None] * (p[:, 2:3] > 0.3)
        colors = colors * (1 - blush) + np.array(BLUSH, np.float32) * blush
    lip = _gauss(p, (0, MOUTH_Y, 0.9), (MOUTH_HALF_WIDTH * 0.66, 0.055, 0.3))
    lip = np.clip(lip * 1.6, 0, 1)[:, None]
    colors = colors * (1 - lip) + np.array(LIPS, np.float32) * lip
    for sx in (-1, 1):
        arched = p + np.stack([0 * p[:, 0], 0.9 * (p[:, 0] - sx * EYE_X) ** 2, 0 * p[:, 0]], -1)  # brows arch
        brow = _gauss(arched, (sx * (EYE_X + 0.02), EYE_Y + 0.165, 0.8), (0.11, 0.026, 0.4))
        brow = np.clip(brow * 2.6 - 0.4, 0, 1)[:, None] * (p[:, 2:3] > 0.3)
        colors = colors * (1 - brow) + np.array(BROW, np.float32) * brow
    hairline = 0.62 - 0.05 * np.abs(p[:, 0]) * 3 - 0.9 * _smoothstep(0.2, -0.5, p[:, 2])
    hair = _smoothstep(-0.03, 0.03, p[:, 1] - hairline)
    sideburn = _smoothstep(0.55, 0.7, np.abs(p[:, 0])) * _smoothstep(-0.05, 0.1, p[:, 1]) * _smoothstep(0.45, 0.25, p[:, 2])
    hair = np.maximum(hair, sideburn.astype(np.float32))[:, None]
    colors = colors * (1 - hair) + np.array(HAIR, np.float32) * hair
    # Hair has some volume.
    out = p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-6)
    p += (0.05 + 0.06 * np.clip(p[:, 1:2], 0, 1)) * hair * out  # more volume on top
    b_slice = b.add("head", p, faces, colors)
    return b_slice, row_lower, row_upper, mouth_cols


def _sphere(radius, center, n_lat=16, n_lon=24, scale=(1, 1, 1)):
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat)
    lon = np.linspace(-np.pi, np.pi, n_lon, endpoint=False)
    la, lo = np.meshgrid(lat, lon, indexing="ij")
    p = np.stack([np.cos(la) * np.sin(lo), np.sin(la), np.cos(la) * np.cos(lo)], -1).reshape(-1, 3)
    p = p * radius * np.asarray(scale) + np.asarray(center)
    return p.astype(np.float32), _grid_faces(n_lat, n_lon, wrap=True)


def _eye(b: _Builder, side: int) -> tuple[slice, slice, np.ndarray]:
    center = np.array([side * EYE_X, EYE_Y, EYE_Z], np.float32)
    p, f = _sphere(EYE_R, center, 30, 44)
    d = (p - center) / EYE_R
    cos_fwd = d[:, 2]
    colors = np.tile(np.array(EYE_WHITE, np.float32), (len(p), 1))
    colors[cos_fwd > 0.83] = IRIS
    colors[cos_fwd > 0.95] = PUPIL
    eye = b.add(f"eye{side}", p, f, colors)
    # Upper lid: a shell slightly larger than the eye, from the top down to the open angle.
    n_a, n_l = 10, 28
    alpha = np.linspace(0.0, 1.0, n_a)
    lon = np.linspace(-np.pi * 0.75, np.pi * 0.75, n_l)
    aa, ll = np.meshgrid(alpha, lon, indexing="ij")
    lid = _lid_points(center, aa, ll, open_angle=LID_REST).reshape(-1, 3)
    lid_colors = np.tile(np.array(SKIN, np.float32) * np.array([0.95, 0.92, 0.92, 1.0], np.float32), (len(lid), 1))
    lid_colors[(aa.reshape(-1) > 0.88)] = LASHES  # a lash line gives the eye its outline
    lid_faces = _grid_faces(n_a, n_l, wrap=False)
    lid_faces = _facing(lid, lid_faces, lid - center)
    lid_slice = b.add(f"lid{side}", lid, lid_faces, lid_colors)
    return eye, lid_slice, center


def _lid_points(center, alpha_frac, lon, open_angle):
    """Lid shell points: polar angle from straight up (theta), around the eye's vertical axis."""
    theta = alpha_frac * open_angle
    r = EYE_R * 1.12
    x = r * np.sin(theta) * np.sin(lon)
    z = r * np.sin(theta) * np.cos(lon)
    y = r * np.cos(theta)
    return np.stack([x, y, z], -1) + center


def _mouth_parts(b: _Builder) -> dict[str, slice]:
    parts = {}
    p, f = _sphere(1.0, (0, MOUTH_Y - 0.03, 0.55), 12, 20, scale=(0.2, 0.13, 0.22))
    f = f[:, ::-1]  # seen from inside
    parts["cavity"] = b.add("cavity", p, f, np.tile(np.array(MOUTH, np.float32), (len(p), 1)))
    for name, y0, y1 in (("upper_teeth", MOUTH_Y + 0.005, MOUTH_Y + 0.06), ("lower_teeth", MOUTH_Y - 0.06, MOUTH_Y - 0.008)):
        ang = np.linspace(-1.0, 1.0, 16)
        ys = np.array([y0, y1])
        aa, yy = np.meshgrid(ang, ys, indexing="ij")
        x = 0.17 * np.sin(aa)
        z = 0.70 + 0.09 * np.cos(aa) - 0.09
        pts = np.stack([x, yy, z * np.ones_like(yy)], -1).reshape(-1, 3)
        tf = _grid_faces(16, 2, wrap=False)
        tf = _facing(pts, tf, np.array([0.0, 0.0, 1.0]))
        parts[name] = b.add(name, pts, tf, np.tile(np.array(TEETH, np.float32), (len(pts), 1)))
    p, f = _sphere(1.0, (0, MOUTH_Y - 0.07, 0.6), 10, 16, scale=(0.12, 0.04, 0.12))
    parts["tongue"] = b.add("tongue", p, f, np.tile(np.array(TONGUE, np.float32), (len(p), 1)))
    return parts


def _body(b: _Builder) -> None:
    n_h, n_a = 8, 32
    hh = np.linspace(-1.55, -0.55, n_h)
    aa = np.linspace(-np.pi, np.pi, n_a, endpoint=False)
    H, A = np.meshgrid(hh, aa, indexing="ij")
    p = np.stack([0.42 * np.sin(A), H, 0.40 * np.cos(A) - 0.14], -1).reshape(-1, 3)
    b.add("neck", p, _grid_faces(n_h, n_a, wrap=True), np.tile(np.array(SKIN, np.float32) * 0.93, (len(p), 1)))
    p, f = _sphere(1.0, (0, -2.35, -0.2), 16, 36, scale=(1.55, 0.9, 0.62))
    colors = np.tile(np.array(SHIRT, np.float32), (len(p), 1))
    collar = (np.abs(p[:, 0]) < 0.55) & (p[:, 1] > -1.62) & (p[:, 2] > -0.1)
    colors[collar] = COLLAR
    b.add("shirt", p, f, colors)


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)


def build_stylised_head() -> Avatar:
    b = _Builder()
    head, row_lower, row_upper, mouth_cols = _head(b)
    eye_l, lid_l, center_l = _eye(b, +1)
    eye_r, lid_r, center_r = _eye(b, -1)
    mouth = _mouth_parts(b)
    _body(b)
    positions = np.concatenate(b.positions)
    faces = np.concatenate(b.faces)
    colors = np.concatenate(b.colors)
    n = len(positions)
    deltas = np.zeros((COUNT, n, 3), np.float32)

    def shape(name: str) -> np.ndarray:
        return deltas[ARKIT_NAMES.index(name)]

    head_p = positions[head]
    n_lon = 96
    row = np.arange(head.stop - head.start) // n_lon
    front = _smoothstep(0.0, 0.5, head_p[:, 2])

    # Jaw: everything on or below the lower lip row rotates about the jaw pivot.
    below = (row <= row_lower).astype(np.float32)
    near_mouth_y = _smoothstep(MOUTH_Y + 0.35, MOUTH_Y - 0.05, head_p[:, 1])
    jaw_weight = below * np.maximum(front, 0.25) * np.maximum(near_mouth_y, 0.6)
    jaw_weight *= _smoothstep(-0.6, -0.1, head_p[:, 2] - 0.0) * 0.7 + 0.3
    jaw_rot = _rotation_x(0.30)
    rel = head_p - JAW_PIVOT
    shape("jawOpen")[head] = ((rel @ jaw_rot.T) - rel) * jaw_weight[:, None]
    for part in ("lower_teeth", "tongue"):
        rel_p = positions[mouth[part]] - JAW_PIVOT
        shape("jawOpen")[mouth[part]] = (rel_p @ jaw_rot.T) - rel_p
    cav = positions[mouth["cavity"]]
    cav_below = _smoothstep(MOUTH_Y + 0.02, MOUTH_Y - 0.08, cav[:, 1])[:, None]
    rel_c = cav - JAW_PIVOT
    shape("jawOpen")[mouth["cavity"]] = ((rel_c @ jaw_rot.T) - rel_c) * cav_below
    for name, dx in (("jawLeft", 0.06), ("jawRight", -0.06)):
        shape(name)[head] = np.array([dx, 0, 0], np.float32) * jaw_weight[:, None]
        for part in ("lower_teeth", "tongue"):
            shape(name)[mouth[part]] = (dx, 0, 0)
    shape("jawForward")[head] = np.array([0, 0, 0.05], np.float32) * jaw_weight[:, None]
    for part in ("lower_teeth", "tongue"):
        shape("jawForward")[mouth[part]] = (0, 0, 0.05)

    lips = _gauss(head_p, (0, MOUTH_Y, 0.9), (MOUTH_HALF_WIDTH * 0.9, 0.09, 0.4)) * front
    lower_lip = lips * (row <= row_lower)
    upper_lip = lips * (row >= row_upper)
    to_center_x = -head_p[:, 0]
    shape("mouthFunnel")[head] = np.stack([0.35 * to_center_x * lips, np.zeros(len(lips)), 0.07 * lips], -1)
    shape("mouthFunnel")[head, 1] += -0.04 * lower_lip + 0.04 * upper_lip
    shape("mouthPucker")[head] = np.stack([0.55 * to_center_x * lips, np.zeros(len(lips)), 0.09 * lips], -1)
    shape("mouthLowerDownLeft")[head, 1] = -0.06 * lower_lip * _smoothstep(-0.2, 0.1, head_p[:, 0])
    shape("mouthLowerDownRight")[head, 1] = -0.06 * lower_lip * _smoothstep(0.2, -0.1, head_p[:, 0])
    shape("mouthUpperUpLeft")[head, 1] = 0.045 * upper_lip * _smoothstep(-0.2, 0.1, head_p[:, 0])
    shape("mouthUpperUpRight")[head, 1] = 0.045 * upper_lip * _smoothstep(0.2, -0.1, head_p[:, 0])
    shape("mouthClose")[head, 1] = 0.09 * lower_lip - 0.02 * upper_lip
    shape("mouthRollLower")[head] = np.stack([np.zeros(len(lips)), 0.02 * lower_lip, -0.05 * lower_lip], -1)
    shape("mouthRollUpper")[head] = np.stack([np.zeros(len(lips)), -0.02 * upper_lip, -0.05 * upper_lip], -1)
    shape("mouthShrugLower")[head, 1] = 0.05 * _gauss(head_p, (0, MOUTH_Y - 0.12, 0.9), (0.15, 0.08, 0.4)) * front
    shape("mouthShrugUpper")[head, 1] = 0.03 * upper_lip
    shape("mouthLeft")[head, 0] = 0.07 * lips
    shape("mouthRight")[head, 0] = -0.07 * lips
    shape("cheekPuff")[head] = 0.0
    for side, sx in (("Left", 1.0), ("Right", -1.0)):
        corner = _gauss(head_p, (sx * MOUTH_HALF_WIDTH, MOUTH_Y, 0.8), (0.09, 0.08, 0.4)) * front
        shape(f"mouthSmile{side}")[head] = np.stack([sx * 0.07 * corner, 0.10 * corner, -0.03 * corner], -1)
        shape(f"mouthFrown{side}")[head] = np.stack([sx * 0.01 * corner, -0.06 * corner, 0 * corner], -1)
        shape(f"mouthStretch{side}")[head] = np.stack([sx * 0.07 * corner, -0.02 * corner, -0.02 * corner], -1)
        shape(f"mouthDimple{side}")[head] = np.stack([sx * 0.03 * corner, 0 * corner, -0.04 * corner], -1)
        shape(f"mouthPress{side}")[head] = np.stack([0 * corner, 0.01 * corner, -0.02 * corner], -1) * 1.0
        shape(f"mouthPress{side}")[head, 1] += 0.03 * lower_lip * (sx * head_p[:, 0] > -0.05)
        cheek = _gauss(head_p, (sx * 0.36, -0.16, 0.8), (0.14, 0.1, 0.5)) * front
        shape(f"cheekSquint{side}")[head, 1] = 0.05 * cheek
        shape("cheekPuff")[head, 0] += sx * 0.08 * _gauss(head_p, (sx * 0.42, -0.35, 0.6), (0.16, 0.14, 0.5))
        shape("cheekPuff")[head, 2] += 0.04 * _gauss(head_p, (sx * 0.42, -0.35, 0.6), (0.16, 0.14, 0.5))
        sneer = _gauss(head_p, (sx * 0.1, -0.12, 0.95), (0.06, 0.07, 0.4))
        shape(f"noseSneer{side}")[head, 1] = 0.04 * sneer
        inner = _gauss(head_p, (sx * 0.12, EYE_Y + 0.17, 0.8), (0.08, 0.07, 0.4)) * front
        outer = _gauss(head_p, (sx * 0.38, EYE_Y + 0.15, 0.7), (0.09, 0.07, 0.4)) * front
        brow = _gauss(head_p, (sx * EYE_X, EYE_Y + 0.17, 0.8), (0.16, 0.08, 0.4)) * front
        shape("browInnerUp")[head, 1] += 0.07 * inner
        shape(f"browOuterUp{side}")[head, 1] = 0.07 * outer
        shape(f"browDown{side}")[head] = np.stack([-sx * 0.02 * brow, -0.06 * brow, 0.01 * brow], -1)

    # Eyes: lids close (blink) or open wider; eyeballs rotate for gaze.
    n_a, n_l = 10, 28
    alpha = np.linspace(0.0, 1.0, n_a)
    lon = np.linspace(-np.pi * 0.75, np.pi * 0.75, n_l)
    aa, ll = np.meshgrid(alpha, lon, indexing="ij")
    for side, lid, eye, center in (("Left", lid_l, eye_l, center_l), ("Right", lid_r, eye_r, center_r)):
        rest = _lid_points(center, aa, ll, LID_REST).reshape(-1, 3)
        shape(f"eyeBlink{side}")[lid] = _lid_points(center, aa, ll, 2.45).reshape(-1, 3) - rest
        shape(f"eyeWide{side}")[lid] = _lid_points(center, aa, ll, 0.85).reshape(-1, 3) - rest
        shape(f"eyeSquint{side}")[lid] = _lid_points(center, aa, ll, 1.6).reshape(-1, 3) - rest
        rel_e = positions[eye] - center
        angle = 0.35
        c, s = np.cos(angle), np.sin(angle)
        up = np.array([[1, 0, 0], [0, c, s], [0, -s, c]], np.float32)  # pupil toward +y
        down = up.T
        toward_plus_x = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)
        toward_minus_x = toward_plus_x.T
        sx = 1.0 if side == "Left" else -1.0
        out_rot, in_rot = (toward_plus_x, toward_minus_x) if sx > 0 else (toward_minus_x, toward_plus_x)
        for name, rot in (("eyeLookUp", up), ("eyeLookDown", down), ("eyeLookOut", out_rot), ("eyeLookIn", in_rot)):
            shape(f"{name}{side}")[eye] = rel_e @ rot.T - rel_e
        shape(f"eyeLookUp{side}")[lid] = (0, 0.015, 0)

    tongue = positions[mouth["tongue"]]
    shape("tongueOut")[mouth["tongue"]] = np.stack([np.zeros(len(tongue)), np.full(len(tongue), -0.02), np.full(len(tongue), 0.2)], -1)

    missing = tuple(name for i, name in enumerate(ARKIT_NAMES) if not np.any(deltas[i]))
    return Avatar("stylised", positions, faces.astype(np.uint32), colors, deltas, missing)
