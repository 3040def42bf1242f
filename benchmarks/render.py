"""Render speed at the configured size: the lean renderer against pyrender's PBR path, in one run.

Frames alternate between the two renderers in blocks, so a busy or slow machine
slows both alike and the ratio stays fair. Poses are real lip-sync (the face
model on espeak-ng speech) plus idle motion. A last pass times the lean renderer
through the worker process, as calls use it (request, render, shared-memory frame).
"""
from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import numpy as np

BLOCK = 10


def _poses(config, frames: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from agent.animate.lipsync import AudioToFace
    from agent.output.composer import FaceComposer
    from benchmarks.speech_sets import spoken

    face_model = AudioToFace(config.render.fps, config.animate.model_dir, "cpu", config.threads)
    speech = face_model.animate(spoken("Thanks for calling. Your order shipped yesterday and should arrive on Monday."), 16000, "happy")
    face = FaceComposer()
    return [face.compose(speech[i % len(speech)], True, i / config.render.fps) for i in range(frames)]


def _time_interleaved(renderers: dict, poses, frames: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in renderers}
    for name, renderer in renderers.items():  # warm-up: shader compiles, first uploads
        for weights, head in poses[:5]:
            renderer.render(weights, head)
    for start in range(0, frames, BLOCK):
        for name, renderer in renderers.items():
            for weights, head in poses[start : start + BLOCK]:
                t0 = time.perf_counter()
                renderer.render(weights, head)
                times[name].append(time.perf_counter() - t0)
    return times


async def _time_worker(avatar, settings, poses) -> list[float]:
    from agent.render.worker import RenderWorker
    from models.devices import gl_platform

    worker = RenderWorker(avatar, settings, gl_platform(settings.backend))
    try:
        for weights, head in poses[:5]:
            await worker.render(weights, head)
        times = []
        for weights, head in poses:
            t0 = time.perf_counter()
            await worker.render(weights, head)
            times.append(time.perf_counter() - t0)
        return times
    finally:
        worker.close()


def run(config_path: str, frames: int, avatar_spec: str | None, compare_png: str | None = None) -> dict:
    from agent.config import load_config
    from agent.avatars.library import load_avatar
    from agent.render.gl import use_gl_backend
    from agent.render.lean import LeanRenderer
    from agent.render.pbr import PbrRenderer

    config = load_config(config_path)
    settings = config.render
    backend = use_gl_backend(settings.backend)
    avatar = load_avatar(avatar_spec or settings.avatar)
    poses = _poses(config, frames)
    renderers = {"lean": LeanRenderer(avatar, settings.width, settings.height, backend, settings.msaa),
                 "pbr": PbrRenderer(avatar, settings.width, settings.height, backend)}
    try:
        times = _time_interleaved(renderers, poses, frames)
        if compare_png:
            from PIL import Image

            weights, head = poses[len(poses) // 3]
            Image.fromarray(np.hstack([renderers["pbr"].render(weights, head), renderers["lean"].render(weights, head)])).save(compare_png)
    finally:
        for renderer in renderers.values():
            renderer.close()
    lean_settings = settings.model_copy(update={"shading": "lean"})
    times["lean, worker process"] = asyncio.run(_time_worker(avatar, lean_settings, poses))
    blend = []
    out = np.empty(avatar.vertex_count * 6, np.float32)
    for weights, _ in poses:
        t0 = time.perf_counter()
        avatar.deform_with_normals(weights, out)
        blend.append(time.perf_counter() - t0)
    return {"avatar": avatar.name, "vertices": avatar.vertex_count, "triangles": len(avatar.faces), "backend": backend,
            "size": f"{settings.width}x{settings.height}", "times": times, "blend_ms": 1000 * statistics.median(blend)}


def main(argv: list[str] | None = None) -> int:
    from agent.config import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog="benchmarks.render", description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--avatar", action="append", help="avatar to measure (built-in name or a GLB); repeat for several "
                                                          "(default: the default head, then the stylised one)")
    parser.add_argument("--png", help="also write the same frame from pbr (left) and lean (right) side by side to this PNG")
    args = parser.parse_args(argv)
    for spec in args.avatar or ["default", "stylised"]:
        r = run(args.config, args.frames, spec, args.png)
        print(f"\n{r['avatar']}: {r['vertices']} vertices, {r['triangles']} triangles, {r['size']}, {r['backend']} "
              f"(blendshapes + normals {r['blend_ms']:.2f} ms a frame)")
        fps = {}
        for name, times in r["times"].items():
            fps[name] = 1.0 / statistics.median(times)
            print(f"  {name:<22} median {fps[name]:6.1f} fps (5th percentile {1.0 / float(np.percentile(times, 95)):5.1f}), "
                  f"{1000 * statistics.median(times):5.1f} ms a frame")
        print(f"  lean / pbr, same run: {fps['lean'] / fps['pbr']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
