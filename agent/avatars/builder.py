"""The MakeHuman heads (`avatar-agent avatar build`, the presets): a head, neck and shoulders from the MakeHuman mesh, with our own hair, brows, irises and shirt.

What comes from the MakeHuman data (makehuman.py): the skin mesh, eyes, teeth,
tongue and eyelashes, the 52 ARKit shapes, and the gender/age/ancestry modifiers.
What is ours: the cut at the shoulders, vertex colours (skin, lips found from
where the lip shapes move, brows, irises and pupils, shirt), and the hair, a
shell grown out of the scalp along its normals.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.arkit import ARKIT_NAMES, COUNT
from .avatar import Avatar
from .makehuman import arkit_targets, base_mesh, macro_offsets

SHOULDER_CUT_Y = 5.3  # base-mesh decimetres: above it are head, neck and shoulders
PARTS = ("helper-l-eye", "helper-r-eye", "helper-upper-teeth", "helper-lower-teeth", "helper-tongue",
         "helper-l-eyelashes-1", "helper-l-eyelashes-2", "helper-r-eyelashes-1", "helper-r-eyelashes-2")
HAIR_STYLES = ("short", "long", "none")


@dataclass(frozen=True)
class HeadSpec:
    gender: float = 0.0  # 0 woman .. 1 man
    age: float = 30.0  # years, 25..90
    ancestry: dict[str, float] = field(default_factory=lambda: {"caucasian": 1.0})  # african, asian, caucasian
    skin: tuple[float, float, float] = (0.87, 0.68, 0.57)
    hair: tuple[float, float, float] = (0.23, 0.15, 0.10)
    hair_style: str = "short"
    eyes: tuple[float, float, float] = (0.30, 0.42, 0.55)
    shirt: tuple[float, float, float] = (0.20, 0.33, 0.55)


PRESETS: dict[str, HeadSpec] = {
    "ava": HeadSpec(gender=0.0, age=30, ancestry={"caucasian": 1.0}, skin=(0.88, 0.70, 0.60), hair=(0.30, 0.18, 0.10),
                    hair_style="long", eyes=(0.30, 0.45, 0.35), shirt=(0.17, 0.32, 0.52)),
    "amara": HeadSpec(gender=0.0, age=45, ancestry={"african": 1.0}, skin=(0.45, 0.30, 0.22), hair=(0.06, 0.05, 0.05),
                      hair_style="short", eyes=(0.25, 0.16, 0.10), shirt=(0.55, 0.20, 0.25)),
    "kenji": HeadSpec(gender=1.0, age=35, ancestry={"asian": 1.0}, skin=(0.85, 0.68, 0.52), hair=(0.05, 0.05, 0.06),
                      hair_style="short", eyes=(0.20, 0.13, 0.08), shirt=(0.22, 0.24, 0.28)),
    "walter": HeadSpec(gender=1.0, age=65, ancestry={"caucasian": 1.0}, skin=(0.84, 0.64, 0.55), hair=(0.62, 0.60, 0.58),
                       hair_style="short", eyes=(0.35, 0.45, 0.58), shirt=(0.18, 0.36, 0.30)),
}
DEFAULT_PRESET = "kenji"  # a man, like the default voice (Piper joe); the women presets suit Kokoro voices (README, Voices)


def build_head(spec: HeadSpec, name: str = "makehuman") -> Avatar:
    mesh = base_mesh()
    rest = mesh.positions  # regions are chosen on the base mesh, so every build has the same topology
    shaped = rest + macro_offsets(spec.gender, spec.age, spec.ancestry)
    shapes = arkit_targets()
    body = mesh.groups["body"]
    body = body[(rest[body][:, :, 1] > SHOULDER_CUT_Y).all(1)]
    groups = [("skin", body)] + [(g, mesh.groups[g]) for g in PARTS]
    used = np.unique(np.concatenate([f.reshape(-1) for _, f in groups]))
    remap = np.full(len(rest), -1, np.int64)
    remap[used] = np.arange(len(used))
    positions, deltas = shaped[used], shapes[:, used]
    colors = np.ones((len(used), 4), np.float32)
    colors[:, :3] = spec.skin
    faces = []
    for group, tris in groups:
        local = remap[tris]
        faces.append(local)
        _colour_part(group, colors, np.unique(local), positions, spec)
    skin = np.zeros(len(used), bool)
    skin[np.unique(faces[0])] = True
    _colour_lips(colors, deltas, skin, spec)
    _colour_brows(colors, positions, skin, _eye_centres(mesh, shaped), spec)
    _colour_shirt(colors, rest[used], skin, spec)
    positions, faces, colors, deltas = _with_hair(positions, np.concatenate(faces), colors, deltas, rest[used], skin, spec)
    # Decimetres to metres; the camera frames whatever size it gets.
    return Avatar(name, (positions / 10).astype(np.float32), faces.astype(np.uint32), colors, (deltas / 10).astype(np.float32))


def _eye_centres(mesh, shaped: np.ndarray) -> dict[str, np.ndarray]:
    return {side: shaped[np.unique(mesh.groups[f"helper-{side}-eye"])].mean(0) for side in ("l", "r")}


def _colour_part(group: str, colors: np.ndarray, vertices: np.ndarray, positions: np.ndarray, spec: HeadSpec) -> None:
    if group.endswith("-eye"):
        points = positions[vertices]
        centre = points.mean(0)
        radius = np.linalg.norm(points - centre, axis=1).max()
        # The eyes look along +Z: the angle from that axis makes the iris and the pupil.
        facing = (points[:, 2] - centre[2]) / max(radius, 1e-9)
        colour = np.where(facing[:, None] > 0.93, 0.03, np.where(facing[:, None] > 0.80, np.array(spec.eyes), (0.93, 0.91, 0.88)))
        colors[vertices, :3] = colour
    elif "teeth" in group:
        colors[vertices, :3] = (0.94, 0.92, 0.86)
    elif group == "helper-tongue":
        colors[vertices, :3] = (0.72, 0.36, 0.38)
    elif "eyelashes" in group:
        colors[vertices, :3] = np.array(spec.hair) * 0.4


def _colour_lips(colors: np.ndarray, deltas: np.ndarray, skin: np.ndarray, spec: HeadSpec) -> None:
    """Lips are where the funnel and pucker shapes move the most."""
    moved = sum(np.linalg.norm(deltas[ARKIT_NAMES.index(n)], axis=1) for n in ("mouthFunnel", "mouthPucker", "mouthRollLower", "mouthRollUpper"))
    amount = np.clip(moved / max(float(np.quantile(moved[moved > 0], 0.97)), 1e-9), 0, 1) ** 1.5
    lip = np.array(spec.skin) * (0.80, 0.52, 0.52)
    colors[skin, :3] = colors[skin, :3] * (1 - amount[skin, None]) + lip * amount[skin, None]


def _colour_brows(colors: np.ndarray, positions: np.ndarray, skin: np.ndarray, eyes: dict[str, np.ndarray], spec: HeadSpec) -> None:
    for side, centre in eyes.items():
        outward = 1.0 if centre[0] > 0 else -1.0
        d = positions - centre
        along = d[:, 0] * outward  # from the nose side (negative) to the temple (positive)
        arch = 0.19 + 0.05 * np.cos(np.clip(along / 0.35, -1.2, 1.2) * 1.3)  # higher in the middle
        height = np.exp(-(((d[:, 1] - arch) / 0.035) ** 2))
        width = 1 / (1 + np.exp((np.abs(along - 0.08) - 0.22) / 0.025))  # from above the inner corner of the eye to past the outer
        front = ((d[:, 2] > -0.25) & skin).astype(np.float64)
        amount = np.clip(height * width * front, 0, 1)[:, None] * 0.9
        colors[:, :3] = colors[:, :3] * (1 - amount) + np.array(spec.hair) * 0.8 * amount


def _colour_shirt(colors: np.ndarray, rest: np.ndarray, skin: np.ndarray, spec: HeadSpec) -> None:
    # A crew neck: lower at the front than at the back.
    neckline = 6.02 + 0.12 * np.clip(-rest[:, 2] / 0.8, 0, 1) - 0.10 * np.clip(rest[:, 2] / 0.9, 0, 1)
    amount = skin / (1 + np.exp((rest[:, 1] - neckline) / 0.02))
    colors[:, :3] = colors[:, :3] * (1 - amount[:, None]) + np.array(spec.shirt) * amount[:, None]


def _hairline(rest: np.ndarray, style: str) -> np.ndarray:
    """How far each vertex is inside the hair region (positive inside), on the base mesh."""
    front = np.clip((rest[:, 2] - 0.1) / 1.1, 0, 1) ** 0.7  # 0 at the back of the head, 1 at the forehead
    temples = np.clip((np.abs(rest[:, 0]) - 0.35) / 0.35, 0, 1)  # the hairline dips at the temples
    line = (7.92 - 0.22 * temples) * front + (7.05 if style == "short" else 6.2) * (1 - front)
    return rest[:, 1] - line


def _with_hair(positions, faces, colors, deltas, rest, skin, spec: HeadSpec):
    if spec.hair_style == "none":
        return positions, faces, colors, deltas
    if spec.hair_style not in HAIR_STYLES:
        raise ValueError(f"hair style {spec.hair_style!r} is not one of {', '.join(HAIR_STYLES)}")
    inside = _hairline(rest, spec.hair_style)
    scalp = faces[(inside[faces] > 0).any(1) & skin[faces].all(1)]  # any: the edge follows the line, not whole triangles
    centre = positions[np.unique(scalp)].mean(0)
    vertices = np.unique(scalp)
    normals = Avatar("scalp", positions, faces, colors, np.zeros((COUNT, len(positions), 3), np.float32)).normals(positions)[vertices]
    depth = np.clip(inside[vertices] / 0.3, 0, 1) ** 0.6  # thins to nothing at the hairline, so no gap shows under the edge
    thickness = 0.005 + 0.16 * depth * (1.0 if spec.hair_style == "short" else 1.3)
    grown = positions[vertices] + normals * thickness[:, None]
    grown[:, 1] += 0.04 * depth  # a little volume on top
    index = np.full(len(positions), -1, np.int64)
    index[vertices] = len(positions) + np.arange(len(vertices))
    hair_colors = np.ones((len(vertices), 4), np.float32)
    shade = 0.85 + 0.15 * np.clip((grown[:, 1] - centre[1]) / 0.8, 0, 1)  # lighter on top, where the light falls
    hair_colors[:, :3] = np.array(spec.hair) * shade[:, None]
    return (np.concatenate([positions, grown]), np.concatenate([faces, index[scalp]]), np.concatenate([colors, hair_colors]),
            np.concatenate([deltas, deltas[:, vertices]], axis=1))
