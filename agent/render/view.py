"""Where the camera and lights are for an avatar: shared by every renderer, so they all frame and light it alike."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation

from models.arkit import ARKIT_NAMES
from ..avatars.avatar import Avatar

AMBIENT = (0.15, 0.15, 0.17)
YFOV = 0.6


def rotation(pitch: float, yaw: float, roll: float) -> np.ndarray:
    """The head's turn: pitch about x, then yaw about y, then roll about z (world axes)."""
    return Rotation.from_euler("xyz", [pitch, yaw, roll]).as_matrix()


def look_at(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Camera-to-world pose looking from eye to target, upright (OpenGL: the camera looks down its -z, +y is up)."""
    forward = np.asarray(target, np.float64) - eye
    turn, _ = Rotation.align_vectors([forward, [0.0, 1.0, 0.0]], [[0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], weights=[np.inf, 1.0])
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = turn.as_matrix(), eye
    return pose


def perspective(yfov: float, aspect: float, znear: float, zfar: float) -> np.ndarray:
    f = 1.0 / np.tan(yfov / 2)
    return np.array([
        [f / aspect, 0, 0, 0],
        [0, f, 0, 0],
        [0, 0, (zfar + znear) / (znear - zfar), 2 * zfar * znear / (znear - zfar)],
        [0, 0, -1, 0],
    ])


def framing(avatar: Avatar) -> tuple[np.ndarray, float, np.ndarray]:
    """Camera target, distance and head pivot, found from what the blendshapes move.

    The eyelids (eyeBlink) and the chin (jawOpen) give eye line and chin on any
    head, with or without shoulders, in any units; the picture then runs from
    below the chin to above the crown.
    """
    def moved_by(*names: str) -> np.ndarray:
        idx = [ARKIT_NAMES.index(n) for n in names if n not in avatar.missing]
        if not idx:
            return np.zeros((0, 3), np.float32)
        amount = np.linalg.norm(avatar.deltas[idx], axis=2).max(axis=0)
        return avatar.positions[amount > 0.3 * max(float(amount.max()), 1e-9)]

    lids, chin = moved_by("eyeBlinkLeft", "eyeBlinkRight"), moved_by("jawOpen")
    if len(lids) and len(chin):
        eye_y, chin_y = float(lids[:, 1].mean()), float(chin[:, 1].min())
        centre_x, front_z = float(lids[:, 0].mean()), float(lids[:, 2].mean())
    else:  # no eyes or jaw to go by: frame the whole mesh
        lo, hi = avatar.positions.min(0), avatar.positions.max(0)
        chin_y, eye_y = lo[1] + 0.15 * (hi[1] - lo[1]), lo[1] + 0.55 * (hi[1] - lo[1])
        centre_x, front_z = 0.5 * (lo[0] + hi[0]), 0.5 * (lo[2] + hi[2])
    unit = max(eye_y - chin_y, 1e-6)
    # Head and shoulders, with room above the hair: from below the chin to a little above the highest point over the face.
    above = avatar.positions[(np.abs(avatar.positions[:, 0] - centre_x) < 1.6 * unit) & (avatar.positions[:, 1] > eye_y)]
    top = max(float(above[:, 1].max()) if len(above) else eye_y, chin_y + 2.1 * unit) + 0.3 * unit
    bottom = chin_y - 0.6 * unit
    target = np.array([centre_x, 0.5 * (top + bottom), front_z - 0.5 * unit])
    distance = (top - bottom) / (2 * np.tan(YFOV / 2))
    pivot = np.array([centre_x, chin_y - 0.3 * unit, front_z - 0.8 * unit])  # about the top of the neck
    return target, distance, pivot


@dataclass(frozen=True)
class Backdrop:
    """Behind the avatar: a vertical gradient (sRGB 0..1) with a soft glow behind the head (shaders/backdrop.frag)."""
    top: tuple[float, float, float] = (0.80, 0.84, 0.88)  # config.BackdropConfig's defaults
    bottom: tuple[float, float, float] = (0.46, 0.52, 0.58)
    glow: tuple[float, float, float] = (0.95, 0.93, 0.89)

    def as_json(self) -> dict:
        return {"top": list(self.top), "bottom": list(self.bottom), "glow": list(self.glow)}

    @classmethod
    def configured(cls, settings) -> "Backdrop":
        """From a `render.backdrop` / `tenants.<id>.backdrop` config (config.BackdropConfig)."""
        return cls(*settings.colours())


def backdrop_image(backdrop: Backdrop, width: int, height: int) -> np.ndarray:
    """The backdrop as an image [H, W, 3] uint8, top row first: shaders/backdrop.frag's formula, for renderers without it."""
    y, x = (np.mgrid[0:height, 0:width] + 0.5) / np.array([height, width])[:, None, None]
    up = 1 - y
    t = up * up * (3 - 2 * up)
    colour = np.asarray(backdrop.bottom) * (1 - t[..., None]) + np.asarray(backdrop.top) * t[..., None]
    d = np.hypot(x - 0.5, up - 0.62)
    s = np.clip(d / 0.55, 0, 1)
    glow = 0.55 * (1 - s * s * (3 - 2 * s))
    colour = colour * (1 - glow[..., None]) + np.asarray(backdrop.glow) * glow[..., None]
    return np.round(colour * 255).astype(np.uint8)


@dataclass(frozen=True)
class DirectionalLight:
    pose: np.ndarray  # light-to-world; it shines down its -z
    color: tuple[float, float, float]
    intensity: float

    @property
    def direction(self) -> np.ndarray:
        return -self.pose[:3, 2]


@dataclass(frozen=True)
class FaceView:
    camera_pose: np.ndarray  # camera-to-world
    projection: np.ndarray
    znear: float
    zfar: float
    pivot: np.ndarray  # the head turns about this point
    lights: tuple[DirectionalLight, ...]

    @classmethod
    def for_avatar(cls, avatar: Avatar, width: int, height: int) -> "FaceView":
        target, distance, pivot = framing(avatar)
        eye = target + np.array([0.0, 0.05 * distance, distance])
        znear, zfar = distance * 0.05, distance * 10
        lights = (  # a soft key from above the subject's right, a cool fill from the other side, a rim from behind
            DirectionalLight(look_at(target + np.array([0.8, 0.8, 1.0]) * distance, target), (1.0, 0.96, 0.9), 2.4),
            DirectionalLight(look_at(target + np.array([-1.0, 0.1, 0.8]) * distance, target), (0.82, 0.88, 1.0), 0.7),
            DirectionalLight(look_at(target + np.array([-0.3, 0.6, -1.0]) * distance, target), (1.0, 0.98, 0.95), 1.0),
        )
        return cls(look_at(eye, target), perspective(YFOV, width / height, znear, zfar), znear, zfar, pivot, lights)

    def head_pose(self, head_rotation) -> np.ndarray:
        """Model-to-world transform turning the head by (pitch, yaw, roll) about the pivot."""
        pose = np.eye(4)
        rot = rotation(*head_rotation)
        pose[:3, :3] = rot
        pose[:3, 3] = self.pivot - rot @ self.pivot
        return pose
