"""Custom glTF/GLB avatars, and the offline render command."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from models.arkit import INDEX
from agent.config import ConfigError, load_config
from agent.avatars.gltf import AvatarError, arkit_name, load_gltf_avatar


from .conftest import SHARED, espeak, renderer_for

ICT = SHARED / "avatars" / "ict-face" / "ict_face_arkit51.glb"
needs_ict = pytest.mark.skipif(not ICT.exists(), reason="needs ../shared/avatars/ict-face")


def write_glb(path, positions, faces, targets: dict[str, np.ndarray]) -> None:
    """A minimal GLB: one mesh, named morph targets (dense float deltas)."""
    import pygltflib as g

    chunks = [faces.astype(np.uint32).tobytes(), positions.astype(np.float32).tobytes()]
    chunks += [d.astype(np.float32).tobytes() for d in targets.values()]
    blob, views, offset = b"", [], 0
    for c in chunks:
        views.append(g.BufferView(buffer=0, byteOffset=offset, byteLength=len(c)))
        blob += c
        offset += len(c)
    accessors = [g.Accessor(bufferView=0, componentType=g.UNSIGNED_INT, count=faces.size, type="SCALAR"),
                 g.Accessor(bufferView=1, componentType=g.FLOAT, count=len(positions), type="VEC3",
                            min=positions.min(0).tolist(), max=positions.max(0).tolist())]
    accessors += [g.Accessor(bufferView=2 + i, componentType=g.FLOAT, count=len(positions), type="VEC3") for i in range(len(targets))]
    prim = g.Primitive(attributes=g.Attributes(POSITION=1), indices=0, targets=[{"POSITION": 2 + i} for i in range(len(targets))])
    gltf = g.GLTF2(scene=0, scenes=[g.Scene(nodes=[0])], nodes=[g.Node(mesh=0)],
                   meshes=[g.Mesh(primitives=[prim], extras={"targetNames": list(targets)})],
                   accessors=accessors, bufferViews=views, buffers=[g.Buffer(byteLength=len(blob))])
    gltf.set_binary_blob(blob)
    gltf.save_binary(str(path))


def test_target_name_spellings():
    for spelling in ("eyeBlinkLeft", "eyeBlink_L", "EyeBlinkLeft", "eye_blink_left", "blendShape1.eyeBlink_L", "eyeBlink_l"):
        assert arkit_name(spelling) == "eyeBlinkLeft", spelling
    assert arkit_name("mouthSmile_R") == "mouthSmileRight"
    assert arkit_name("JawOpen") == "jawOpen" and arkit_name("cheekPuff") == "cheekPuff"
    assert arkit_name("mouthRollLower") == "mouthRollLower"  # ends in 'r' but is not a side
    assert arkit_name("wrinkle") is None


def test_glb_with_side_suffixes_loads_and_reports_missing_shapes(tmp_path):
    grid = np.stack(np.meshgrid(np.linspace(-1, 1, 5), np.linspace(-1, 1, 5)), -1).reshape(-1, 2)
    positions = np.concatenate([grid, np.zeros((25, 1))], 1)
    faces = np.array([[r * 5 + c, r * 5 + c + 1, (r + 1) * 5 + c] for r in range(4) for c in range(4)])
    jaw = np.zeros_like(positions)
    jaw[positions[:, 1] < 0, 1] = -0.3
    blink = np.zeros_like(positions)
    blink[12, 2] = 0.2
    write_glb(tmp_path / "head.glb", positions, faces, {"jawOpen": jaw, "eyeBlink_L": blink, "wrinkleNose": blink})
    avatar = load_gltf_avatar(tmp_path / "head.glb")
    assert "jawOpen" not in avatar.missing and "eyeBlinkLeft" not in avatar.missing
    assert len(avatar.missing) == 50 and "eyeBlinkRight" in avatar.missing
    w = np.zeros(52, np.float32)
    w[INDEX["jawOpen"]] = 0.5
    assert np.allclose(avatar.deform(w) - avatar.positions, 0.5 * jaw, atol=1e-6)
    w[INDEX["jawOpen"]], w[INDEX["eyeBlinkLeft"]] = 0.0, 1.0
    assert np.allclose(avatar.deform(w)[12], positions[12] + [0, 0, 0.2], atol=1e-6)


def test_bad_avatar_files_are_refused_clearly(tmp_path):
    import trimesh

    with pytest.raises(AvatarError, match="not found"):
        load_gltf_avatar(tmp_path / "nope.glb")
    (tmp_path / "junk.glb").write_bytes(b"this is not a glb file at all")
    with pytest.raises(AvatarError, match="not a readable glTF"):
        load_gltf_avatar(tmp_path / "junk.glb")
    trimesh.creation.box().export(tmp_path / "box.glb")
    with pytest.raises(AvatarError, match="no morph targets with ARKit"):
        load_gltf_avatar(tmp_path / "box.glb")


def test_config_refuses_a_missing_avatar_file(tmp_path):
    from agent.config import DEFAULT_CONFIG

    faq = DEFAULT_CONFIG.parent / "faq" / "demo.csv"
    (tmp_path / "agent.yaml").write_text(f"answer:\n  faq_path: {faq}\nrender:\n  avatar: heads/missing.glb\n")
    with pytest.raises(ConfigError, match="render.avatar: file does not exist"):
        load_config(tmp_path / "agent.yaml")


@needs_ict
def test_ict_head_loads_with_its_51_shapes():
    avatar = load_gltf_avatar(ICT)
    assert avatar.vertex_count == 24_999 and len(avatar.faces) == 49_488
    assert avatar.missing == ("tongueOut",)
    jaw = avatar.deltas[INDEX["jawOpen"]]
    moved = np.linalg.norm(jaw, axis=1) > 0.3 * np.linalg.norm(jaw, axis=1).max()
    assert jaw[moved, 1].mean() < 0, "jawOpen moves the chin down"
    assert avatar.positions[moved, 1].mean() < avatar.positions[:, 1].mean()
    blink = np.linalg.norm(avatar.deltas[INDEX["eyeBlinkLeft"]], axis=1)
    assert avatar.positions[blink > 0.3 * blink.max(), 0].mean() > 0, "the subject's left eye is at +x"


@needs_ict
def test_ict_head_renders_and_its_mouth_opens():
    avatar = load_gltf_avatar(ICT)
    renderer = renderer_for(avatar)
    try:
        closed = renderer.render(np.zeros(52, np.float32)).astype(np.float32)
        w = np.zeros(52, np.float32)
        w[INDEX["jawOpen"]] = 0.8
        opened = renderer.render(w).astype(np.float32)
    finally:
        renderer.close()
    background = closed[2, 2]
    assert (np.abs(closed - background).sum(axis=2) > 30).mean() > 0.25, "the head fills a good part of the picture"
    diff = np.abs(opened - closed).sum(axis=2) > 40
    rows = np.nonzero(diff.any(axis=1))[0]
    assert diff.sum() > 200 and rows.mean() > 128, "jawOpen changes the lower half of the face"


def test_offline_render_writes_an_mp4_with_the_expected_duration(tmp_path, speech_dir):
    import av

    from agent.cli import main

    wav = espeak("Your parcel is on its way.", speech_dir / "render.wav", lead_s=0.0, tail_s=0.0)
    out = tmp_path / "clip.mp4"
    assert main(["render", "--wav", str(wav), "--out", str(out), "--emotion", "happy"]) == 0
    from models.audio import read_wav

    audio, rate = read_wav(wav)
    expected = len(audio) / rate + 0.3 + 0.5  # lead and tail silence
    with av.open(str(out)) as container:
        video = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video)]
    with av.open(str(out)) as container:
        audio_samples = sum(f.samples for f in container.decode(container.streams.audio[0]))
    assert abs(len(frames) / 25 - expected) < 0.05
    assert abs(audio_samples / 48000 - expected) < 0.05
    assert frames[0].shape == (512, 512, 3)
    mouth = [f[300:420, 180:330].astype(np.float32) for f in frames]
    assert max(np.abs(m - mouth[0]).mean() for m in mouth) > 3, "the mouth moves in the video"


def test_offline_render_reports_unreadable_speech(tmp_path, capsys):
    from agent.cli import main

    (tmp_path / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    assert main(["render", "--wav", str(tmp_path / "bad.wav"), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "cannot read the speech" in capsys.readouterr().err
