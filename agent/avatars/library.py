"""Which head a config's `render.avatar` (or `tenants.<id>.avatar`) names, and loading it: the one place that choice is made."""
from __future__ import annotations

import logging

from .avatar import Avatar
from .builder import DEFAULT_PRESET, PRESETS, build_head
from .gltf import load_gltf_avatar
from .stylised import build_stylised_head

log = logging.getLogger(__name__)
BUILT_IN_AVATARS = ("default", "stylised", *PRESETS)


def is_built_in(spec: str) -> bool:
    """A name of ours, not a file."""
    return spec in BUILT_IN_AVATARS


def load_avatar(spec: str) -> Avatar:
    """A built-in head ('default', a preset name, 'stylised') or a glTF/GLB path; missing ARKit shapes are reported, not fatal."""
    if spec == "stylised":
        return build_stylised_head()
    if spec == "default" or spec in PRESETS:
        avatar = build_head(PRESETS[DEFAULT_PRESET if spec == "default" else spec], spec)
        log.info("avatar %s: MakeHuman head, %d vertices, %d triangles", spec, avatar.vertex_count, len(avatar.faces))
        return avatar
    avatar = load_gltf_avatar(spec)
    if avatar.missing:
        log.warning("avatar %s lacks %d ARKit shapes (they will not move): %s", avatar.name, len(avatar.missing), ", ".join(avatar.missing))
    log.info("avatar %s: %d vertices, %d triangles", avatar.name, avatar.vertex_count, len(avatar.faces))
    return avatar
