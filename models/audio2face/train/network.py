"""A small streaming audio-to-face network on top of the features (`features.py`).

features -> 4 'valid' conv layers -> one frame per pose (50 fps) -> GRU with the emotion one-hot ->
52 ARKit weights and 16 viseme logits. The convolutions' context depends on the feature rate
(`CONTEXTS`); the GRU state is explicit, so feeding a stream chunk by chunk gives exactly the
whole-utterance result for the same features.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn


@dataclass(frozen=True)
class Context:
    """Feature frames the convolutions see around each pose: `left` before it, `right` after it."""

    kernel: int
    layers: int
    left: int
    stride: int  # feature frames per pose

    @property
    def right(self) -> int:
        return self.layers * (self.kernel - 1) - self.left


CONTEXTS = {
    "logmel": Context(kernel=5, layers=4, left=5, stride=2),  # 100 fps: 50 ms history, 110 ms look-ahead
    "whisper": Context(kernel=3, layers=4, left=3, stride=1),  # 50 fps: 60 ms history, 100 ms look-ahead
}


class AudioToFace(nn.Module):
    def __init__(self, kind: str, feature_dim: int, silence: np.ndarray, n_outputs: int = 52, n_visemes: int = 16,
                 n_emotions: int = 5, channels: int = 128, hidden: int = 128) -> None:
        super().__init__()
        self.kind = kind  # the features it hears (`kinds.FEATURE_KINDS`)
        self.context = context = CONTEXTS[kind]
        self.hidden = hidden
        self.feature_dim = feature_dim
        self.register_buffer("feat_mean", torch.zeros(feature_dim))
        self.register_buffer("feat_std", torch.ones(feature_dim))
        self.register_buffer("silence", torch.as_tensor(np.asarray(silence, np.float32)))  # the padding frame
        k = context.kernel
        convs = [nn.Conv1d(feature_dim, channels, k)] + [nn.Conv1d(channels, channels, k) for _ in range(context.layers - 1)]
        self.convs = nn.ModuleList(convs)
        self.act = nn.GELU()
        self.gru = nn.GRU(channels + n_emotions, hidden, batch_first=True)
        self.weights_head = nn.Linear(hidden + channels, n_outputs)
        self.viseme_head = nn.Linear(hidden + channels, n_visemes)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-3))

    def step(self, feats: torch.Tensor, emotion: torch.Tensor, state: torch.Tensor):
        """feats [B, left + stride*m + right, D] (raw features, context included); emotion [B, E]; state [1, B, H].

        Returns weights [B, m, 52], viseme logits [B, m, 16], next state. Weights are
        clipped to 0..1 in eval mode (and so in the ONNX export); training sees them
        unclipped, because a saturated output (a sigmoid stuck at 0) stops learning.
        """
        half = self.context.kernel // 2
        x = ((feats - self.feat_mean) / self.feat_std).transpose(1, 2)
        for i, conv in enumerate(self.convs):
            y = self.act(conv(x))
            # Residual from the centre-aligned slice of the input (valid convs shrink by kernel-1).
            x = y + x[:, :, half : x.shape[2] - half] if i > 0 else y
        x = x[:, :, :: self.context.stride].transpose(1, 2)  # [B, m, C]
        emo = emotion[:, None, :].expand(-1, x.shape[1], -1)
        h, state = self.gru(torch.cat([x, emo], dim=2), state)
        z = torch.cat([h, x], dim=2)
        weights = self.weights_head(z)
        return (weights if self.training else weights.clamp(0.0, 1.0)), self.viseme_head(z), state

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(1, batch, self.hidden)

    def pad(self, feats: torch.Tensor) -> torch.Tensor:
        """Whole utterances [B, T, D] -> padded with silence frames for the context and to whole poses."""
        c, batch = self.context, feats.shape[0]
        extra = (-feats.shape[1]) % c.stride
        sil = self.silence.to(feats.dtype)
        return torch.cat([sil.expand(batch, c.left, -1), feats, sil.expand(batch, c.right + extra, -1)], dim=1)

    def forward(self, feats: torch.Tensor, emotion: torch.Tensor):
        """Whole utterances [B, T, D] -> [B, ceil(T/stride), 52], [B, ceil(T/stride), 16]."""
        weights, visemes, _ = self.step(self.pad(feats), emotion, self.initial_state(feats.shape[0]).to(feats.device))
        return weights, visemes
