"""The stylised head (the fakes' avatar) and the offscreen renderer."""
from __future__ import annotations

import os

import numpy as np
import pytest

from models.arkit import ARKIT_NAMES, INDEX
from agent.avatars.stylised import MOUTH_Y, build_stylised_head

from .conftest import renderer_for



@pytest.fixture(scope="module")
def head():
    return build_stylised_head()


def test_stylised_head_has_every_arkit_shape(head):
    assert head.missing == ()
    assert 5_000 < len(head.faces) < 25_000, "keep the default head light enough for 25 fps on CPU"
    for name in ("jawOpen", "mouthFunnel", "mouthSmileLeft", "eyeBlinkLeft", "browInnerUp"):
        assert head.shape_extent(name) > 0.01, name


def test_known_weight_moves_known_vertices(head):
    w = np.zeros(52, np.float32)
    w[INDEX["jawOpen"]] = 1.0
    moved = np.linalg.norm(head.deform(w) - head.positions, axis=1)
    chin = (head.positions[:, 1] < MOUTH_Y - 0.2) & (head.positions[:, 1] > -1.0) & (head.positions[:, 2] > 0.4) & (np.abs(head.positions[:, 0]) < 0.1)
    forehead = (head.positions[:, 1] > 0.5) & (head.positions[:, 2] > 0.4)
    assert moved[chin].min() > 0.05 and moved[forehead].max() == 0
    # Linear: half the weight moves half as far, and weights add.
    half = np.zeros(52, np.float32)
    half[INDEX["jawOpen"]] = 0.5
    assert np.allclose(head.deform(half) - head.positions, 0.5 * (head.deform(w) - head.positions), atol=1e-6)
    # Left is the subject's left (+x): a left smile moves the +x mouth corner.
    smile = np.zeros(52, np.float32)
    smile[INDEX["mouthSmileLeft"]] = 1.0
    moved = head.deform(smile) - head.positions
    assert moved[head.positions[:, 0] > 0.1, 1].max() > 0.03 and np.abs(moved[head.positions[:, 0] < -0.1]).max() < 0.01


def test_render_is_not_blank_and_mouth_follows_jaw(head):
    renderer = renderer_for(head)
    try:
        closed = renderer.render(np.zeros(52, np.float32)).astype(np.float32)
        w = np.zeros(52, np.float32)
        w[INDEX["jawOpen"]] = 1.0
        opened = renderer.render(w).astype(np.float32)
        blink = np.zeros(52, np.float32)
        blink[INDEX["eyeBlinkLeft"]] = blink[INDEX["eyeBlinkRight"]] = 1.0
        blinked = renderer.render(blink).astype(np.float32)
    finally:
        renderer.close()
    assert closed.std() > 20, "frame looks blank"
    diff = np.abs(opened - closed).mean(axis=2)
    ys, xs = np.nonzero(diff > 30)
    assert len(ys) > 200, "jawOpen should change the picture"
    # The change sits in the lower-middle of the face, not the eyes or background corners.
    assert 0.45 < ys.mean() / 256 < 0.85 and 0.35 < xs.mean() / 256 < 0.65
    eye_change = np.abs(blinked - closed).mean(axis=2)
    ys, _ = np.nonzero(eye_change > 30)
    assert len(ys) > 20 and ys.mean() / 256 < 0.5, "blinks change the eye region"


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def test_rendering_many_frames_does_not_grow_memory(head):
    renderer = renderer_for(head)
    try:
        w = np.zeros(52, np.float32)
        for i in range(20):
            renderer.render(w)
        before = _rss_mb()
        for i in range(150):
            w[INDEX["jawOpen"]] = (i % 10) / 10
            renderer.render(w, (0.01, 0.02, 0.0))
        grown = _rss_mb() - before
    finally:
        renderer.close()
    assert grown < 40, f"memory grew {grown:.0f} MB over 150 frames"


def test_lean_shading_looks_like_pyrenders_pbr(head):
    """The lean renderer lights with pyrender's BRDF per vertex: the same picture, frame for frame."""
    w = np.zeros(52, np.float32)
    w[INDEX["jawOpen"]] = 0.5
    w[INDEX["mouthSmileLeft"]] = 0.4
    images = {}
    for name, shading, msaa in (("lean", "lean", 0), ("pbr", "pbr", 0), ("lean msaa", "lean", 4)):
        renderer = renderer_for(head, shading=shading, msaa=msaa)
        try:
            images[name] = renderer.render(w, (0.02, 0.1, 0.0)).astype(np.float32)
        finally:
            renderer.close()
    assert images["lean"].std() > 20
    for other in ("pbr", "lean msaa"):  # multisampling only smooths the edges
        diff = np.abs(images["lean"] - images[other])
        assert diff.mean() < 2.0 and np.percentile(diff, 99) < 40, f"{other}: mean {diff.mean():.2f}, p99 {np.percentile(diff, 99):.1f}"


def test_the_textured_head_looks_alike_lit_per_pixel_per_vertex_and_by_pyrender():
    """Lit per pixel (a GPU's default), per vertex (software GL's) and by pyrender's PBR scene, one person: the same textures,
    framing, lights and backdrop."""
    from agent.avatars.library import load_avatar

    avatar = load_avatar("default")
    w = np.zeros(52, np.float32)
    w[INDEX["jawOpen"]] = 0.4
    images = {}
    for name, settings in (("vertex", {"lighting": "vertex"}), ("pixel", {"lighting": "pixel"}), ("pbr", {"shading": "pbr"})):
        renderer = renderer_for(avatar, size=192, **settings)
        try:
            images[name] = renderer.render(w).astype(np.float32)
        finally:
            renderer.close()
    assert images["vertex"].std() > 20
    for other in ("pixel", "pbr"):
        diff = np.abs(images["vertex"] - images[other])
        assert diff.mean() < 8.0, f"{other}: mean {diff.mean():.2f}"


def test_each_tenant_has_its_own_backdrop(tmp_path):
    from agent.config import load_config

    (tmp_path / "faq.csv").write_text("question,answer\nq?,a\n")
    path = tmp_path / "agent.yaml"
    path.write_text("answer:\n  faq_path: faq.csv\nrender:\n  avatar: stylised\ntenants:\n  a: {}\n"
                    "  b:\n    backdrop: {top: '#ff0000', bottom: '#ff0000', glow: '#ff0000'}\n")
    config = load_config(path)
    pictures = {}
    for tenant in ("a", "b"):
        settings = config.render.model_copy(update={"width": 96, "height": 96, "backdrop": config.tenant(tenant).backdrop})
        from agent.render.gl import use_gl_backend
        from agent.render.renderer import make_renderer

        use_gl_backend(settings.backend)
        renderer = make_renderer(build_stylised_head(), settings)
        try:
            pictures[tenant] = renderer.render(np.zeros(52, np.float32))
        finally:
            renderer.close()
    assert abs(int(pictures["a"][2, 2, 0]) - 204) < 6 and tuple(pictures["b"][2, 2]) == (255, 0, 0), "the corner is the backdrop"
    path.write_text("answer:\n  faq_path: faq.csv\nrender:\n  backdrop: {top: red}\n")
    from agent.config import ConfigError

    with pytest.raises(ConfigError, match="backdrop"):
        load_config(path)


def test_the_video_bitrate_setting_reaches_the_encoders():
    from aiortc.codecs import vpx

    from agent.transport.tracks import use_video_bitrate

    before = (vpx.DEFAULT_BITRATE, vpx.MAX_BITRATE)
    try:
        use_video_bitrate(2500)
        assert vpx.Vp8Encoder().target_bitrate == 2_500_000, "above aiortc's own 1.5 Mbps ceiling too"
    finally:
        vpx.DEFAULT_BITRATE, vpx.MAX_BITRATE = before


async def test_a_dead_render_process_leaves_the_call_its_last_frame(head):
    """The render process is killed mid-call: the video track keeps sending the last frame, nothing hangs or leaks."""
    from agent.config import RenderConfig
    from agent.output.port import AvatarOutput
    from agent.output.sinks import ServerVideo
    from agent.render.worker import RenderWorker, RenderWorkerDied
    from agent.transport.tracks import AvatarVideoTrack

    worker = RenderWorker(head, RenderConfig(width=128, height=128), "osmesa")
    track = AvatarVideoTrack(ServerVideo(AvatarOutput(), worker), fps=25)
    try:
        first = await track.recv()
        nice = RenderConfig().nice
        assert os.getpriority(os.PRIO_PROCESS, worker._process.pid) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice), \
            "the worker runs at render.nice below the agent"
        worker._process.kill()
        worker._process.wait(10)
        with pytest.raises(RenderWorkerDied, match="render process ended"):
            await worker.render(np.zeros(52, np.float32))
        for _ in range(3):
            frame = await track.recv()
        assert (frame.width, frame.height) == (first.width, first.height)
        assert frame.to_ndarray(format="rgb24").std() > 10, "the last good picture, not a blank one"
    finally:
        track.stop()
        worker.close()
    assert worker._process is None


def test_a_render_worker_whose_agent_is_gone_says_so_and_exits():
    """The agent was killed while its render worker started: one clear line, not a traceback."""
    import multiprocessing
    import subprocess
    import sys

    ours, theirs = multiprocessing.Pipe()
    run = subprocess.run([sys.executable, "-m", "agent.render.worker", str(theirs.fileno()), "psm_no_such_image", "5"],
                         pass_fds=[theirs.fileno()], capture_output=True, text=True, timeout=120)
    ours.close()
    theirs.close()
    assert run.returncode != 0 and "the agent stopped" in run.stderr and "Traceback" not in run.stderr, run.stderr
