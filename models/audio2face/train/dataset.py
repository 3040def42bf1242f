"""The packed corpus (one .npz per split) as utterances with features, and random training crops.

The corpus holds audio and labels; the features of one kind are computed once per split and kept
beside it (`<split>.<kind>.npz`, remade when the split changes).
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.devices import fresh_processes
from models.audio import from_pcm16
from tqdm import tqdm

from ..data.augment import non_speech
from ..data.build import label_utterance
from ..data.visemes import EMOTIONS, MOUTH_CHANNELS, UPPER_FACE_CHANNELS, Phone
from ..features import SAMPLE_RATE, Features
from ..kinds import make_features


@dataclass
class Utterance:
    id: str
    feats: np.ndarray  # [T, D] float32
    targets: np.ndarray  # [ceil(T/stride), 52]
    visemes: np.ndarray  # [ceil(T/stride)]
    emotion: int


def _split_path(data_dir: Path, split: str) -> Path:
    path = Path(data_dir) / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `avatar-agent prepare-data --out {data_dir}` first")
    return path


_worker_features: Features | None = None


def _init_worker(kind: str) -> None:
    global _worker_features
    _worker_features = make_features(kind, device="cpu", threads=1)


def _featurize(pcm16: np.ndarray) -> np.ndarray:
    return _worker_features(from_pcm16(pcm16)).astype(np.float16)


def split_features(data_dir: Path, split: str, kind: str, workers: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Features of every utterance of a split, concatenated, and their offsets; cached beside the split."""
    path = _split_path(data_dir, split)
    source = hashlib.sha256(path.read_bytes()).hexdigest()
    cache = path.with_name(f"{split}.{kind}.npz")
    if cache.exists():
        with np.load(cache) as c:
            if str(c["source"]) == source:
                return c["feats"], c["offsets"]
    with np.load(path) as z:
        audio, offsets = z["audio"], z["audio_offsets"]
    clips = [audio[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(kind,), mp_context=fresh_processes()) as pool:
        feats = list(tqdm(pool.map(_featurize, clips, chunksize=8), total=len(clips), desc=f"{kind} features ({split})", unit="utt"))
    dim = feats[0].shape[1] if feats else 0
    packed = np.concatenate(feats) if feats else np.zeros((0, dim), np.float16)
    feat_offsets = np.cumsum([0] + [len(f) for f in feats])
    np.savez(cache, feats=packed, offsets=feat_offsets, source=source)
    return packed, feat_offsets


def load_split(data_dir: Path, split: str, kind: str, stride: int, workers: int = 2) -> list[Utterance]:
    feats, fo = split_features(data_dir, split, kind, workers)
    with np.load(_split_path(data_dir, split)) as z:
        to, ids, emotions = z["target_offsets"], z["ids"], z["emotions"]
        targets, visemes = z["targets"].astype(np.float32), z["visemes"].astype(np.int64)
    return [_aligned(str(ids[i]), feats[fo[i] : fo[i + 1]].astype(np.float32), targets[to[i] : to[i + 1]], visemes[to[i] : to[i + 1]],
                     int(emotions[i]), stride) for i in range(len(to) - 1)]


def _aligned(id: str, feats: np.ndarray, targets: np.ndarray, visemes: np.ndarray, emotion: int, stride: int) -> Utterance:
    """One utterance with as many poses as both its features and its labels cover (they may differ by the last partial frame)."""
    n = min(len(targets), -(-len(feats) // stride))
    return Utterance(id, feats[: n * stride], targets[:n], visemes[:n].astype(np.int64), emotion)


def non_speech_utterances(features: Features, count: int, seed: int = 0) -> list[Utterance]:
    """Clips where nobody speaks, labelled with the mouth at rest (and the clip's emotion): the corpus's sentences
    have at most 0.6 s of silence around them, and without these the model parts the lips in long silences."""
    rng = np.random.default_rng(seed)
    utterances = []
    for i in range(count):
        audio, kind = non_speech(rng, float(rng.uniform(1.0, 4.0)))
        emotion = int(rng.integers(len(EMOTIONS)))
        targets, visemes = label_utterance(audio, [Phone("sil", 0.0, len(audio) / SAMPLE_RATE)], EMOTIONS[emotion], float(rng.uniform(0.5, 1.0)))
        utterances.append(_aligned(f"non-speech-{kind}-{i:03d}", features(audio), targets, visemes, emotion, features.stride))
    return utterances


def channel_weights() -> torch.Tensor:
    """Loss weight per blendshape: the mouth matters most, then the emotional upper face."""
    w = torch.full((52,), 0.1)
    w[torch.as_tensor(UPPER_FACE_CHANNELS)] = 0.5
    w[torch.as_tensor(MOUTH_CHANNELS)] = 1.0
    return w


def onehot(emotions) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.as_tensor(emotions), len(EMOTIONS)).float()


class CropSampler:
    """Batches of fixed-length random crops; short utterances are padded with silence and masked."""

    def __init__(self, utterances: list[Utterance], crop_poses: int, stride: int, silence: np.ndarray, seed: int = 0) -> None:
        self.utterances = utterances
        self.n_out, self.stride, self.silence = crop_poses, stride, silence
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int):
        n_out, stride = self.n_out, self.stride
        feats = np.tile(self.silence, (size, n_out * stride, 1)).astype(np.float32)
        targets = np.zeros((size, n_out, 52), np.float32)
        visemes = np.zeros((size, n_out), np.int64)
        mask = np.zeros((size, n_out), np.float32)
        emotions = np.zeros(size, np.int64)
        for b in range(size):
            u = self.utterances[self.rng.integers(len(self.utterances))]
            span = len(u.targets) - n_out
            o = int(self.rng.integers(0, span + 1)) if span > 0 else 0
            f = u.feats[o * stride : (o + n_out) * stride]
            feats[b, : len(f)] = f
            t = u.targets[o : o + n_out]
            targets[b, : len(t)] = t
            visemes[b, : len(t)] = u.visemes[o : o + n_out]
            mask[b, : len(t)] = 1.0
            emotions[b] = u.emotion
        return (torch.from_numpy(feats), onehot(emotions), torch.from_numpy(targets), torch.from_numpy(visemes), torch.from_numpy(mask))
