"""Each avatar as a page that draws it downloads it: a GLB, its version (ETag), and the view our renderer draws it with.

Built-in heads are exported once per process (`avatars.gltf.glb_bytes`: positions, normals and colours, the 52
shapes with their normals' change, the textures and materials); a custom GLB is served as it is. The
backdrop is the tenant's (`/api/avatar` adds it). The view (camera, lights, the head's
pivot) is the one `view.FaceView` gives every renderer, so the page frames and lights the same
person the same way; on software GL the page lights by vertex with our own shaders (`SHADERS`, served
at /client/shaders/), as the lean renderer does there.
"""
from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from models.arkit import ARKIT_NAMES
from ..avatars.gltf import glb_bytes
from ..avatars.library import is_built_in, load_avatar
from .view import AMBIENT, YFOV, FaceView


@dataclass(frozen=True)
class PublishedAvatar:
    glb: bytes
    etag: str
    view: dict
    channels: tuple[str, ...] = tuple(ARKIT_NAMES)  # the order of the pose channel's weights


def view_json(view: FaceView, width: int, height: int, surfaces=()) -> dict:
    return {
        "width": width, "height": height, "yfov": YFOV, "znear": view.znear, "zfar": view.zfar,
        "camera": view.camera_pose.tolist(),  # camera-to-world, row-major 4x4
        "pivot": view.pivot.tolist(),  # the head turns about this point
        "lights": [{"direction": light.direction.tolist(), "color": list(light.color), "intensity": light.intensity} for light in view.lights],
        "ambient": list(AMBIENT),
        # What the server's shaders light each surface with beyond the GLB's own materials (by material name): the
        # roughness lighting by vertex uses, the skin's wrap, and which texels are cut away and below what coverage
        # (a page on software GL lights and cuts as the server does there).
        "surfaces": [{"name": surface.name, "roughness": surface.typical_roughness, "wrap": surface.wrap,
                      "cutout": surface.cutout, "alpha_cut": surface.alpha_cut} for surface in surfaces],
    }


class PublishedAvatars:
    """`get(spec)`: the avatar a config names, published; built the first time it is asked for (blocking: off the event loop)."""

    def __init__(self, render_settings) -> None:
        self._settings = render_settings
        self._done: dict[str, PublishedAvatar] = {}
        self._lock = threading.Lock()

    def get(self, spec: str) -> PublishedAvatar:
        with self._lock:
            if spec not in self._done:
                self._done[spec] = self._publish(spec)
            return self._done[spec]

    def _publish(self, spec: str) -> PublishedAvatar:
        avatar = load_avatar(spec)
        glb = glb_bytes(avatar) if is_built_in(spec) else Path(spec).read_bytes()
        width, height = self._settings.width, self._settings.height
        view = view_json(FaceView.for_avatar(avatar, width, height), width, height, avatar.surfaces)
        return PublishedAvatar(glb, hashlib.sha256(glb).hexdigest()[:20], view)

