"""`avatar-agent train`: fit the network on the corpus, keep the best checkpoint by validation, plot, export."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..data.visemes import MOUTH_CHANNELS
from .dataset import CropSampler, Utterance, channel_weights, load_split, onehot
from .network import AudioToFace


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


def train(data_dir: Path, out_dir: Path, steps: int = 3000, batch_size: int = 24, crop_frames: int = 400,
          lr: float = 2e-3, eval_every: int = 200, threads: int = 1, seed: int = 0) -> dict:
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    train_set, val_set = load_split(data_dir, "train"), load_split(data_dir, "val")
    if not train_set or not val_set:
        raise ValueError(f"{data_dir}: the train and val splits must not be empty")
    model = AudioToFace()
    all_feats = np.concatenate([u.feats for u in train_set])
    model.set_normalisation(torch.from_numpy(all_feats.mean(0)), torch.from_numpy(all_feats.std(0)))
    sampler = CropSampler(train_set, crop_frames, seed)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps, pct_start=max(0.05, 2.0 / steps))
    weights = channel_weights()
    history = {"step": [], "train_loss": [], "val_step": [], "val_mouth_mae": [], "val_viseme_accuracy": []}
    best = {"mouth_mae": float("inf")}
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
            if metrics["mouth_mae"] < best["mouth_mae"]:
                best = {**metrics, "step": step}
                torch.save(model.state_dict(), out_dir / "checkpoint.pt")
            bar.set_postfix(loss=f"{running:.4f}", val_mae=f"{metrics['mouth_mae']:.4f}", val_vis=f"{metrics['viseme_accuracy']:.2f}")
    model.load_state_dict(torch.load(out_dir / "checkpoint.pt"))
    summary = {"best": best, "steps": steps, "batch_size": batch_size, "crop_frames": crop_frames, "lr": lr, "seed": seed,
               "threads": threads, "minutes": round((time.time() - started) / 60, 2), "train_utterances": len(train_set),
               "val_utterances": len(val_set), "parameters": sum(p.numel() for p in model.parameters())}
    (out_dir / "history.json").write_text(json.dumps(history))
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    plot_history(history, out_dir / "loss.png")
    test_set = load_split(data_dir, "test")
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
    c.set_ylabel("accuracy")
    b.legend(loc="upper left")
    c.legend(loc="upper right")
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
