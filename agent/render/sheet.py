"""`avatar-agent avatar sheet`: the presets' visemes and expressions side by side, drawn as a call draws them."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from models.arkit import ARKIT_NAMES, INDEX
from ..avatars.builder import PRESETS, build_head
from .gl import use_gl_backend


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


def add_commands(which) -> None:
    """`avatar sheet`, under the CLI's `avatar` job."""
    sheet = which.add_parser("sheet", help="a PNG of presets x (neutral, ah, oo, p/b/m, f/v, smile, blink)")
    sheet.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    sheet.add_argument("--size", type=int, default=192, help="pixels per picture (default: %(default)s)")
    sheet.add_argument("--backend", default="auto", choices=["auto", "osmesa", "egl"])
    sheet.add_argument("--out", default="build/avatars/contact-sheet.png", help="PNG to write (default: %(default)s)")
    sheet.set_defaults(run=_sheet)
