"""Real speakers' video curves as the validation that picks the checkpoint, when they are at hand.

On the synthetic validation voices the network keeps improving long after its lip-sync on real speakers
has peaked: past that point it learns detail of our rule-made labels that real mouths do not follow
(measured: GRID jawOpen r 0.675 at step 600, 0.627 at step 4,000, while the synthetic error fell from 0.018 to 0.013).
So `train --real-speakers DIR` keeps the checkpoint that correlates best with real video, and reports a
leave-one-clip-out figure: each clip scored at the step chosen on the other clips alone, which is what
the selection is worth on a speaker it did not see.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..evaluate import clip_scores, load_grid
from ..features import Features, to_model_rate
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
            jaw_r, openness_r = clip_scores(weights[0].numpy(), times, truth)
            jaw.append(jaw_r)
            openness.append(openness_r)
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
