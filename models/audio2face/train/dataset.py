"""The packed corpus (one .npz per split) as utterances and random training crops."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data.visemes import EMOTIONS, MOUTH_CHANNELS, UPPER_FACE_CHANNELS
from ..features import OUTPUT_STRIDE, silence_frame


@dataclass
class Utterance:
    id: str
    feats: np.ndarray  # [T, 80] float32
    targets: np.ndarray  # [ceil(T/2), 52]
    visemes: np.ndarray  # [ceil(T/2)]
    emotion: int


def load_split(data_dir: Path, split: str) -> list[Utterance]:
    path = Path(data_dir) / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `avatar-agent prepare-data --out {data_dir}` first")
    z = np.load(path)
    fo, to = z["feat_offsets"], z["target_offsets"]
    feats, targets, visemes = z["feats"].astype(np.float32), z["targets"].astype(np.float32), z["visemes"].astype(np.int64)
    return [
        Utterance(str(z["ids"][i]), feats[fo[i] : fo[i + 1]], targets[to[i] : to[i + 1]], visemes[to[i] : to[i + 1]], int(z["emotions"][i]))
        for i in range(len(fo) - 1)
    ]


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

    def __init__(self, utterances: list[Utterance], crop_frames: int, seed: int = 0) -> None:
        self.utterances = utterances
        self.crop = crop_frames - crop_frames % OUTPUT_STRIDE
        self.rng = np.random.default_rng(seed)

    def batch(self, size: int):
        n_out = self.crop // OUTPUT_STRIDE
        feats = np.tile(silence_frame(), (size, self.crop, 1))
        targets = np.zeros((size, n_out, 52), np.float32)
        visemes = np.zeros((size, n_out), np.int64)
        mask = np.zeros((size, n_out), np.float32)
        emotions = np.zeros(size, np.int64)
        for b in range(size):
            u = self.utterances[self.rng.integers(len(self.utterances))]
            span = len(u.feats) - self.crop
            start = int(self.rng.integers(0, span // OUTPUT_STRIDE + 1)) * OUTPUT_STRIDE if span > 0 else 0
            f = u.feats[start : start + self.crop]
            feats[b, : len(f)] = f
            o = start // OUTPUT_STRIDE
            t = u.targets[o : o + n_out]
            targets[b, : len(t)] = t
            visemes[b, : len(t)] = u.visemes[o : o + n_out]
            mask[b, : len(t)] = 1.0
            emotions[b] = u.emotion
        return (torch.from_numpy(feats), onehot(emotions), torch.from_numpy(targets), torch.from_numpy(visemes), torch.from_numpy(mask))
