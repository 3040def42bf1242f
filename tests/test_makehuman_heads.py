"""The MakeHuman default head and `avatar-agent avatar build|sheet`."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from models.arkit import ARKIT_NAMES
from agent.config import load_config
from agent.avatars.builder import PRESETS, build_head
from agent.avatars.gltf import load_gltf_avatar, write_glb
from agent.render.sheet import sheet_poses

from .conftest import renderer_for


@pytest.fixture(scope="module")
def ava():
    return build_head(PRESETS["ava"], "ava")


def test_every_arkit_shape_moves_the_head(ava):
    assert ava.missing == ()
    still = [name for i, name in enumerate(ARKIT_NAMES) if not np.abs(ava.deltas[i]).max() > 1e-4]
    assert still == [], f"shapes that move nothing: {still}"
    height = ava.positions[:, 1].max() - ava.positions[:, 1].min()
    assert 0.2 < height < 0.5, "head, neck and shoulders, in metres"


def test_presets_differ_and_share_the_face_topology():
    heads = {name: build_head(spec, name) for name, spec in PRESETS.items()}
    short = [h for name, h in heads.items() if PRESETS[name].hair_style == "short"]
    assert len({len(h.faces) for h in short}) == 1, "short-haired heads share one mesh"
    assert np.abs(heads["kenji"].positions - heads["walter"].positions).max() > 0.005, "age and ancestry change the shape"
    assert np.abs(heads["amara"].colors - heads["walter"].colors).max() > 0.3, "skin and hair colours differ"


def _mouth_box_change(avatar, weights: np.ndarray) -> tuple[float, float]:
    """Pixels that change in the lower and upper half of the face when the weights are applied."""
    renderer = renderer_for(avatar, size=192)
    try:
        rest = renderer.render(np.zeros(52, np.float32)).astype(np.float32)
        moved = renderer.render(weights).astype(np.float32)
    finally:
        renderer.close()
    diff = np.abs(moved - rest).sum(axis=2) > 40
    return float(diff[96:].mean()), float(diff[:96].mean())


def test_visemes_and_blinks_show_where_they_should(ava):
    poses = sheet_poses()
    for viseme in ("ah", "oo", "p/b/m", "f/v"):
        lower, upper = _mouth_box_change(ava, poses[viseme])
        assert lower > 0.002 and lower > upper, viseme
    lower, upper = _mouth_box_change(ava, poses["blink"])
    assert upper > 0.002 and upper > lower


def test_the_mouth_shows_teeth_when_open(ava):
    renderer = renderer_for(ava, size=192)
    try:
        opened = renderer.render(sheet_poses()["ah"]).astype(np.float32)
    finally:
        renderer.close()
    mouth = opened[110:170, 60:132]
    teeth_like = (mouth.min(axis=2) > 190) & (np.ptp(mouth, axis=2) < 40)
    assert teeth_like.sum() > 10, "light, unsaturated pixels (teeth) inside the open mouth"


def test_built_glb_round_trips_and_serves_as_a_tenant_avatar(tmp_path, ava):
    path = tmp_path / "heads" / "ava.glb"
    write_glb(ava, path)
    loaded = load_gltf_avatar(path)
    assert loaded.missing == () and np.allclose(loaded.positions, ava.positions) and np.allclose(loaded.deltas, ava.deltas)
    assert np.allclose(loaded.colors, ava.colors) and (loaded.faces == ava.faces).all()
    import trimesh

    assert len(trimesh.load(path).geometry) == 1, "other tools open it"


def test_avatar_build_command_and_presets_in_the_config(tmp_path):
    out = tmp_path / "x.glb"
    run = subprocess.run([sys.executable, "-m", "agent.cli", "avatar", "build", "--gender", "man", "--age", "60", "--ancestry",
                          "african=0.5,caucasian=0.5", "--skin", "#a0715a", "--hair-style", "none", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert load_gltf_avatar(out).missing == ()
    bad = subprocess.run([sys.executable, "-m", "agent.cli", "avatar", "build", "--skin", "red", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "not a colour" in bad.stderr
    (tmp_path / "faq.csv").write_text("question,answer\nq?,a\n")
    config = tmp_path / "agent.yaml"
    config.write_text("answer:\n  faq_path: faq.csv\nrender:\n  avatar: kenji\ntenants:\n  demo:\n    avatar: stylised\n")
    loaded = load_config(config)
    assert loaded.render.avatar == "kenji" and loaded.tenants["demo"].avatar == "stylised"


