"""Hair as alpha-textured cards grown from the scalp, per style.

Each card is a ribbon a few millimetres to a centimetre wide that starts at a
root sampled on the scalp and follows a comb direction (away from the parting,
back towards a tie, down with gravity for long hair), pushed out of the head and
shoulders as it goes. Cards of inner layers come first in the triangle order, so
drawing them in order with blending puts outer strands over inner ones. The
strand texture (`strand_texture`) gives every card many strands with tapered,
semi-transparent tips; cards near the hairline are shorter and sparser, so the
hairline is soft. Units are the base mesh's decimetres, +Y up, facing +Z.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from .textures import strokes, to_srgb8, to_unorm8

STYLES = ("short", "side_part", "long", "tied_back", "crop", "none")


@dataclass(frozen=True)
class Style:
    cards: int  # how many cards
    length: tuple[float, float]  # strand length range (dm)
    width: float  # card width (dm)
    lift: tuple[float, float]  # height of the layers above the scalp (dm): inner .. outer
    gravity: float  # how much strands bend down per segment
    segments: int
    parting_x: float | None = None  # x of a side parting (dm); None: combed back
    tie: tuple[float, float, float] | None = None  # strands pulled to this point (tied back)
    top_density: float = 1.0  # 0: bald on top (the crown has no cards)


STYLE_SPECS = {
    "short": Style(cards=320, length=(0.4, 0.75), width=0.22, lift=(0.03, 0.08), gravity=0.12, segments=3),
    "side_part": Style(cards=320, length=(0.6, 1.1), width=0.22, lift=(0.03, 0.09), gravity=0.2, segments=3, parting_x=0.35),
    "long": Style(cards=340, length=(2.0, 3.0), width=0.26, lift=(0.03, 0.12), gravity=0.6, segments=6, parting_x=0.12),
    "tied_back": Style(cards=320, length=(1.0, 1.6), width=0.22, lift=(0.02, 0.06), gravity=0.05, segments=4, tie=(0.0, 7.75, -1.05)),
    "crop": Style(cards=260, length=(0.15, 0.3), width=0.16, lift=(0.015, 0.04), gravity=0.3, segments=2, top_density=0.15),
}


def grow_cards(positions: np.ndarray, normals: np.ndarray, scalp: np.ndarray, inside: np.ndarray, body: np.ndarray,
               style_name: str, hug_above_y: float, face_box: tuple[float, float, float], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cards over the `scalp` triangles [S, 3]: positions [N, 3], triangles [M, 3] (local indices) and UVs [N, 2].

    `inside` [V] is how far each vertex is inside the hair region (dm, positive inside); `body` are the vertex
    indices the strands must stay outside of (head, neck and shoulders); above `hug_above_y` strands lie on the skull;
    `face_box` (half width, brow height, front z) is the face, which strands go round, not over."""
    style = STYLE_SPECS[style_name]
    rng = np.random.default_rng(seed)
    tri = positions[scalp]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    depth = np.clip(inside[scalp].mean(1) / 0.35, 0, 1)  # 0 at the hairline .. 1 well inside
    top = np.clip((tri[:, :, 1].mean(1) - 8.0) / 0.5, 0, 1) * np.clip(1 - np.abs(tri[:, :, 0].mean(1)) / 0.6, 0, 1)
    weight = area * (0.25 + 0.75 * depth) * (1 - (1 - style.top_density) * top)  # sparser at the hairline
    pick = rng.choice(len(scalp), style.cards, p=weight / weight.sum())
    a, b = rng.random((2, style.cards))
    flip = a + b > 1
    a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
    corners = tri[pick]
    roots = corners[:, 0] + a[:, None] * (corners[:, 1] - corners[:, 0]) + b[:, None] * (corners[:, 2] - corners[:, 0])
    root_depth = depth[pick]
    layer = rng.random(style.cards)
    order = np.argsort(layer)  # inner layers first
    roots, root_depth, layer = roots[order], root_depth[order], layer[order]
    lift = style.lift[0] + (style.lift[1] - style.lift[0]) * layer * (0.4 + 0.6 * root_depth)
    length = rng.uniform(*style.length, style.cards) * (0.45 + 0.55 * root_depth)

    tree = cKDTree(positions[body])
    body_normals = normals[body]

    def surface(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        _, nearest = tree.query(points)
        return positions[body][nearest], body_normals[nearest]

    nodes = [roots]
    _, n = surface(roots)
    direction = _comb(roots, n, style, rng)
    step = length / style.segments
    for k in range(style.segments):
        point = nodes[-1] + direction * step[:, None]
        q, nq = surface(point)
        height = np.einsum("ij,ij->i", point - q, nq)
        # Over the skull a strand lies at its layer's height; below it (long hair past the ears) it only stays outside.
        hugging = q[:, 1] > hug_above_y
        correction = np.where(hugging, lift - height, np.maximum(lift - height, 0))
        point += nq * correction[:, None]
        bent = point - nodes[-1]
        bent /= np.maximum(np.linalg.norm(bent, axis=1, keepdims=True), 1e-9)
        direction = bent + style.gravity * np.array([0.0, -1.0, 0.0]) * (k + 1) / style.segments
        if style.tie is not None:
            to_tie = np.asarray(style.tie) - point
            direction += 0.8 * to_tie / np.maximum(np.linalg.norm(to_tie, axis=1, keepdims=True), 1e-9)
        point = _out_of_face(point, face_box)
        along_surface = direction - np.einsum("ij,ij->i", direction, nq)[:, None] * nq
        falling = 0.35 * bent + np.array([0.0, -1.0, 0.0]) + 0.1 * nq  # below the skull, long hair hangs
        direction = np.where(hugging[:, None], along_surface, falling)
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
        nodes.append(point)
    path = np.stack(nodes, axis=1)  # [cards, segments + 1, 3]
    return _ribbons(path, surface, style, root_depth, rng)


def hairline(rest: np.ndarray, style: str) -> np.ndarray:
    """How far each point is inside the hair region (dm, positive inside), on the base mesh."""
    front = np.clip((rest[:, 2] - 0.1) / 1.1, 0, 1) ** 0.7  # 0 at the back of the head, 1 at the forehead
    temples = np.clip((np.abs(rest[:, 0]) - 0.35) / 0.35, 0, 1)  # the hairline dips at the temples
    forehead = {"crop": 8.05, "tied_back": 7.88}.get(style, 7.92)
    nape = {"long": 6.2, "tied_back": 6.7}.get(style, 7.05)
    line = (forehead - 0.22 * temples) * front + nape * (1 - front)
    return rest[:, 1] - line


def _out_of_face(points: np.ndarray, face_box: tuple[float, float, float]) -> np.ndarray:
    """Points in front of the face below the brows moved sideways to its edge: long hair falls beside the face."""
    half_width, brow_y, front_z = face_box
    inside = (np.abs(points[:, 0]) < half_width) & (points[:, 1] < brow_y) & (points[:, 2] > front_z)
    out = points.copy()
    out[inside, 0] = np.sign(points[inside, 0] + 1e-9) * half_width
    return out


def _comb(roots: np.ndarray, normals: np.ndarray, style: Style, rng) -> np.ndarray:
    """The direction each strand leaves its root, in the scalp's tangent plane."""
    back = np.array([0.0, -0.35, -1.0])
    comb = np.tile(back, (len(roots), 1))
    sides = np.clip((np.abs(roots[:, 0]) - 0.35) / 0.3, 0, 1)[:, None]
    comb += sides * np.stack([np.sign(roots[:, 0]) * 0.3, -np.ones(len(roots)), np.zeros(len(roots))], 1)  # down over the ears
    if style.parting_x is not None:
        away = np.sign(roots[:, 0] - style.parting_x + 1e-6)
        comb = np.stack([away * 1.0, -0.5 * np.ones(len(roots)), -0.3 * np.ones(len(roots))], 1) * (1 - sides) + comb * sides
    if style.tie is not None:
        comb = np.asarray(style.tie) - roots
    comb += rng.normal(0, 0.15, comb.shape)
    tangent = comb - np.einsum("ij,ij->i", comb, normals)[:, None] * normals
    return tangent / np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-9)


def _ribbons(path: np.ndarray, surface, style: Style, root_depth: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cards, nodes, _ = path.shape
    along = np.gradient(path, axis=1)
    along /= np.maximum(np.linalg.norm(along, axis=2, keepdims=True), 1e-9)
    _, outward = surface(path.reshape(-1, 3))
    outward = outward.reshape(cards, nodes, 3)
    side = np.cross(along, outward)
    side /= np.maximum(np.linalg.norm(side, axis=2, keepdims=True), 1e-9)
    width = style.width * (0.5 + 0.5 * root_depth)[:, None, None] * np.linspace(1.0, 0.6, nodes)[None, :, None]  # narrower to the tip
    left, right = path - side * width / 2, path + side * width / 2
    positions = np.stack([left, right], axis=2).reshape(-1, 3)  # card c, node k, side s at (c * nodes + k) * 2 + s
    u0 = rng.random(cards) * 0.75
    u = np.stack([u0, u0 + 0.25], 1)[:, None, :].repeat(nodes, 1)
    v = np.linspace(0.0, 1.0, nodes)[None, :, None].repeat(cards, 0).repeat(2, 2)
    uvs = np.stack([u, v], axis=3).reshape(-1, 2)
    base = (np.arange(cards)[:, None] * nodes + np.arange(nodes - 1)[None, :]).reshape(-1) * 2
    faces = np.concatenate([np.stack([base, base + 2, base + 1], 1), np.stack([base + 1, base + 2, base + 3], 1)])
    faces = faces.reshape(2, cards, nodes - 1, 3).transpose(1, 2, 0, 3).reshape(-1, 3)  # card order kept: inner layers first
    # Wind each triangle to face away from the head, so the outside is the front face.
    tri = positions[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    facing = outward.reshape(-1, 3)[faces // 2].mean(1)
    flip = np.einsum("ij,ij->i", normal, facing) < 0
    faces[flip] = faces[flip][:, ::-1]
    return positions, faces, uvs.astype(np.float32)


def strand_texture(colour: tuple[float, float, float], size: tuple[int, int] = (512, 256), seed: int = 0) -> np.ndarray:
    """RGBA [H, W, 4] uint8: strands running down the texture (v = 0 root .. 1 tip), tapered and fading at the tips."""
    height, width = size
    rng = np.random.default_rng(seed)
    count = width * 2
    x = rng.uniform(0, width, count)
    start = rng.uniform(0, 0.1, count) * height
    length = rng.uniform(0.6, 1.0, count) * height
    starts = np.stack([x, start], 1)
    lean = rng.normal(0, 0.04, count)
    directions = np.stack([lean, np.ones(count)], 1)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    coverage = strokes((height, width), starts, directions, length, width=1.2)
    tips = np.linspace(1.0, 0.0, height)[:, None] ** 0.6  # thinner towards the tip
    alpha = np.clip(coverage * 1.6, 0, 1) * (0.35 + 0.65 * tips)
    shade = 0.8 + 0.4 * strokes((height, width), starts[::3], directions[::3], length[::3], width=1.0)  # some strands lighter
    rgb = np.clip(np.asarray(colour)[None, None, :] * shade[:, :, None], 0, 1)
    return np.concatenate([to_srgb8(rgb), to_unorm8(alpha)[:, :, None]], axis=2)
