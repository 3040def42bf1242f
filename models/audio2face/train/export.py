"""Export the trained network to ONNX with an explicit streaming signature.

Inputs: feats [1, left + stride*m + right, D] raw features of the card's kind, emotion [1, 5], state [1, 1, H].
Outputs: weights [1, m, 52], visemes [1, m, 16], next state.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from models.arkit import ARKIT_NAMES

from ..data.visemes import EMOTIONS, VISEMES
from ..features import OUTPUT_FPS, SAMPLE_RATE
from .network import AudioToFace


class _Streaming(torch.nn.Module):
    def __init__(self, model: AudioToFace) -> None:
        super().__init__()
        self.model = model

    def forward(self, feats, emotion, state):
        return self.model.step(feats, emotion, state)


def export_onnx(model: AudioToFace, out_dir: Path, training_summary: dict | None = None) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval()
    onnx_path = out_dir / "audio2face.onnx"
    c = model.context
    feats = model.silence + torch.randn(1, c.left + c.stride * 10 + c.right, model.feature_dim)
    emotion = torch.zeros(1, len(EMOTIONS))
    state = model.initial_state(1)
    streaming = _Streaming(model).eval()  # a new wrapper is in training mode, and export restores that mode afterwards
    torch.onnx.export(
        streaming, (feats, emotion, state), str(onnx_path),
        input_names=["feats", "emotion", "state"], output_names=["weights", "visemes", "next_state"],
        dynamic_axes={"feats": {1: "frames"}, "weights": {1: "poses"}, "visemes": {1: "poses"}},
        opset_version=17, dynamo=False,
    )
    card = {
        "format": 2,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "features": {"kind": model.kind, "dim": model.feature_dim, "sample_rate": SAMPLE_RATE},
        "context": {"left": c.left, "right": c.right, "stride": c.stride, "output_fps": OUTPUT_FPS},
        "state_size": model.hidden,
        "outputs": list(ARKIT_NAMES),
        "visemes": list(VISEMES),
        "emotions": list(EMOTIONS),
        "training": training_summary or {},
    }
    (out_dir / "audio2face.json").write_text(json.dumps(card, indent=1))
    return onnx_path
