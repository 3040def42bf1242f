"""The same avatar in the same pose, drawn by both sinks: the server's renderer (left) and three.js in a page (right).

The page is the agent's own `/client/avatar-preview.html` in headless Chromium (SwiftShader), loading the GLB and
the view from `/api/avatar` exactly as a call's page does. Writes one PNG and prints how far apart they are.
"""
from __future__ import annotations

import argparse
import io
import shutil
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.browser import agent_server, chromium_args, config_for

ROOT = Path(__file__).resolve().parents[1]
POSES = {"neutral": {}, "ah": {"jawOpen": 0.55, "mouthLowerDownLeft": 0.3, "mouthLowerDownRight": 0.3},
         "smile": {"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8, "cheekSquintLeft": 0.3, "cheekSquintRight": 0.3}}


def server_picture(pose: dict, config) -> np.ndarray:
    from agent.avatars.library import load_avatar
    from agent.render.gl import use_gl_backend
    from agent.render.renderer import make_renderer
    from models.arkit import INDEX

    use_gl_backend(config.render.backend)
    renderer = make_renderer(load_avatar(config.render.avatar), config.render)
    try:
        weights = np.zeros(52, np.float32)
        for name, value in pose.items():
            weights[INDEX[name]] = value
        return renderer.render(weights, (0.0, 0.0, 0.0))
    finally:
        renderer.close()


def page_pictures(poses: dict, config_path: str | None) -> dict[str, np.ndarray]:
    from PIL import Image
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    out = {}
    with tempfile.TemporaryDirectory() as tmp, agent_server("benchmark-look.log", "--config", str(config_for("browser", config_path, Path(tmp)))) as served:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=chromium_args())
            for name, pose in poses.items():
                page = browser.new_page(viewport={"width": 512, "height": 512})
                query = ",".join(f"{k}:{v}" for k, v in pose.items())
                page.goto(f"{served.url}/client/avatar-preview.html?pose={query}")
                page.wait_for_function("() => window.previewReady === true", timeout=60_000)
                out[name] = np.asarray(Image.open(io.BytesIO(page.locator("#avatar-canvas").screenshot())).convert("RGB"))
                page.close()
            browser.close()
    return out


def main(argv: list[str] | None = None) -> int:
    from PIL import Image, ImageDraw

    from agent.config import DEFAULT_CONFIG, load_config

    parser = argparse.ArgumentParser(prog="avatar-agent benchmark look", description=__doc__)
    parser.add_argument("--config")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "server-vs-browser.png"))
    args = parser.parse_args(argv)
    config = load_config(args.config or DEFAULT_CONFIG)
    pages = page_pictures(POSES, args.config)
    size = config.render.width
    sheet = Image.new("RGB", (2 * size, len(POSES) * size + 24), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((8, 6), "server renderer (lean, the call's video)", fill="black")
    draw.text((size + 8, 6), "three.js in the page (SwiftShader)", fill="black")
    for row, (name, pose) in enumerate(POSES.items()):
        server = server_picture(pose, config)
        page = np.asarray(Image.fromarray(pages[name]).resize((size, size)))
        sheet.paste(Image.fromarray(server), (0, 24 + row * size))
        sheet.paste(Image.fromarray(page), (size, 24 + row * size))
        diff = np.abs(server.astype(np.float32) - page.astype(np.float32)).mean()
        print(f"{name}: mean difference {diff:.1f} grey levels of 255")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
