"""Real speakers' video curves as the validation that picks the checkpoint, when they are at hand.

On the synthetic validation voices the network keeps improving long after its lip-sync on real speakers
has peaked: past that point it learns detail of our rule-made labels that real mouths do not follow
(measured: GRID jawOpen r 0.65 at step 600, 0.63 at step 2000, while the synthetic error still fell).
So `train --real-speakers DIR` keeps the checkpoint that correlates best with real video, and reports a
leave-one-clip-out figure: each clip scored at the step chosen on the other clips alone, which is what
the selection is worth on a speaker it did not see.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from models.arkit import INDEX

from ..evaluate import load_grid, mouth_openness, pearson
from ..features import Features, to_model_rate
from ..runtime import poses_at
from .dataset import onehot


class RealSpeakerCheck:
    def __init__(self, clips_dir: Path, features: Features) -> None:
        self.clips = [(features(to_model_rate(c["audio"], c["rate"])), c["times"], c["curves"]) for c in load_grid(Path(clips_dir))]
        if not self.clips:
            raise ValueError(f"{clips_dir}: no real-speaker clips")

    @torch.no_grad()
    def scores(self, model) -> tuple[np.ndarray, np.ndarray]:
        """Per clip: jawOpen r and mouth-openness r against the video."""
        was_training = model.training
        model.eval()
        jaw, openness = [], []
        for feats, times, truth in self.clips:
            weights, _ = model(torch.from_numpy(feats)[None], onehot([0]))
            pred = poses_at(weights[0].numpy(), times)
            jaw.append(pearson(pred[:, INDEX["jawOpen"]], truth[:, INDEX["jawOpen"]]))
            openness.append(pearson(mouth_openness(pred), mouth_openness(truth)))
        model.train(was_training)
        return np.array(jaw), np.array(openness)


def selection_score(jaw: np.ndarray, openness: np.ndarray) -> float:
    return float(np.mean((jaw + openness) / 2))


def leave_one_clip_out(jaw_history: np.ndarray, openness_history: np.ndarray) -> dict:
    """[evaluations, clips] histories -> each clip's scores at the evaluation the other clips chose."""
    combined = (jaw_history + openness_history) / 2
    n = combined.shape[1]
    chosen = [int(np.argmax(np.delete(combined, c, axis=1).mean(axis=1))) for c in range(n)]
    jaw = np.array([jaw_history[e, c] for c, e in enumerate(chosen)])
    openness = np.array([openness_history[e, c] for c, e in enumerate(chosen)])
    return {"jawOpen_r_mean": float(jaw.mean()), "jawOpen_r_median": float(np.median(jaw)),
            "openness_r_mean": float(openness.mean()), "openness_r_median": float(np.median(openness))}
