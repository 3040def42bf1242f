"""The MakeHuman default head and `avatar-agent avatar build|sheet`."""
from __future__ import annotations

import subprocess
import sys

from dataclasses import replace

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


def _surface(avatar, name):
    return next(s for s in avatar.surfaces if s.name == name)


@pytest.mark.slow
def test_presets_differ_and_share_the_face_topology():
    heads = {name: build_head(spec, name) for name, spec in PRESETS.items()}
    faces = {tuple(s.face_count for s in h.surfaces if s.name != "hair") for h in heads.values()}
    assert len(faces) == 1, "every preset has the same face mesh; only the hair cards differ"
    skins = {name: _surface(h, "skin") for name, h in heads.items()}
    face = lambda name: heads[name].positions[skins[name].vertex_slice]  # noqa: E731
    assert np.abs(face("kenji") - face("walter")).max() > 0.005, "age and ancestry change the shape"
    amara, walter = (skins[n].albedo[..., :3].astype(int) for n in ("amara", "walter"))
    assert np.abs(np.median(amara, axis=(0, 1)) - np.median(walter, axis=(0, 1))).max() > 60, "skin colours differ"
    assert {PRESETS[n].hair_style for n in PRESETS} >= {"long", "crop", "side_part", "tied_back"}, "the presets show the styles"


def test_the_look_is_in_textures_and_the_textures_are_drawn(ava):
    skin = _surface(ava, "skin")
    assert skin.albedo.shape[:2] == (1024, 1024) and skin.roughness_map is not None and ava.uvs is not None
    assert np.all(ava.colors == 1), "no vertex colours: the look is painted in texture space"
    # Detail below a vertex: within the skin, neighbouring texels vary (brows as strokes, pores), unlike vertex colours.
    assert np.abs(np.diff(skin.albedo[..., :3].astype(int), axis=1)).mean() > 1.0
    renderer = renderer_for(ava, size=192)
    try:
        painted = renderer.render(np.zeros(52, np.float32)).astype(int)
    finally:
        renderer.close()
    from dataclasses import replace

    flat = replace(skin, albedo=np.full_like(skin.albedo, 200))
    plain = replace(ava, surfaces=(flat, *ava.surfaces[1:]))
    renderer = renderer_for(plain, size=192)
    try:
        unpainted = renderer.render(np.zeros(52, np.float32)).astype(int)
    finally:
        renderer.close()
    assert (np.abs(painted - unpainted).sum(axis=2) > 30).mean() > 0.05, "the skin texture changes what is drawn"


@pytest.mark.slow
def test_hair_is_cards_with_a_soft_hairline_in_every_style():
    from agent.avatars.hair import STYLES

    base = PRESETS["kenji"]
    for style in STYLES:
        head = build_head(replace(base, hair_style=style), style)
        names = [s.name for s in head.surfaces]
        if style == "none":
            assert "hair" not in names
            continue
        hair = _surface(head, "hair")
        assert hair.blend and hair.albedo is not None
        alpha = hair.albedo[..., 3]
        assert ((alpha > 10) & (alpha < 245)).mean() > 0.05, "strand edges and tips are partly transparent"
        cards = head.positions[hair.vertex_slice]
        skin = head.positions[_surface(head, "skin").vertex_slice]
        assert cards[:, 1].max() > skin[:, 1].max() and np.mean(cards[:, 1] > np.percentile(skin[:, 1], 80)) > 0.2, "cards cover the crown"
        assert np.all(head.deltas[:, hair.vertex_slice] == 0), "the cards move with the head, not with the face's shapes"
    with pytest.raises(ValueError, match="hair style"):
        build_head(replace(base, hair_style="mohawk"))


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
    assert np.allclose(loaded.colors, ava.colors) and (loaded.faces == ava.faces).all() and np.allclose(loaded.uvs, ava.uvs)
    for mine, theirs in zip(ava.surfaces, loaded.surfaces):
        assert (mine.name, mine.blend, mine.vertex_count, mine.face_count) == (theirs.name, theirs.blend, theirs.vertex_count, theirs.face_count)
        assert theirs.albedo.shape == mine.albedo.shape and np.abs(theirs.albedo.astype(int) - mine.albedo).mean() < 3, "textures travel"
        assert (mine.roughness_map is None) == (theirs.roughness_map is None) and theirs.wrap == pytest.approx(mine.wrap)
    import trimesh

    assert len(trimesh.load(path).geometry) == len(ava.surfaces), "other tools open it"


@pytest.mark.slow
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


