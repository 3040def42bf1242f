"""`avatar-agent prepare-data`: synthesise, align, label, augment and pack the corpus.

Deterministic: every random choice is seeded from the voice variant and the
sentence, so the same command gives the same files (the manifest's hashes say so).
"""
from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.devices import fresh_processes
from models.audio import from_pcm16, to_pcm16

from ..features import OUTPUT_FPS, SAMPLE_RATE, log_mel, output_frames
from .augment import augment, perturb_speed
from .corpus import sentences
from models.arkit import emotion_pose

from .visemes import EMOTIONS, Phone, coarticulated_curves, inhale_before_speech, viseme_track
from .voices import Synthesizer, VoiceVariant, default_voices, split_of

SPLITS = ("train", "val", "test")
SPEED_RANGE = (0.88, 1.12)
_worker_synth: Synthesizer | None = None


def seed_for(*parts) -> int:
    """A stable 64-bit seed from any labels (Python's hash() changes between runs)."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "little")


def phone_loudness(audio: np.ndarray, phones: list[Phone]) -> np.ndarray:
    """Per phone, 0..1: its level relative to the loudest phone, over a 30 dB range."""
    db = []
    for p in phones:
        seg = audio[int(p.start * SAMPLE_RATE) : int(p.end * SAMPLE_RATE)].astype(np.float64)
        db.append(10 * np.log10(np.mean(seg**2) + 1e-10) if len(seg) else -100.0)
    db = np.array(db)
    return np.clip((db - db.max() + 30.0) / 30.0, 0.0, 1.0)


def label_utterance(audio: np.ndarray, phones: list[Phone], emotion: str, intensity: float):
    """The face for every output frame of the audio (at OUTPUT_FPS), whatever features the model hears."""
    times = np.arange(output_frames(len(audio))) / OUTPUT_FPS
    mouth = np.maximum(coarticulated_curves(phones, times, phone_loudness(audio, phones)), inhale_before_speech(phones, times))
    targets = np.clip(mouth + intensity * emotion_pose(emotion)[None, :], 0.0, 1.0)
    if not np.isfinite(targets).all():
        raise ValueError("non-finite label curves")
    return targets.astype(np.float32), viseme_track(phones, times).astype(np.int8)


def _init_worker(agent_voice) -> None:
    global _worker_synth
    _worker_synth = Synthesizer(agent_voice)


@dataclass
class Example:
    """One synthesised sentence with its timing and the face it should make."""

    variant: VoiceVariant
    index: int
    text: str
    audio: np.ndarray  # 16 kHz, with random leading/trailing silence
    phones: list[Phone]
    emotion: str
    intensity: float


def synthesize_example(synth: Synthesizer, variant: VoiceVariant, index: int, text: str) -> Example:
    rng = np.random.default_rng(seed_for(variant.name, index))
    audio, phones = synth(variant, text, seed=seed_for(variant.name, index, "voice"))
    lead, tail = rng.uniform(0.0, 0.6, 2)
    audio = np.concatenate([np.zeros(int(lead * SAMPLE_RATE), np.float32), audio, np.zeros(int(tail * SAMPLE_RATE), np.float32)])
    # Engines sometimes time the last pause past the end of the audio.
    duration = len(audio) / SAMPLE_RATE
    shifted = [Phone(p.phone, min(p.start + lead, duration), min(p.end + lead, duration)) for p in phones]
    phones = [Phone("sil", 0.0, lead)] + [p for p in shifted if p.end > p.start]
    phones.append(Phone("sil", phones[-1].end, duration))
    emotion = EMOTIONS[int(rng.integers(len(EMOTIONS)))]
    return Example(variant, index, text, audio, phones, emotion, float(rng.uniform(0.5, 1.0)))


def _make_utterance(job: tuple[VoiceVariant, int, str]) -> list[dict]:
    variant, index, text = job
    try:
        ex = synthesize_example(_worker_synth, variant, index, text)
    except Exception as exc:  # one bad alignment must not sink the whole corpus
        return [{"error": f"{variant.name} #{index}: {exc}"}]
    rng = np.random.default_rng(seed_for(variant.name, index, "augment"))
    audio_hash = hashlib.sha256(ex.audio.tobytes()).hexdigest()[:16]
    records = []
    for aug_name in ("clean", "augmented"):
        if aug_name == "clean":
            speech, phones, audio, details = ex.audio, ex.phones, ex.audio, {}
        else:  # speed and pitch together (a faster, higher or a slower, lower speaker), then room and channel
            speed = float(rng.uniform(*SPEED_RANGE))
            speech, phones = perturb_speed(ex.audio, ex.phones, speed)
            audio, details = augment(speech, rng)
            details = {"speed": round(speed, 3), **details}
        targets, visemes = label_utterance(speech, phones, ex.emotion, ex.intensity)  # phone loudness from the clean speech
        records.append({
            "id": f"{variant.voice}-{seed_for(variant.name) % 10**6:06d}-{index:03d}-{aug_name}",
            "voice": variant.voice, "variant": variant.name, "split": split_of(variant.voice), "text": text,
            "emotion": ex.emotion, "intensity": round(ex.intensity, 3), "augmentation": details, "audio_sha256": audio_hash,
            "seconds": round(len(audio) / SAMPLE_RATE, 3),
            "audio": to_pcm16(audio), "targets": targets.astype(np.float16), "visemes": visemes,
            "phones": [asdict(p) for p in phones],
        })
    return records


def build_jobs(sentences_per_variant: int, voices: list[VoiceVariant] | None = None) -> list[tuple[VoiceVariant, int, str]]:
    texts = sentences()
    jobs = []
    for variant in voices or default_voices():
        rng = np.random.default_rng(seed_for("texts", variant.name))
        for i in sorted(rng.choice(len(texts), size=min(sentences_per_variant, len(texts)), replace=False)):
            jobs.append((variant, int(i), texts[i]))
    return jobs


def pack(records: list[dict], path: Path) -> str:
    """One .npz per split: the 16 kHz audio (16-bit) and the labels, concatenated, plus offsets. Returns its sha256.

    Features are not stored: training computes the ones it uses (log-mel, Whisper encoder) from the audio.
    """
    np.savez(
        path,
        audio=np.concatenate([r["audio"] for r in records]) if records else np.zeros(0, np.int16),
        targets=np.concatenate([r["targets"] for r in records]) if records else np.zeros((0, 52), np.float16),
        visemes=np.concatenate([r["visemes"] for r in records]) if records else np.zeros(0, np.int8),
        audio_offsets=np.cumsum([0] + [len(r["audio"]) for r in records]),
        target_offsets=np.cumsum([0] + [len(r["targets"]) for r in records]),
        emotions=np.array([EMOTIONS.index(r["emotion"]) for r in records], np.int64),
        intensities=np.array([r["intensity"] for r in records], np.float32),
        ids=np.array([r["id"] for r in records]),
    )
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(out_dir: Path, sentences_per_variant: int = 24, workers: int = 2, voices: list[VoiceVariant] | None = None,
          agent_voice=None) -> dict:
    """Builds the corpus; `agent_voice(name, threads, length_scale)` makes the agent's voices the piper and kokoro variants need."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = build_jobs(sentences_per_variant, voices)
    started = time.time()
    records, errors = [], []
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(agent_voice,), mp_context=fresh_processes()) as pool:
        for result in tqdm(pool.map(_make_utterance, jobs, chunksize=4), total=len(jobs), desc="synthesising", unit="utt"):
            for r in result:
                (errors.append(r["error"]) if "error" in r else records.append(r))
    manifest = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds_to_build": round(time.time() - started, 1),
                "sentences_per_variant": sentences_per_variant, "errors": errors, "splits": {}}
    for split in SPLITS:
        chosen = [r for r in records if r["split"] == split]
        digest = pack(chosen, out_dir / f"{split}.npz")
        manifest["splits"][split] = {
            "file": f"{split}.npz", "sha256": digest, "utterances": len(chosen),
            "hours": round(sum(r["seconds"] for r in chosen) / 3600, 3),
            "voices": sorted({r["voice"] for r in chosen}),
        }
    manifest["utterances"] = [{k: v for k, v in r.items() if k not in ("audio", "targets", "visemes")} for r in records]
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1))
    if records:
        plot_example(records[0], out_dir / "example.png")
    return manifest


def plot_example(record: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.arkit import INDEX

    from .visemes import VISEMES

    fig, axes = plt.subplots(3, 1, figsize=(11, 7), sharex=True)
    feats = log_mel(from_pcm16(record["audio"]))
    axes[0].imshow(feats.T, origin="lower", aspect="auto", extent=(0, len(feats) / 100, 0, feats.shape[1]))
    axes[0].set_title(f"{record['variant']}: \"{record['text']}\" ({record['emotion']})")
    axes[0].set_ylabel("mel bin")
    t = np.arange(len(record["targets"])) / 50
    for name in ("jawOpen", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthPressLeft", "mouthRollLower"):
        axes[1].plot(t, record["targets"][:, INDEX[name]].astype(np.float32), label=name)
    axes[1].legend(fontsize=7, ncol=3)
    axes[1].set_ylabel("target weight")
    axes[2].step(t, record["visemes"], where="post")
    axes[2].set_yticks(range(len(VISEMES)), VISEMES, fontsize=6)
    axes[2].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
