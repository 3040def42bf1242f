"""The MakeHuman heads' textures: skin (with lips, brows, redness, stubble, the scalp under the hair and the shirt),
irises, teeth and tongue, lashes. Painted per texel from where on the head each texel is (textures.rasterise), in
base-mesh decimetres; every random choice is seeded, so a build is the same on every machine."""
from __future__ import annotations

import numpy as np

from .hair import hairline
from .textures import rasterise, smoothstep, strokes, to_srgb8, to_unorm8, value_noise

SKIN_SIZE = 1024
EYE_SIZE = 256
IRIS = 0.55  # angular radius of the iris on the eyeball (radians)
PUPIL = 0.18


def _gauss(p: np.ndarray, centre, radii) -> np.ndarray:
    d = (p - np.asarray(centre)) / np.asarray(radii)
    return np.exp(-0.5 * np.sum(d * d, axis=-1))


def _mix(base: np.ndarray, colour, amount: np.ndarray) -> np.ndarray:
    amount = np.clip(amount, 0, 1)[..., None]
    return base * (1 - amount) + np.asarray(colour, np.float64) * amount


def paint_skin(uvs: np.ndarray, faces: np.ndarray, rest: np.ndarray, shaped: np.ndarray, lips: np.ndarray,
               eyes: dict[str, np.ndarray], spec) -> tuple[np.ndarray, np.ndarray]:
    """Albedo RGBA [S, S, 4] and roughness [S, S] (uint8) for the skin surface, whose vertices are `rest`/`shaped`."""
    axis_z = float(rest[rest[:, 1] > 7.0][:, 2].mean())
    outward = np.hypot(rest[:, 0], rest[:, 2] - axis_z)
    values, covered = rasterise(uvs, faces, np.hstack([rest, shaped, lips[:, None]]).astype(np.float32), (SKIN_SIZE, SKIN_SIZE),
                                priority=outward[faces].mean(1))
    r, p, lip = values[..., 0:3].astype(np.float64), values[..., 3:6].astype(np.float64), values[..., 6].astype(np.float64)
    size = (SKIN_SIZE, SKIN_SIZE)
    eye_y = float(np.mean([c[1] for c in eyes.values()]))
    eye_z = float(np.mean([c[2] for c in eyes.values()]))
    front = smoothstep(eye_z - 0.9, eye_z - 0.4, p[..., 2])
    skin = np.asarray(spec.skin, np.float64)
    colour = np.broadcast_to(skin, (*size, 3)).copy()

    # Redness: cheeks, nose and ears, broken up by a slow noise so it is not a painted circle.
    red = skin * (1.0, 0.74, 0.72)
    nose = _nose_tip(shaped, eye_y)
    flush = sum(0.42 * _gauss(p, (c[0] * 1.1, eye_y - 0.45, c[2] + 0.1), (0.24, 0.2, 0.5)) for c in eyes.values())
    flush = flush * front + 0.38 * _gauss(p, nose, (0.13, 0.12, 0.3))
    head_width = float(np.abs(shaped[np.abs(shaped[:, 1] - eye_y) < 0.4][:, 0]).max())
    ears = smoothstep(head_width - 0.3, head_width - 0.1, np.abs(p[..., 0])) * (np.abs(p[..., 1] - (eye_y - 0.2)) < 0.55)
    flush = flush + 0.35 * ears
    colour = _mix(colour, red, flush * (0.75 + 0.5 * value_noise(size, 40, 1)))
    # Darker and cooler round the eyes: under them and in the lid crease.
    around = sum(_gauss(p, (c[0], c[1] - 0.13, c[2]), (0.2, 0.08, 0.5)) * 0.12 + _gauss(p, (c[0], c[1] + 0.13, c[2]), (0.2, 0.06, 0.5)) * 0.07
                 for c in eyes.values())
    colour = _mix(colour, skin * (0.72, 0.66, 0.70), around * front * 2)
    # Lips: their own colour, with a defined edge.
    lips_amount = smoothstep(0.3, 0.5, lip) * front
    colour = _mix(colour, skin * (0.84, 0.56, 0.56), lips_amount)
    colour = _mix(colour, skin * (0.70, 0.48, 0.48), smoothstep(0.55, 0.9, lip) * front * 0.35)  # the fuller middle darker
    # Stubble: short dark dots over the jaw, chin and upper lip (not on the lips).
    if spec.stubble > 0:
        beard = (smoothstep(eye_y - 0.55, eye_y - 0.8, p[..., 1]) * smoothstep(eye_y - 2.0, eye_y - 1.75, p[..., 1])
                 * front * (1 - lips_amount))
        dots = _dots(size, beard, int(9000 * spec.stubble), seed=3)
        colour = _mix(colour, np.asarray(spec.hair) * 0.6 + skin * 0.2, dots * 0.8 + beard * 0.12 * spec.stubble)
    # Brows: strokes growing up at the inner end and out towards the temple.
    colour = _mix(colour, np.asarray(spec.hair) * 0.75, _brows(p, eyes, front, size) * 0.92)
    # The scalp under the hair is hair-coloured, fading at the hairline (the cards' gaps then show hair, not skin).
    inside = hairline(r.reshape(-1, 3), spec.hair_style).reshape(size)
    scalp = 0.0 if spec.hair_style == "none" else (0.55 if spec.hair_style == "crop" else 0.9)
    if scalp:
        colour = _mix(colour, np.asarray(spec.hair) * 0.7, scalp * smoothstep(-0.03, 0.14, inside) * (0.85 + 0.3 * value_noise(size, 3, 4)))
    # A shirt with a crew neck (lower at the front), with a knit's fine texture.
    neckline = 6.02 + 0.12 * np.clip(-r[..., 2] / 0.8, 0, 1) - 0.10 * np.clip(r[..., 2] / 0.9, 0, 1)
    shirt = 1 / (1 + np.exp((r[..., 1] - neckline) / 0.02))
    colour = _mix(colour, np.asarray(spec.shirt) * (0.92 + 0.16 * value_noise(size, 2, 5))[..., None], shirt)
    # Pores and fine variation.
    colour *= (0.965 + 0.07 * value_noise(size, 2.5, 6))[..., None]

    roughness = 0.58 - 0.1 * (np.abs(p[..., 0]) < 0.3) * (p[..., 1] > eye_y - 0.65) * front  # the T-zone has a sheen
    roughness = roughness - 0.18 * lips_amount + 0.3 * shirt + 0.08 * smoothstep(0.0, 0.1, inside) * bool(scalp)
    roughness = roughness + 0.08 * (value_noise(size, 2, 7) - 0.5)
    albedo = np.concatenate([to_srgb8(colour), np.full((*size, 1), 255, np.uint8)], axis=2)
    return albedo, to_unorm8(np.clip(roughness, 0.05, 1.0))


def _nose_tip(shaped: np.ndarray, eye_y: float) -> np.ndarray:
    near = shaped[(np.abs(shaped[:, 0]) < 0.15) & (shaped[:, 1] < eye_y) & (shaped[:, 1] > eye_y - 0.9)]
    return near[np.argmax(near[:, 2])]


def _brows(p: np.ndarray, eyes: dict[str, np.ndarray], front: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    coverage = np.zeros(size)
    rng = np.random.default_rng(2)
    for side, centre in eyes.items():
        outward = 1.0 if centre[0] > 0 else -1.0
        d = p - centre
        along = d[..., 0] * outward  # from the nose side (negative) to the temple (positive)
        arch = 0.19 + 0.05 * np.cos(np.clip(along / 0.35, -1.2, 1.2) * 1.3)
        region = (np.exp(-(((d[..., 1] - arch) / 0.04) ** 2)) * (1 / (1 + np.exp((np.abs(along - 0.08) - 0.22) / 0.025)))
                  * (d[..., 2] > -0.25) * front)
        texels = np.argwhere(region > 0.25)
        if not len(texels):
            continue
        weights = region[texels[:, 0], texels[:, 1]]
        pick = texels[rng.choice(len(texels), 700, p=weights / weights.sum())]
        inner = np.clip((along[pick[:, 0], pick[:, 1]] + 0.15) / 0.4, 0, 1)  # 0 at the inner end .. 1 at the tail
        angle = np.radians(75 - 65 * inner) + rng.normal(0, 0.12, len(pick))
        # u grows towards the subject's left; texel y grows downwards (v).
        directions = np.stack([np.cos(angle) * outward, -np.sin(angle)], 1)
        length = rng.uniform(3, 7, len(pick))
        coverage = np.maximum(coverage, strokes(size, pick[:, ::-1].astype(np.float64), directions, length, width=1.0) * np.clip(region * 1.5, 0, 1))
    return coverage


def _dots(size: tuple[int, int], region: np.ndarray, count: int, seed: int) -> np.ndarray:
    texels = np.argwhere(region > 0.1)
    if not len(texels) or count <= 0:
        return np.zeros(size)
    rng = np.random.default_rng(seed)
    weights = region[texels[:, 0], texels[:, 1]]
    pick = texels[rng.choice(len(texels), count, p=weights / weights.sum())].astype(np.float64)
    angle = rng.uniform(0, 2 * np.pi, count)
    return strokes(size, pick[:, ::-1], np.stack([np.cos(angle), np.sin(angle)], 1), rng.uniform(0.8, 1.8, count), width=1.0) * region


def eye_texture(iris_colour) -> tuple[np.ndarray, np.ndarray]:
    """Albedo RGBA and roughness of an eyeball in its UV layout (the direction from the centre; the front at the middle)."""
    v, u = (np.mgrid[0:EYE_SIZE, 0:EYE_SIZE] + 0.5) / EYE_SIZE
    dx, dy = u - 0.5, 0.5 - v
    theta = 2 * np.pi * np.hypot(dx, dy)
    phi = np.arctan2(dy, dx)
    up = np.sin(theta) * np.sin(phi)  # how far up the eyeball
    sclera = np.broadcast_to(np.array([0.93, 0.91, 0.88]), (EYE_SIZE, EYE_SIZE, 3)).copy()
    sclera = _mix(sclera, (0.90, 0.72, 0.70), smoothstep(0.9, 1.5, theta) * 0.6)  # pinker towards the corners
    sclera *= (1 - 0.35 * smoothstep(0.15, 0.75, up) - 0.1 * smoothstep(-0.3, -0.8, up))[..., None]  # the lids' soft shadow
    rng = np.random.default_rng(8)
    fibres = sum(np.sin(phi * k + rng.uniform(0, 2 * np.pi)) * w for k, w in ((37, 0.5), (61, 0.35), (89, 0.25), (13, 0.3)))
    fibres = 0.5 + 0.5 * np.tanh(fibres) * (0.6 + 0.4 * value_noise((EYE_SIZE, EYE_SIZE), 6, 9))
    iris = np.asarray(iris_colour)[None, None, :] * (0.6 + 0.8 * fibres)[..., None]
    iris *= (1 + 0.35 * _gauss(theta[..., None], PUPIL * 1.45, PUPIL * 0.35))[..., None]  # a lighter ring round the pupil
    iris *= (1 - 0.55 * smoothstep(IRIS * 0.8, IRIS, theta))[..., None]  # the dark limbal ring
    colour = np.where((theta < IRIS)[..., None], iris, sclera)
    colour = _mix(colour, (0.02, 0.02, 0.025), smoothstep(PUPIL + 0.02, PUPIL - 0.02, theta))
    colour = _mix(colour, sclera, smoothstep(IRIS - 0.02, IRIS + 0.03, theta))
    albedo = np.concatenate([to_srgb8(colour), np.full((EYE_SIZE, EYE_SIZE, 1), 255, np.uint8)], axis=2)
    return albedo, np.full((EYE_SIZE, EYE_SIZE), 20, np.uint8)  # wet: a small, sharp catch-light


def mouth_texture() -> tuple[np.ndarray, np.ndarray]:
    """Teeth on the left half, tongue on the right."""
    albedo = np.full((16, 16, 4), 255, np.uint8)
    albedo[:, :8, :3] = to_srgb8(np.array([0.93, 0.91, 0.85]))
    albedo[:, 8:, :3] = to_srgb8(np.array([0.70, 0.34, 0.36]))
    roughness = np.full((16, 16), 80, np.uint8)
    roughness[:, 8:] = 115
    return albedo, roughness


def lash_texture(hair_colour) -> np.ndarray:
    """Lashes as separate thin strands across the card (u along the lid, v along a lash); alpha cuts out the gaps."""
    height, width = 32, 256
    rng = np.random.default_rng(10)
    x = np.sort(rng.uniform(0, width, 60))
    starts = np.stack([x, np.zeros_like(x)], 1)
    lean = rng.normal(0, 0.15, len(x))
    directions = np.stack([lean, np.ones_like(x)], 1) / np.sqrt(1 + lean[:, None] ** 2)
    coverage = strokes((height, width), starts, directions, rng.uniform(0.7, 1.0, len(x)) * height, width=1.0)
    albedo = np.zeros((height, width, 4), np.uint8)
    albedo[..., :3] = to_srgb8(np.asarray(hair_colour) * 0.3)
    albedo[..., 3] = to_unorm8(np.clip(coverage * 1.5, 0, 1))
    return albedo
