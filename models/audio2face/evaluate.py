"""`avatar-agent evaluate`: the model against two baselines on held-out voices and real speakers.

Prints a table and writes it as JSON (and a plot of the real-speaker curves).
"""
from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.arkit import INDEX
from models.audio import read_wav

from .baselines import LoudnessJaw, RuleVisemes
from .data.augment import augment
from .data.build import build_jobs, seed_for, label_utterance, synthesize_example
from .data.visemes import MOUTH_CHANNELS
from .data.voices import TEST_VOICES, Synthesizer, default_voices
from .features import SAMPLE_RATE
from .runtime import WEIGHTS_DIR, FaceModel, FaceStream, poses_at

MODEL = "audio2face (ours)"
STREAMED = "audio2face, streamed live"


def mouth_openness(poses: np.ndarray) -> np.ndarray:
    """One number per frame for how open the mouth looks: jaw plus lip opening minus lip closure."""
    lips = poses[:, [INDEX["mouthLowerDownLeft"], INDEX["mouthLowerDownRight"], INDEX["mouthUpperUpLeft"], INDEX["mouthUpperUpRight"]]]
    return poses[:, INDEX["jawOpen"]] + 0.5 * lips.sum(axis=1) / 2 - poses[:, INDEX["mouthClose"]]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.std(a) < 1e-8 or np.std(b) < 1e-8:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def clip_scores(poses: np.ndarray, times: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """50 fps poses against one clip's video curves (at `times`): jawOpen r and mouth-openness r."""
    pred = poses_at(poses, times)
    return pearson(pred[:, INDEX["jawOpen"]], truth[:, INDEX["jawOpen"]]), pearson(mouth_openness(pred), mouth_openness(truth))


def sync_lag(prediction: np.ndarray, truth: np.ndarray, max_lag: int = 6) -> int:
    """The shift in frames at which the prediction correlates best with the truth; positive: the prediction comes late."""
    def r_at(lag: int) -> float:
        if lag >= 0:
            return pearson(prediction[lag:], truth[: len(truth) - lag])
        return pearson(prediction[:lag], truth[-lag:])

    return max(range(-max_lag, max_lag + 1), key=lambda lag: (r_at(lag), -abs(lag)))


def load_grid(grid_dir: Path) -> list[dict]:
    transcripts = dict(line.rstrip("\n").split("\t", 1) for line in (grid_dir / "transcripts.tsv").read_text().splitlines() if "\t" in line)
    clips = []
    for wav_name, text in sorted(transcripts.items()):
        with open(grid_dir / wav_name.replace(".wav", "_blendshapes.csv")) as f:
            rows = list(csv.DictReader(f))
        times = np.array([float(r["time_s"]) for r in rows])
        curves = np.zeros((len(rows), 52), np.float32)
        for name, i in INDEX.items():
            if name in rows[0]:
                curves[:, i] = [float(r[name]) for r in rows]
        audio, rate = read_wav(grid_dir / wav_name)
        clips.append({"name": wav_name[:-4], "text": text, "audio": audio, "rate": rate, "times": times, "curves": curves})
    return clips


def streamed(face: FaceModel, audio: np.ndarray, rate: int, chunk_s: float = 0.1) -> np.ndarray:
    """Poses as a live stream gives them: the audio pushed in chunks, then flushed."""
    stream, chunk = FaceStream(face), int(chunk_s * rate)
    parts = [stream.push(audio[i : i + chunk], rate) for i in range(0, len(audio), chunk)]
    return np.concatenate(parts + [stream.flush()])


def evaluate(model_dir: Path = WEIGHTS_DIR, grid_dir: Path | None = None, per_voice: int = 12, out: Path | None = None, plot: Path | None = None,
             agent_voice=None, compare: list[Path] = ()) -> dict:
    """`agent_voice(name, threads, length_scale)`: the agent's voices, for the Kokoro test voices (without it they are left out).
    `compare`: other model folders measured in the same run, on the same audio (rows named by their path)."""
    face = FaceModel(model_dir, device="cpu")
    others = {f"{MODEL} @ {d}": FaceModel(d, device="cpu") for d in compare}
    rule = RuleVisemes()
    baselines = {"loudness jaw": lambda a, r, text: LoudnessJaw()(a, r), "rule-based visemes": lambda a, r, text: rule(a, r, text)}
    rivals = {**{name: (lambda m: lambda a, r, text: m.animate(a, r))(m) for name, m in others.items()}, **baselines}
    methods = {MODEL: lambda a, r, text: face.animate(a, r), **rivals}
    live = {STREAMED: lambda a, r, text: streamed(face, a, r)}  # real speakers only
    report: dict = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "model": face.card.get("onnx_sha256"),
                    "features": face.features.kind, "held_out": {}, "real_speakers": {}}

    # 1. Held-out synthetic voices: error against the coarticulated labels.
    synth = Synthesizer(agent_voice)
    errors = {m: [] for m in methods}
    correct = total = 0
    variants = [v for v in default_voices() if v.voice in TEST_VOICES and (agent_voice or v.engine not in ("piper", "kokoro"))]
    jobs = build_jobs(per_voice // len([v for v in variants if v.voice == variants[0].voice]) + 1, variants)
    for variant, index, text in tqdm(jobs, desc="held-out voices", unit="utt"):
        try:
            ex = synthesize_example(synth, variant, index, text)
        except Exception:
            continue
        rng = np.random.default_rng(seed_for("eval", variant.name, index))
        for audio in (ex.audio, augment(ex.audio, rng)[0]):
            targets, visemes = label_utterance(ex.audio, ex.phones, ex.emotion, ex.intensity)
            poses, vis = face.infer(audio, SAMPLE_RATE, ex.emotion)  # one run gives the poses and the visemes
            predictions = {MODEL: poses, **{name: method(audio, SAMPLE_RATE, text) for name, method in rivals.items()}}
            for name, pred in predictions.items():
                pred = pred[: len(targets)]
                errors[name].append(np.abs(pred[:, MOUTH_CHANNELS] - targets[: len(pred)][:, MOUTH_CHANNELS]).mean(axis=1))
            correct += int((vis[: len(visemes)] == visemes[: len(vis)]).sum())
            total += min(len(vis), len(visemes))
    for name in methods:
        report["held_out"][name] = {"mouth_mae": float(np.concatenate(errors[name]).mean())}
    report["held_out"][MODEL]["viseme_accuracy"] = correct / max(total, 1)
    report["held_out"]["rule-based visemes"]["alignment_failures"] = rule.failures
    report["held_out_voices"] = sorted({v.voice for v in variants})
    report["held_out_utterances"] = len(errors[MODEL])

    # 2. Real human speakers: correlation with curves estimated from video.
    if grid_dir is not None and grid_dir.exists():
        clips = load_grid(grid_dir)
        real_methods = {**methods, **live}
        per_clip = {m: {"jawOpen": [], "openness": [], "lag": []} for m in real_methods}
        series = []
        for clip in tqdm(clips, desc="real speakers", unit="clip"):
            truth = clip["curves"]
            row = {"clip": clip["name"], "truth": truth[:, INDEX["jawOpen"]].tolist()}
            for name, method in real_methods.items():
                poses = method(clip["audio"], clip["rate"], clip["text"])
                jaw_r, openness_r = clip_scores(poses, clip["times"], truth)
                per_clip[name]["jawOpen"].append(jaw_r)
                per_clip[name]["openness"].append(openness_r)
                pred = poses_at(poses, clip["times"])
                per_clip[name]["lag"].append(sync_lag(mouth_openness(pred), mouth_openness(truth)))
                row[name] = pred[:, INDEX["jawOpen"]].tolist()
            series.append(row)
        frame_s = float(np.median(np.concatenate([np.diff(c["times"]) for c in clips])))
        for name in real_methods:
            report["real_speakers"][name] = {
                "jawOpen_r_mean": float(np.mean(per_clip[name]["jawOpen"])),
                "openness_r_mean": float(np.mean(per_clip[name]["openness"])),
                "jawOpen_r_median": float(np.median(per_clip[name]["jawOpen"])),
                "openness_r_median": float(np.median(per_clip[name]["openness"])),
                "worst_clip_openness_r": float(np.min(per_clip[name]["openness"])),
                "lag_ms_median": float(np.median(per_clip[name]["lag"]) * 1000 * frame_s),
                "lag_frames_per_clip": per_clip[name]["lag"],
                "jawOpen_r_per_clip": [round(x, 3) for x in per_clip[name]["jawOpen"]],
                "openness_r_per_clip": [round(x, 3) for x in per_clip[name]["openness"]],
            }
        report["real_speaker_clips"] = [c["name"] for c in clips]
        report["video_frame_ms"] = 1000 * frame_s
        if plot is not None:
            plot_real_speakers(series, plot)

    # 3. Speed on this machine's CPU.
    report["speed"] = measure_speed(face)
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(report, indent=1))
    return report


def measure_speed(face: FaceModel, seconds: float = 4.0, repeats: int = 5) -> dict:
    """Whole clips of a spoken sentence's length (what the agent's voice gives), then a live stream in 100 ms chunks."""
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(seconds * SAMPLE_RATE))).astype(np.float32)
    face.animate(audio[:SAMPLE_RATE], SAMPLE_RATE)
    started = time.perf_counter()
    for _ in range(repeats):
        face.animate(audio, SAMPLE_RATE)
    whole = (time.perf_counter() - started) / repeats
    stream = FaceStream(face)
    chunk = SAMPLE_RATE // 10
    timings = []
    for i in range(0, len(audio), chunk):
        t = time.perf_counter()
        stream.push(audio[i : i + chunk], SAMPLE_RATE)
        timings.append(time.perf_counter() - t)
    return {"x_real_time_whole_clip": round(seconds / whole, 1), "ms_per_100ms_chunk_median": round(1000 * float(np.median(timings)), 2),
            "ms_per_100ms_chunk_p95": round(1000 * float(np.percentile(timings, 95)), 2), "provider": face.provider,
            "look_ahead_ms": round(1000 * face.look_ahead_s)}


def format_table(report: dict) -> str:
    names = list(report["held_out"]) + [n for n in report["real_speakers"] if n not in report["held_out"]]
    lines = ["| method | held-out voices: mouth MAE (lower is better) | held-out: viseme accuracy | real speakers: jawOpen r, mean (median) | real speakers: mouth openness r, mean (median) | worst clip: openness r | sync lag, median clip (+ late) |",
             "|---|---|---|---|---|---|---|"]
    for name in names:
        h = report["held_out"].get(name, {})
        r = report["real_speakers"].get(name, {})
        acc = f"{h['viseme_accuracy']:.1%}" if "viseme_accuracy" in h else "-"
        mae = f"{h['mouth_mae']:.4f}" if h else "-"
        jaw = f"{r['jawOpen_r_mean']:.3f} ({r['jawOpen_r_median']:.3f})" if r else "-"
        opn = f"{r['openness_r_mean']:.3f} ({r['openness_r_median']:.3f})" if r else "-"
        worst = f"{r['worst_clip_openness_r']:.3f}" if r else "-"
        lag = f"{r['lag_ms_median']:+.0f} ms" if r else "-"
        lines.append(f"| {name} | {mae} | {acc} | {jaw} | {opn} | {worst} | {lag} |")
    s = report["speed"]
    lines.append("")
    lines.append(f"Speed ({s['provider']}, {report.get('features', 'logmel')} features, one thread): {s['x_real_time_whole_clip']}x real time on a whole 4 s clip; "
                 f"{s['ms_per_100ms_chunk_median']} ms per 100 ms chunk streaming (p95 {s['ms_per_100ms_chunk_p95']} ms); look-ahead {s['look_ahead_ms']} ms.")
    return "\n".join(lines)


def plot_real_speakers(series: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = 3
    rows = int(np.ceil(len(series) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(14, 2.6 * rows), squeeze=False)
    for ax, row in zip(axes.flat, series):
        t = np.arange(len(row["truth"])) / 25
        ax.plot(t, row["truth"], color="black", lw=2, label="video (MediaPipe)")
        for name in (MODEL, "rule-based visemes", "loudness jaw"):
            ax.plot(t, row[name], lw=1.2, label=name)
        ax.set_title(row["clip"], fontsize=9)
    for ax in axes.flat[len(series):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("jawOpen on real speakers (GRID): video estimate vs predictions from audio")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
