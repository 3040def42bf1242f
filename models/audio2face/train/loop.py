"""`avatar-agent train`: fit the network on the corpus, keep the best checkpoint by validation, plot, export."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.visemes import MOUTH_CHANNELS
from .dataset import CropSampler, Utterance, channel_weights, load_split, non_speech_utterances, onehot
from ..kinds import FEATURE_KINDS, make_features
from .network import AudioToFace
from .real_speakers import RealSpeakerCheck, leave_one_clip_out, selection_score


def losses(model, batch, weights_per_channel):
    feats, emotion, targets, visemes, mask = batch
    pred, logits = model(feats, emotion)
    m = mask[..., None]
    err = pred - targets
    # L1 alone predicts the median, which is 0 for brief shapes such as lip closures; the squared term keeps them.
    l1 = ((err.abs() + 4.0 * err**2) * weights_per_channel * m).sum() / (m.sum() * weights_per_channel.sum())
    vel_pred, vel_true = pred[:, 1:] - pred[:, :-1], targets[:, 1:] - targets[:, :-1]
    mv = (mask[:, 1:] * mask[:, :-1])[..., None]
    velocity = ((vel_pred - vel_true).abs() * weights_per_channel * mv).sum() / (mv.sum() * weights_per_channel.sum())
    ce = (torch.nn.functional.cross_entropy(logits.transpose(1, 2), visemes, reduction="none") * mask).sum() / mask.sum()
    return l1 + 2.0 * velocity + 0.05 * ce, {"pose": l1.item(), "velocity": velocity.item(), "viseme_ce": ce.item()}


@torch.no_grad()
def predict(model: AudioToFace, utterance: Utterance) -> tuple[np.ndarray, np.ndarray]:
    weights, logits = model(torch.from_numpy(utterance.feats)[None], onehot([utterance.emotion]))
    return weights[0].numpy(), logits[0].argmax(-1).numpy()


@torch.no_grad()
def evaluate_split(model: AudioToFace, utterances: list[Utterance]) -> dict:
    model.eval()
    abs_err, correct, total = [], 0, 0
    for u in utterances:
        pred, vis = predict(model, u)
        abs_err.append(np.abs(pred[:, MOUTH_CHANNELS] - u.targets[:, MOUTH_CHANNELS]).mean(axis=1))
        correct += int((vis == u.visemes).sum())
        total += len(vis)
    model.train()
    return {"mouth_mae": float(np.concatenate(abs_err).mean()), "viseme_accuracy": correct / max(total, 1)}


NON_SPEECH_SHARE = 20  # one clip where nobody speaks per this many utterances


def new_model(kind: str, features=None) -> AudioToFace:
    """An untrained network for one kind of features (`features`: that kind's extractor, made here if not given)."""
    if kind not in FEATURE_KINDS:
        raise ValueError(f"unknown feature kind {kind!r}: use one of {', '.join(FEATURE_KINDS)}")
    features = features or make_features(kind)
    return AudioToFace(kind, features.dim, features.silence())


def train(data_dir: Path, out_dir: Path, features: str = "whisper", steps: int = 3000, batch_size: int = 24, crop_poses: int = 200,
          lr: float = 2e-3, eval_every: int = 200, threads: int = 1, seed: int = 0, workers: int = 2,
          real_speakers: Path | None = None) -> dict:
    """`real_speakers`: clips with video-estimated curves (GRID layout); when given they pick the checkpoint (see real_speakers.py)."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    extractor = make_features(features)
    model = new_model(features, extractor)
    real = RealSpeakerCheck(real_speakers, extractor) if real_speakers else None
    stride = model.context.stride
    train_set, val_set = (load_split(data_dir, split, features, stride, workers) for split in ("train", "val"))
    if not train_set or not val_set:
        raise ValueError(f"{data_dir}: the train and val splits must not be empty")
    train_set += non_speech_utterances(extractor, max(4, len(train_set) // NON_SPEECH_SHARE), seed)
    all_feats = np.concatenate([u.feats for u in train_set])
    model.set_normalisation(torch.from_numpy(all_feats.mean(0)), torch.from_numpy(all_feats.std(0)))
    del all_feats
    sampler = CropSampler(train_set, crop_poses, stride, model.silence.numpy(), seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=max(0.05, 2.0 / steps))
    weights = channel_weights()
    history = {"step": [], "train_loss": [], "val_step": [], "val_mouth_mae": [], "val_viseme_accuracy": [],
               "real_jawOpen_r": [], "real_openness_r": []}
    best, best_score = {}, -float("inf")
    started = time.time()
    bar = tqdm(range(1, steps + 1), desc="training", unit="step")
    running = None
    for step in bar:
        loss, parts = losses(model, sampler.batch(batch_size), weights)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        schedule.step()
        running = loss.item() if running is None else 0.95 * running + 0.05 * loss.item()
        history["step"].append(step)
        history["train_loss"].append(loss.item())
        if step % eval_every == 0 or step == steps:
            metrics = evaluate_split(model, val_set)
            history["val_step"].append(step)
            history["val_mouth_mae"].append(metrics["mouth_mae"])
            history["val_viseme_accuracy"].append(metrics["viseme_accuracy"])
            score = -metrics["mouth_mae"]
            if real is not None:
                jaw, openness = real.scores(model)
                history["real_jawOpen_r"].append(jaw.tolist())
                history["real_openness_r"].append(openness.tolist())
                score = selection_score(jaw, openness)
                metrics = {**metrics, "real_jawOpen_r_mean": float(jaw.mean()), "real_openness_r_mean": float(openness.mean())}
            if score > best_score:
                best, best_score = {**metrics, "step": step}, score
                torch.save(model.state_dict(), out_dir / "checkpoint.pt")
            bar.set_postfix(loss=f"{running:.4f}", val_mae=f"{metrics['mouth_mae']:.4f}", val_vis=f"{metrics['viseme_accuracy']:.2f}",
                            **({"real_jaw_r": f"{metrics['real_jawOpen_r_mean']:.3f}"} if real else {}))
    model.load_state_dict(torch.load(out_dir / "checkpoint.pt"))
    selection = {"selected_on": "validation voices (mouth MAE)"}
    if real is not None:
        selection = {"selected_on": f"real speakers ({len(real.clips)} clips: mean of jawOpen r and openness r)",
                     "leave_one_clip_out": leave_one_clip_out(np.array(history["real_jawOpen_r"]), np.array(history["real_openness_r"]))}
    summary = {"best": best, **selection, "features": features, "steps": steps, "batch_size": batch_size, "crop_poses": crop_poses, "lr": lr, "seed": seed,
               "threads": threads, "minutes": round((time.time() - started) / 60, 2), "train_utterances": len(train_set),
               "val_utterances": len(val_set), "parameters": sum(p.numel() for p in model.parameters())}
    (out_dir / "history.json").write_text(json.dumps(history))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    plot_history(history, out_dir / "loss.png")
    test_set = load_split(data_dir, "test", features, stride, workers)
    if test_set:
        plot_prediction(model, test_set[0], out_dir / "prediction.png")
    return summary


def plot_history(history: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    loss = np.array(history["train_loss"])
    k = max(1, len(loss) // 100)
    a.plot(history["step"], loss, alpha=0.3, label="train loss")
    a.plot(history["step"][k - 1 :], np.convolve(loss, np.ones(k) / k, "valid"), label=f"train loss ({k}-step mean)")
    a.set_yscale("log")
    a.set_xlabel("step")
    a.legend()
    b.plot(history["val_step"], history["val_mouth_mae"], "o-", label="val mouth MAE")
    b.set_xlabel("step")
    b.set_ylabel("MAE")
    c = b.twinx()
    c.plot(history["val_step"], history["val_viseme_accuracy"], "s-", color="tab:green", label="val viseme accuracy")
    if history.get("real_jawOpen_r"):
        c.plot(history["val_step"], np.mean(history["real_jawOpen_r"], axis=1), "^-", color="tab:red", label="real speakers: jawOpen r")
    c.set_ylabel("accuracy / correlation")
    b.legend(loc="center left")
    c.legend(loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_prediction(model: AudioToFace, utterance: Utterance, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from models.arkit import INDEX

    pred, _ = predict(model, utterance)
    names = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthPressLeft", "mouthRollLower")
    fig, axes = plt.subplots(len(names), 1, figsize=(10, 9), sharex=True)
    t = np.arange(len(pred)) / 50
    for ax, name in zip(axes, names):
        ax.plot(t, utterance.targets[:, INDEX[name]], label="target", color="black")
        ax.plot(t, pred[:, INDEX[name]], label="predicted", color="tab:red")
        ax.set_ylabel(name, fontsize=8)
    axes[0].set_title(f"held-out voice: {utterance.id}")
    axes[0].legend()
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
