"""Render speed of one session's avatar at the configured size: fps and where the time goes.

Drives the renderer with real lip-sync poses (the face model on espeak-ng speech)
plus idle motion, the same work as a live call minus the video encoder.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def run(config_path: str, frames: int, avatar_spec: str | None) -> dict:
    from agent.animate.expression import FaceComposer
    from agent.animate.lipsync import ModelLipSync
    from agent.config import load_config
    from agent.engines import load_avatar
    from agent.render.renderer import FaceRenderer
    from benchmarks.latency import spoken

    config = load_config(config_path)
    avatar = load_avatar(avatar_spec or config.render.avatar)
    lipsync = ModelLipSync(config.render.fps, config.animate.model_dir, "cpu", config.threads)
    poses = lipsync(spoken("Thanks for calling. Your order shipped yesterday and should arrive on Monday."), 16000, "happy")
    renderer = FaceRenderer(avatar, config.render.width, config.render.height, config.render.backend)
    face = FaceComposer()
    deform, normals, total = [], [], []
    for i in range(frames + 10):
        weights, head = face.compose(poses[i % len(poses)], True, i / config.render.fps)
        t0 = time.perf_counter()
        positions = avatar.deform(weights)
        t1 = time.perf_counter()
        avatar.normals(positions)
        t2 = time.perf_counter()
        renderer.render(weights, head)
        t3 = time.perf_counter()
        if i >= 10:  # warm-up frames are not counted
            deform.append(t1 - t0)
            normals.append(t2 - t1)
            total.append(t3 - t2)
    renderer.close()
    return {"avatar": avatar.name, "vertices": avatar.vertex_count, "triangles": len(avatar.faces), "backend": renderer.backend,
            "size": f"{config.render.width}x{config.render.height}", "fps": 1.0 / statistics.median(total),
            "fps_p5": 1.0 / float(np.percentile(total, 95)), "deform_ms": 1000 * statistics.median(deform),
            "normals_ms": 1000 * statistics.median(normals), "frame_ms": 1000 * statistics.median(total)}


def main(argv: list[str] | None = None) -> int:
    from agent.config import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog="benchmarks.render", description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--avatar", action="append", help="avatar to measure ('default' or a GLB); repeat for several")
    args = parser.parse_args(argv)
    for spec in args.avatar or [None]:
        r = run(args.config, args.frames, spec)
        print(f"{r['avatar']}: {r['vertices']} vertices, {r['triangles']} triangles, {r['size']}, {r['backend']}: "
              f"median {r['fps']:.1f} fps (5th percentile {r['fps_p5']:.1f}); per frame {r['frame_ms']:.1f} ms "
              f"(deform {r['deform_ms']:.2f} ms and normals {r['normals_ms']:.2f} ms of it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
