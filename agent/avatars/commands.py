"""`avatar-agent avatar build`: MakeHuman heads as GLB files (the contact sheet of their visemes is drawn by `render/sheet.py`)."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.arkit import ARKIT_NAMES, INDEX
from .builder import DEFAULT_PRESET, HAIR_STYLES, PRESETS, HeadSpec, build_head
from .gltf import write_glb

ANCESTRIES = ("african", "asian", "caucasian")


def colour(text: str) -> tuple[float, float, float]:
    """'#c68863' or 'c68863' -> (r, g, b) in 0..1."""
    value = text.lstrip("#")
    if len(value) != 6 or any(c not in "0123456789abcdefABCDEF" for c in value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a colour like #c68863")
    return tuple(int(value[i : i + 2], 16) / 255 for i in (0, 2, 4))


def ancestry(text: str) -> dict[str, float]:
    """'african' or 'african=0.5,caucasian=0.5'."""
    out = {}
    for part in text.split(","):
        name, _, weight = part.partition("=")
        if name.strip() not in ANCESTRIES:
            raise argparse.ArgumentTypeError(f"ancestry {name!r} is not one of {', '.join(ANCESTRIES)}")
        out[name.strip()] = float(weight or 1)
    return out


def spec_from(args) -> HeadSpec:
    spec = PRESETS[args.preset]
    changes = {k: getattr(args, k) for k in ("gender", "age", "ancestry", "skin", "hair", "hair_style", "eyes", "shirt")
               if getattr(args, k) is not None}
    if "gender" in changes and args.gender in ("woman", "man"):
        changes["gender"] = 0.0 if args.gender == "woman" else 1.0
    return replace(spec, **changes)


def _gender(text: str) -> float | str:
    if text in ("woman", "man"):
        return text
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("gender is woman, man, or a number from 0 (woman) to 1 (man)")
    return value


def _build(args) -> int:
    spec = spec_from(args)
    avatar = build_head(spec, Path(args.out).stem)
    write_glb(avatar, args.out)
    print(f"wrote {args.out}: {avatar.vertex_count} vertices, {len(avatar.faces)} triangles, 52 ARKit morph targets")
    print(f"use it: render.avatar or tenants.<id>.avatar: {args.out}")
    return 0


def add_commands(which) -> None:
    """`avatar build`, under the CLI's `avatar` job."""
    build = which.add_parser("build", help="write a GLB with the 52 ARKit morph targets (opens in Blender and three.js)")
    build.add_argument("--preset", default=DEFAULT_PRESET, choices=list(PRESETS), help="start from this preset (default: %(default)s)")
    build.add_argument("--gender", type=_gender, help="woman, man, or 0 (woman) .. 1 (man)")
    build.add_argument("--age", type=float, help="years, 25 to 90")
    build.add_argument("--ancestry", type=ancestry, help="african, asian, caucasian, or a mix like african=0.5,caucasian=0.5")
    build.add_argument("--skin", type=colour, help="skin colour, e.g. #c68863")
    build.add_argument("--hair", type=colour, help="hair and brow colour")
    build.add_argument("--hair-style", choices=HAIR_STYLES)
    build.add_argument("--eyes", type=colour, help="iris colour")
    build.add_argument("--shirt", type=colour, help="shirt colour")
    build.add_argument("--out", required=True, help="GLB file to write, e.g. heads/shop.glb")
    build.set_defaults(run=_build)
