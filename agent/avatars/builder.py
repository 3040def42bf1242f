"""The MakeHuman heads (`avatar-agent avatar build`, the presets): a head, neck and shoulders from the MakeHuman mesh, with our own textures and hair.

What comes from the MakeHuman data (makehuman.py): the skin mesh, eyes, teeth,
tongue and eyelashes, the 52 ARKit shapes, and the gender/age/ancestry modifiers.
What is ours: the cut at the shoulders, the UV layouts, the textures painted in
them (skin.py: skin, lips, brows, stubble, shirt; the irises; the lashes' and the
hair's strands) and the hair cards (hair.py). The look lives in textures, so it
is drawn per pixel and travels in the GLB to the page.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.arkit import ARKIT_NAMES, COUNT
from .avatar import Avatar, Surface
from .hair import STYLES as HAIR_STYLES, grow_cards, hairline, strand_texture
from .makehuman import arkit_targets, base_mesh, macro_offsets
from .skin import eye_texture, lash_texture, mouth_texture, paint_skin

SHOULDER_CUT_Y = 4.6  # base-mesh decimetres: above it are head, neck and shoulders (below the picture's bottom edge)
EYES = ("helper-l-eye", "helper-r-eye")
MOUTH = ("helper-upper-teeth", "helper-lower-teeth", "helper-tongue")
LASHES = ("helper-l-eyelashes-1", "helper-l-eyelashes-2", "helper-r-eyelashes-1", "helper-r-eyelashes-2")


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
    stubble: float = 0.0  # 0 clean-shaven .. 1 a few days' growth


PRESETS: dict[str, HeadSpec] = {
    "ava": HeadSpec(gender=0.0, age=30, ancestry={"caucasian": 1.0}, skin=(0.88, 0.70, 0.60), hair=(0.30, 0.18, 0.10),
                    hair_style="long", eyes=(0.30, 0.45, 0.35), shirt=(0.17, 0.32, 0.52)),
    "amara": HeadSpec(gender=0.0, age=45, ancestry={"african": 1.0}, skin=(0.45, 0.30, 0.22), hair=(0.06, 0.05, 0.05),
                      hair_style="tied_back", eyes=(0.25, 0.16, 0.10), shirt=(0.55, 0.20, 0.25)),
    "kenji": HeadSpec(gender=1.0, age=35, ancestry={"asian": 1.0}, skin=(0.85, 0.68, 0.52), hair=(0.05, 0.05, 0.06),
                      hair_style="side_part", eyes=(0.20, 0.13, 0.08), shirt=(0.22, 0.24, 0.28), stubble=0.25),
    "walter": HeadSpec(gender=1.0, age=65, ancestry={"caucasian": 1.0}, skin=(0.84, 0.64, 0.55), hair=(0.62, 0.60, 0.58),
                       hair_style="crop", eyes=(0.35, 0.45, 0.58), shirt=(0.18, 0.36, 0.30), stubble=0.35),
}
DEFAULT_PRESET = "kenji"  # a man, like the default voice (Piper joe); the women presets suit Kokoro voices (README, Voices)


@dataclass
class _Piece:
    """One surface's vertices (base-mesh indices, repeated where a UV seam splits them) and triangles (local)."""
    name: str
    vertices: np.ndarray
    faces: np.ndarray
    uvs: np.ndarray
    weld: np.ndarray  # local index whose normal each local vertex shares


def build_head(spec: HeadSpec, name: str = "makehuman") -> Avatar:
    if spec.hair_style not in HAIR_STYLES:
        raise ValueError(f"hair style {spec.hair_style!r} is not one of {', '.join(HAIR_STYLES)}")
    mesh = base_mesh()
    rest = mesh.positions  # regions are chosen on the base mesh, so every build has the same topology
    shaped = rest + macro_offsets(spec.gender, spec.age, spec.ancestry)
    shapes = arkit_targets()
    body = mesh.groups["body"]
    body = body[(rest[body][:, :, 1] > SHOULDER_CUT_Y).all(1)]
    eyes = {side: shaped[np.unique(mesh.groups[f"helper-{side}-eye"])].mean(0) for side in ("l", "r")}

    skin = _cylinder_piece("skin", body, rest)
    pieces = [skin, _eye_piece(mesh, shaped), _mouth_piece(mesh), _lash_piece(mesh, rest)]
    lips = _lip_amount(shapes)
    albedo, roughness = paint_skin(skin.uvs, skin.faces, rest[skin.vertices], shaped[skin.vertices], lips[skin.vertices], eyes, spec)
    textures = {
        "skin": (albedo, roughness, 0.15),
        "eyes": (*eye_texture(spec.eyes), 0.0),
        "mouth": (*mouth_texture(), 0.2),
        "lashes": (lash_texture(spec.hair), None, 0.0),
    }
    positions, faces, uvs, welds, deltas, surfaces = [], [], [], [], [], []
    count = face_count = 0
    for piece in pieces:
        albedo, rough, wrap = textures[piece.name]
        positions.append(shaped[piece.vertices])
        deltas.append(shapes[:, piece.vertices])
        faces.append(piece.faces + count)
        uvs.append(piece.uvs)
        welds.append(piece.weld + count)
        surfaces.append(Surface(piece.name, count, len(piece.vertices), face_count, len(piece.faces), albedo=albedo,
                                roughness_map=rough, roughness=0.6, wrap=wrap))
        count += len(piece.vertices)
        face_count += len(piece.faces)
    if spec.hair_style != "none":
        card_positions, card_faces, card_uvs = _hair(spec, skin, rest, shaped, eyes)
        positions.append(card_positions)
        deltas.append(np.zeros((COUNT, len(card_positions), 3), np.float32))
        faces.append(card_faces + count)
        uvs.append(card_uvs)
        welds.append(np.arange(len(card_positions)) + count)
        surfaces.append(Surface("hair", count, len(card_positions), face_count, len(card_faces),
                                albedo=strand_texture(spec.hair), roughness=0.45, blend=True, wrap=0.3))
        count += len(card_positions)
    positions = np.concatenate(positions)
    return Avatar(name, (positions / 10).astype(np.float32), np.concatenate(faces).astype(np.uint32),
                  np.ones((count, 4), np.float32), (np.concatenate(deltas, axis=1) / 10).astype(np.float32),
                  uvs=np.concatenate(uvs).astype(np.float32), surfaces=tuple(surfaces), weld=np.concatenate(welds))


def _local(name: str, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.unique(triangles)
    remap = np.full(int(triangles.max()) + 1, -1, np.int64)
    remap[vertices] = np.arange(len(vertices))
    return vertices, remap[triangles]


def _cylinder_piece(name: str, triangles: np.ndarray, rest: np.ndarray) -> _Piece:
    """UVs round the head's vertical axis (u; the seam at the back, split) and down it (v: crown at the top, the cut at the bottom)."""
    vertices, faces = _local(name, triangles)
    p = rest[vertices]
    head = p[p[:, 1] > 7.0]
    axis_z = float(head[:, 2].mean())
    u = 0.5 + np.arctan2(p[:, 0], p[:, 2] - axis_z) / (2 * np.pi)
    top = float(p[:, 1].max())
    v = (top - p[:, 1]) / (top - SHOULDER_CUT_Y)
    uvs = np.stack([u, v], 1)
    # Triangles across the seam: their vertices on the u ~ 0 side get a copy at u + 1 (the texture repeats).
    tri_u = u[faces]
    across = np.ptp(tri_u, axis=1) > 0.5
    low = across[:, None] & (tri_u < 0.5)
    copies = np.unique(faces[low])
    copy_index = np.full(len(vertices), -1, np.int64)
    copy_index[copies] = len(vertices) + np.arange(len(copies))
    faces = faces.copy()
    faces[low] = copy_index[faces[low]]
    uvs = np.concatenate([uvs, uvs[copies] + [1.0, 0.0]])
    weld = np.concatenate([np.arange(len(vertices)), copies])
    return _Piece(name, np.concatenate([vertices, vertices[copies]]), faces, uvs, weld)


def _eye_piece(mesh, shaped: np.ndarray) -> _Piece:
    """Both eyes share one texture: UVs are the direction from the eye's centre, the front (+Z) at the texture's centre."""
    vertices, faces, uvs = [], [], []
    count = 0
    for group in EYES:
        v, f = _local(group, mesh.groups[group])
        d = shaped[v] - shaped[v].mean(0)
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        theta = np.arccos(np.clip(d[:, 2], -1, 1))
        phi = np.arctan2(d[:, 1], d[:, 0])
        r = 0.5 * theta / np.pi
        uvs.append(np.stack([0.5 + r * np.cos(phi), 0.5 - r * np.sin(phi)], 1))
        vertices.append(v)
        faces.append(f + count)
        count += len(v)
    vertices = np.concatenate(vertices)
    return _Piece("eyes", vertices, np.concatenate(faces), np.concatenate(uvs), np.arange(len(vertices)))


def _mouth_piece(mesh) -> _Piece:
    """Teeth and tongue: each part one colour of a small texture (left teeth, right tongue)."""
    vertices, faces, uvs = [], [], []
    count = 0
    for group in MOUTH:
        v, f = _local(group, mesh.groups[group])
        uvs.append(np.tile([0.75 if group == "helper-tongue" else 0.25, 0.5], (len(v), 1)))
        vertices.append(v)
        faces.append(f + count)
        count += len(v)
    vertices = np.concatenate(vertices)
    return _Piece("mouth", vertices, np.concatenate(faces), np.concatenate(uvs), np.arange(len(vertices)))


def _lash_piece(mesh, rest: np.ndarray) -> _Piece:
    """The lash cards: u along the lid (from the base mesh's own layout of them, which runs that way), v along a lash."""
    vertices, faces, uvs = [], [], []
    count = 0
    for group in LASHES:
        v, f = _local(group, mesh.groups[group])
        p = rest[v]
        along = (p[:, 0] - p[:, 0].min()) / max(np.ptp(p[:, 0]), 1e-9)
        centre = p.mean(0)
        out = np.linalg.norm(p[:, [1, 2]] - centre[[1, 2]], axis=1)
        across = (out - out.min()) / max(np.ptp(out), 1e-9)
        uvs.append(np.stack([along, across], 1))
        vertices.append(v)
        faces.append(f + count)
        count += len(v)
    vertices = np.concatenate(vertices)
    return _Piece("lashes", vertices, np.concatenate(faces), np.concatenate(uvs), np.arange(len(vertices)))


def _lip_amount(shapes: np.ndarray) -> np.ndarray:
    """0..1 per base vertex, how much of it is lip."""
    def amount(*names: str) -> np.ndarray:
        moved = sum(np.linalg.norm(shapes[ARKIT_NAMES.index(n)], axis=1) for n in names)
        return np.clip(moved / max(float(np.quantile(moved[moved > 0], 0.97)), 1e-9), 0, 1)

    # Rolling moves the lips and the skin just outside them; puckering moves the lips and the cheeks: both, the lips.
    return np.minimum(amount("mouthRollLower", "mouthRollUpper"), amount("mouthPucker", "mouthFunnel")).astype(np.float32)


def _hair(spec: HeadSpec, skin: _Piece, rest: np.ndarray, shaped: np.ndarray, eyes: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positions = shaped[skin.vertices]
    inside = hairline(rest[skin.vertices], spec.hair_style)
    scalp = skin.faces[(inside[skin.faces] > 0).all(1)]
    normals = Avatar("skin", positions.astype(np.float32), skin.faces.astype(np.uint32), np.ones((len(positions), 4), np.float32),
                     np.zeros((COUNT, len(positions), 3), np.float32), weld=skin.weld).normals(positions)
    body = np.unique(skin.faces)
    eye_y = min(c[1] for c in eyes.values())
    eye_x = max(abs(c[0]) for c in eyes.values())
    face_box = (eye_x + 0.38, eye_y + 0.45, max(c[2] for c in eyes.values()) - 0.45)  # temple to temple, below the brows
    return grow_cards(positions, normals, scalp, inside, body, spec.hair_style, eye_y - 0.3, face_box, seed=sum(map(ord, spec.hair_style)))
