"""The audio-to-face model: data, training, ONNX parity, streaming, and what it does to a face."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.arkit import INDEX
from models.audio2face.baselines import LoudnessJaw, RuleVisemes
from models.audio2face.data.align import Aligner, normalise_text
from models.audio2face.data.corpus import sentences
from models.audio2face.data.visemes import VISEME_INDEX, Phone, coarticulated_curves, viseme_track
from models.audio2face.data.voices import TEST_VOICES, VAL_VOICES, VoiceVariant, default_voices, split_of
from models.audio2face.features import OUTPUT_FPS, SAMPLE_RATE, StreamingLogMel, log_mel, output_frames
from models.audio2face.kinds import make_features
from models.audio2face.runtime import FaceModel, FaceStream, ModelMissing, resample_poses
from models.devices import onnx_providers
from models.audio2face.train.loop import new_model

from .conftest import SHARED, espeak, read_wav

GRID = SHARED / "data" / "grid-lipsync"
SMALL_VOICES = [
    VoiceVariant("flite", "flite-kal16", {"voice": "kal16", "stretch": 1.0, "f0_shift": 0}),
    VoiceVariant("espeak", "espeak-m1", {"variant": "m1", "speed": 150, "pitch": 50}),
    VoiceVariant("flite", "flite-rms", {"voice": "rms", "stretch": 1.0, "f0_shift": 0}),
    VoiceVariant("flite", "flite-slt", {"voice": "slt", "stretch": 1.0, "f0_shift": 0}),
]


@pytest.fixture(scope="module")
def face():
    return FaceModel(device="cpu")


@pytest.fixture(scope="module")
def question(speech_dir):
    audio, rate = read_wav(espeak("Do you ship to Canada? I would like to order two boxes.", speech_dir / "a2f_q.wav"))
    return audio, rate


def test_streaming_features_equal_whole_utterance_features():
    audio = np.random.default_rng(1).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    whole = log_mel(audio)
    stream, parts, i = StreamingLogMel(), [], 0
    for size in (1, 100, 159, 160, 401, 1234, 50, 5000, 20000):
        parts.append(stream.push(audio[i : i + size]))
        i += size
    streamed = np.concatenate(parts)
    assert len(streamed) == len(whole) and np.allclose(streamed, whole, atol=1e-5)


def test_coarticulation_rounds_lips_before_the_vowel_and_is_smooth():
    # "two": /t/ then /uw/. The lips round during /t/ already, and nothing jumps.
    phones = [Phone("pau", 0.0, 0.3), Phone("t", 0.3, 0.38), Phone("uw", 0.38, 0.6), Phone("pau", 0.6, 1.0)]
    t = np.arange(50) / OUTPUT_FPS
    curves = coarticulated_curves(phones, t)
    pucker = curves[:, INDEX["mouthPucker"]]
    during_t = pucker[(t >= 0.3) & (t < 0.38)]
    assert during_t.max() > 0.3, "lips should anticipate the rounded vowel"
    assert np.abs(np.diff(curves, axis=0)).max() < 0.25, "no step changes between 20 ms frames"
    assert curves[0].max() < 0.02 and curves[-1].max() < 0.02, "closed at rest"
    labels = viseme_track(phones, t)
    assert labels[int(0.45 * OUTPUT_FPS)] == VISEME_INDEX["ou"]


def test_bilabials_close_the_lips():
    phones = [Phone("aa", 0.0, 0.2), Phone("m", 0.2, 0.32), Phone("aa", 0.32, 0.5)]
    t = np.arange(25) / OUTPUT_FPS
    curves = coarticulated_curves(phones, t)
    at_m, at_a = curves[int(0.26 * OUTPUT_FPS)], curves[int(0.1 * OUTPUT_FPS)]
    assert at_m[INDEX["mouthPressLeft"]] > 0.25 and at_m[INDEX["jawOpen"]] < at_a[INDEX["jawOpen"]] - 0.2


def test_an_inhale_opens_the_mouth_before_each_phrase_only():
    from models.audio2face.data.visemes import INHALE_S, inhale_before_speech

    phones = [Phone("sil", 0.0, 1.0), Phone("aa", 1.0, 1.2), Phone("sil", 1.2, 1.3), Phone("m", 1.3, 1.4), Phone("sil", 1.4, 2.0),
              Phone("ih", 2.0, 2.2), Phone("sil", 2.2, 3.0)]
    t = np.arange(150) / OUTPUT_FPS
    jaw = inhale_before_speech(phones, t)[:, INDEX["jawOpen"]]
    assert jaw[t < 1.0 - INHALE_S].max() == 0, "closed until the breath before the first phrase"
    assert 0.25 < jaw[int(0.9 * OUTPUT_FPS)] and np.all(np.diff(jaw[(t > 0.6) & (t < 0.9)]) >= 0), "rising towards the first sound"
    assert np.abs(np.diff(jaw)).max() < 0.1, "no step between 20 ms frames, handing over to the first phone either"
    assert jaw[(t >= 1.0) & (t < 1.6)].max() == 0, "a 0.1 s gap inside a phrase is no new breath"
    assert jaw[int(1.9 * OUTPUT_FPS)] > 0.25, "a 0.6 s pause is: the next phrase starts with a breath"
    assert jaw[t > 2.0].max() == 0
    assert not inhale_before_speech([Phone("sil", 0.0, 2.0)], t).any(), "silence alone never breathes"


def test_speed_perturbation_keeps_the_phones_in_step():
    from models.audio2face.data.augment import perturb_speed

    audio = np.zeros(SAMPLE_RATE, np.float32)
    audio[8000:9600] = np.sin(np.arange(1600) * 0.3)  # a sound at 0.5-0.6 s
    phones = [Phone("sil", 0.0, 0.5), Phone("aa", 0.5, 0.6), Phone("sil", 0.6, 1.0)]
    fast, moved = perturb_speed(audio, phones, 1.25)
    loud = np.nonzero(np.abs(fast) > 0.5)[0] / SAMPLE_RATE
    assert abs(len(fast) / SAMPLE_RATE - 0.8) < 0.01
    assert abs(moved[1].start - loud[0]) < 0.01 and abs(moved[1].end - loud[-1]) < 0.01


def test_every_corpus_word_can_be_aligned():
    aligner = Aligner()
    unknown = {w for s in sentences() for w in normalise_text(s).split() if not aligner.known(w)}
    assert not unknown


def test_split_keeps_test_and_val_voices_out_of_training():
    voices = {v.voice for v in default_voices()}
    assert set(TEST_VOICES) <= voices and set(VAL_VOICES) <= voices
    assert {split_of(v) for v in TEST_VOICES} == {"test"} and {split_of(v) for v in VAL_VOICES} == {"val"}
    assert len({v for v in voices if split_of(v) == "train"}) >= 6


def test_corpus_build_is_deterministic_and_labelled(tmp_path):
    from models.audio2face.data.build import build

    first = build(tmp_path / "a", sentences_per_variant=1, workers=1, voices=SMALL_VOICES[:2])
    second = build(tmp_path / "b", sentences_per_variant=1, workers=1, voices=SMALL_VOICES[:2])
    assert first["splits"]["train"]["sha256"] == second["splits"]["train"]["sha256"]
    assert first["splits"]["train"]["utterances"] == 4  # 2 voices x 1 sentence x (clean + augmented)
    z = np.load(tmp_path / "a" / "train.npz")
    assert np.isfinite(z["targets"].astype(np.float32)).all()
    assert z["targets"][:, INDEX["jawOpen"]].astype(np.float32).max() > 0.2
    assert (z["visemes"] != VISEME_INDEX["sil"]).mean() > 0.3
    assert len(z["targets"]) == sum(output_frames(n) for n in np.diff(z["audio_offsets"]))
    assert z["audio"].dtype == np.int16 and np.abs(z["audio"]).max() > 3000, "the corpus keeps its audio, features are made from it"
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert {u["voice"] for u in manifest["utterances"]} == {"flite-kal16", "espeak-m1"}
    assert (tmp_path / "a" / "example.png").stat().st_size > 10_000


def test_kokoro_voices_give_deterministic_aligned_training_speech(tmp_path):
    from agent.speak.voices import make_voice
    from models.audio2face.data.build import build

    kokoro = [VoiceVariant("kokoro", "kokoro-af_heart", {"voice": "af_heart", "length_scale": 1.0})]
    first = build(tmp_path / "a", sentences_per_variant=1, workers=1, voices=kokoro, agent_voice=make_voice)
    second = build(tmp_path / "b", sentences_per_variant=1, workers=1, voices=kokoro, agent_voice=make_voice)
    assert first["errors"] == [] and first["splits"]["train"]["utterances"] == 2
    assert first["splits"]["train"]["sha256"] == second["splits"]["train"]["sha256"]
    phones = first["utterances"][0]["phones"]
    assert len(phones) > 5 and phones[-1]["end"] > 0.5, "pocketsphinx aligned the phones"


@pytest.mark.parametrize("kind", ["logmel", "whisper"])
def test_chunked_network_equals_whole_utterance(kind):
    torch.manual_seed(0)
    model = new_model(kind).eval()
    c = model.context
    feats = torch.randn(1, 60 * c.stride, model.feature_dim) + model.silence
    emotion = torch.zeros(1, 5)
    emotion[0, 1] = 1
    whole, _ = model(feats, emotion)
    padded = model.pad(feats)
    state, outs, start = model.initial_state(1), [], 0
    for poses in (10, 2, 30, 18):
        w, _, state = model.step(padded[:, start : start + c.left + poses * c.stride + c.right], emotion, state)
        outs.append(w)
        start += poses * c.stride
    assert torch.allclose(torch.cat(outs, 1), whole, atol=1e-5)


def _exported(kind, tmp_path):
    from models.audio2face.train.export import export_onnx

    torch.manual_seed(1)
    model = new_model(kind).eval()
    export_onnx(model, tmp_path)
    return model, FaceModel(tmp_path, device="cpu")


@pytest.mark.parametrize("kind", ["logmel", "whisper"])
def test_onnx_export_matches_torch(kind, tmp_path):
    model, onnx_face = _exported(kind, tmp_path)
    assert onnx_face.features.kind == kind
    audio = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.05
    emotion = torch.zeros(1, 5)
    emotion[0, onnx_face.emotions.index("happy")] = 1
    with torch.no_grad():
        expected, _ = model(torch.from_numpy(make_features(kind)(audio))[None], emotion)
    assert np.allclose(onnx_face.animate(audio, SAMPLE_RATE, "happy"), expected[0].numpy(), atol=1e-4)


def _stream(face, audio, rate, seed=3):
    stream, parts, i, rng = FaceStream(face), [], 0, np.random.default_rng(seed)
    while i < len(audio):
        n = int(rng.integers(50, 4000))
        parts.append(stream.push(audio[i : i + n], rate))
        i += n
    parts.append(stream.flush())
    return np.concatenate(parts)


def test_a_model_card_without_a_feature_kind_is_a_log_mel_model(tmp_path):
    _exported("logmel", tmp_path)
    card = json.loads((tmp_path / "audio2face.json").read_text())
    card["features"] = {"sample_rate": 16000, "hop": 160, "window": 400, "n_fft": 512, "n_mels": 80}  # as format 1 wrote it
    (tmp_path / "audio2face.json").write_text(json.dumps(card))
    assert FaceModel(tmp_path, device="cpu").features.kind == "logmel"


def test_streaming_log_mel_model_equals_whole_clip(tmp_path, question):
    audio, rate = question
    _, face = _exported("logmel", tmp_path)
    whole = face.animate(audio, rate)
    streamed = _stream(face, audio, rate)
    assert streamed.shape == whole.shape and np.allclose(streamed, whole, atol=1e-4)


def test_streamed_whisper_features_are_every_frame_in_time():
    features = make_features("whisper")
    audio = np.random.default_rng(4).standard_normal(int(3.3 * SAMPLE_RATE)).astype(np.float32) * 0.05
    whole = features(audio)
    assert whole.shape == (output_frames(len(audio)), features.dim)
    stream, parts, i = features.stream(), [], 0
    for size in (10, 320, 999, 5000, 1, 16000, len(audio)):
        parts.append(stream.push(audio[i : i + size]))
        i += size
    early = sum(len(p) for p in parts)
    assert len(whole) - early <= round(features.look_ahead_s * OUTPUT_FPS), "a streamed frame waits for a bounded look-ahead only"
    streamed = np.concatenate(parts + [stream.flush()])
    assert streamed.shape == whole.shape
    assert len(stream.push(np.zeros(SAMPLE_RATE, np.float32))) > 0, "the stream goes on after a flush"
    assert features(np.zeros(0, np.float32)).shape == (0, features.dim)


def test_whisper_features_take_audio_longer_than_whisper_window():
    features = make_features("whisper")
    audio = np.random.default_rng(5).standard_normal(32 * SAMPLE_RATE).astype(np.float32) * 0.05
    assert features(audio).shape == (output_frames(len(audio)), features.dim)


def test_streaming_follows_the_whole_clip(face, question):
    audio, rate = question
    whole = face.animate(audio, rate)
    streamed = _stream(face, audio, rate)
    assert streamed.shape == whole.shape
    if face.features.kind == "logmel":
        assert np.allclose(streamed, whole, atol=1e-4)
    else:  # the encoder hears each streamed frame in a shorter window: close, not equal
        jaw = INDEX["jawOpen"]
        assert np.corrcoef(streamed[:, jaw], whole[:, jaw])[0, 1] > 0.8
        assert np.abs(streamed[:, jaw] - whole[:, jaw]).mean() < 0.05


def test_shipped_model_opens_the_mouth_for_speech_only(face, question):
    audio, rate = question
    poses = face.animate(audio, rate)
    jaw = poses[:, INDEX["jawOpen"]]
    t = np.arange(len(poses)) / OUTPUT_FPS
    assert jaw[(t > 0.5) & (t < len(audio) / rate - 1.2)].max() > 0.3
    assert jaw[t > len(audio) / rate - 0.5].max() < 0.08, "closed after speaking"
    lead = np.concatenate([np.zeros(rate, np.float32), audio])  # a second of silence, then the question
    jaw = face.animate(lead, rate)[:, INDEX["jawOpen"]]
    assert jaw[: int(0.4 * OUTPUT_FPS)].max() < 0.08, "closed in silence, until the breath before speaking"
    assert face.animate(np.zeros(rate, np.float32), rate)[:, INDEX["jawOpen"]].max() < 0.05
    noise = np.random.default_rng(0).standard_normal(rate * 2).astype(np.float32) * 0.01
    assert np.median(face.animate(noise, rate)[:, INDEX["jawOpen"]]) < 0.1


def test_shipped_model_follows_the_emotion_input(face, question):
    audio, rate = question
    happy, concerned = face.animate(audio, rate, "happy"), face.animate(audio, rate, "concerned")
    assert happy[:, INDEX["mouthSmileLeft"]].mean() > concerned[:, INDEX["mouthSmileLeft"]].mean() + 0.15
    assert concerned[:, INDEX["browInnerUp"]].mean() > happy[:, INDEX["browInnerUp"]].mean() + 0.2


@pytest.mark.skipif(not GRID.exists(), reason="needs ../shared/data/grid-lipsync")
def test_shipped_model_beats_both_baselines_on_real_speakers(face):
    from models.audio2face.evaluate import load_grid, pearson
    from models.audio2face.runtime import poses_at

    scores = {"model": [], "loudness": [], "rules": []}
    rules = RuleVisemes()
    for clip in load_grid(GRID):
        truth = clip["curves"][:, INDEX["jawOpen"]]
        for name, poses in (("model", face.animate(clip["audio"], clip["rate"])), ("loudness", LoudnessJaw()(clip["audio"], clip["rate"])),
                            ("rules", rules(clip["audio"], clip["rate"], clip["text"]))):
            scores[name].append(pearson(poses_at(poses, clip["times"])[:, INDEX["jawOpen"]], truth))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    assert mean["model"] > mean["loudness"] and mean["model"] > mean["rules"], mean


def test_resampling_poses_to_the_video_rate():
    poses = np.zeros((50, 52), np.float32)
    poses[:, 0] = np.arange(50) / 50  # a ramp over one second at 50 fps
    video = resample_poses(poses, 25)
    assert video.shape == (25, 52) and np.allclose(video[:, 0], np.arange(25) / 25, atol=1e-6)


def test_device_choice_is_clear_without_a_gpu():
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this machine has CUDA")
    assert onnx_providers("auto") == ["CPUExecutionProvider"]
    with pytest.raises(RuntimeError, match="onnxruntime-gpu"):
        onnx_providers("cuda")


def test_missing_model_folder_is_reported(tmp_path):
    with pytest.raises(ModelMissing, match="avatar-agent train"):
        FaceModel(tmp_path)


@pytest.mark.finetune
def test_training_reduces_the_loss_and_exports(tmp_path):
    from models.audio2face.data.build import build
    from models.audio2face.train.loop import train

    build(tmp_path / "data", sentences_per_variant=2, workers=1, voices=SMALL_VOICES)
    real = GRID if GRID.exists() else None
    summary = train(tmp_path / "data", tmp_path / "run", steps=40, batch_size=4, crop_poses=100, eval_every=20, workers=1, real_speakers=real)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert np.mean(history["train_loss"][-8:]) < 0.7 * np.mean(history["train_loss"][:4])
    assert summary["best"]["step"] in (20, 40) and summary["features"] == "whisper"
    if real:
        assert summary["selected_on"].startswith("real speakers") and "jawOpen_r_mean" in summary["leave_one_clip_out"]
        assert len(history["real_jawOpen_r"]) == 2 and len(history["real_jawOpen_r"][0]) == len(list(GRID.glob("*.wav")))
    for name in ("checkpoint.pt", "loss.png", "prediction.png"):
        assert (tmp_path / "run" / name).stat().st_size > 1000


@pytest.mark.slow
@pytest.mark.skipif(not GRID.exists(), reason="needs ../shared/data/grid-lipsync")
def test_evaluate_command_writes_its_report_into_folders_that_do_not_exist_yet(tmp_path):
    import subprocess
    import sys

    out, plot = tmp_path / "new" / "evaluation.json", tmp_path / "other" / "real_speakers.png"
    run = subprocess.run([sys.executable, "-m", "agent.cli", "evaluate", "--per-voice", "1", "--real-speakers", str(GRID),
                          "--out", str(out), "--plot", str(plot)], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "| audio2face (ours) |" in run.stdout
    report = json.loads(out.read_text())
    assert len(report["real_speakers"]["audio2face (ours)"]["jawOpen_r_per_clip"]) == len(list(GRID.glob("*.wav")))
    assert plot.stat().st_size > 10_000
    assert "sync lag" in run.stdout and all(abs(lag) <= 6 for lag in report["real_speakers"]["audio2face (ours)"]["lag_frames_per_clip"])


def test_leave_one_clip_out_scores_each_clip_where_the_others_chose():
    from models.audio2face.train.real_speakers import leave_one_clip_out

    # Rows: three evaluations; columns: three clips.
    jaw = np.array([[0.1, 0.1, 0.1], [0.9, 0.8, 0.2], [0.5, 0.4, 0.9]])
    result = leave_one_clip_out(jaw, jaw)
    # Clips 1 and 2 average best at evaluation 2 (0.65), clips 0 and 2 too (0.7), clips 0 and 1 at evaluation 1 (0.85).
    expected = [jaw[2, 0], jaw[2, 1], jaw[1, 2]]
    assert result["jawOpen_r_mean"] == pytest.approx(np.mean(expected))
    assert result["openness_r_median"] == pytest.approx(np.median(expected))


def test_sync_lag_finds_a_late_or_early_prediction():
    from models.audio2face.evaluate import sync_lag

    truth = np.sin(np.arange(200) / 5) + np.random.default_rng(0).normal(0, 0.1, 200)
    assert sync_lag(truth, truth) == 0
    assert sync_lag(np.roll(truth, 2), truth) == 2, "a prediction two frames behind the video is late: positive"
    assert sync_lag(np.roll(truth, -3), truth) == -3
