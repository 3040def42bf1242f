"""A small streaming audio-to-face network.

log-mel (100 fps) -> 4 conv layers (110 ms look-ahead, 50 ms history) -> every
second frame (50 fps) -> GRU with the emotion one-hot -> 52 ARKit weights and
16 viseme logits. The convolutions are 'valid' and the GRU state is explicit,
so feeding a stream chunk by chunk gives exactly the whole-utterance result.
"""
from __future__ import annotations

import torch
from torch import nn

from ..features import N_MELS, OUTPUT_STRIDE, silence_frame

KERNEL = 5
LAYERS = 4
RECEPTIVE = LAYERS * (KERNEL - 1) + 1  # 17 feature frames
LEFT = 5
RIGHT = RECEPTIVE - 1 - LEFT  # 11 frames = 110 ms look-ahead


class AudioToFace(nn.Module):
    def __init__(self, n_outputs: int = 52, n_visemes: int = 16, n_emotions: int = 5, channels: int = 128, hidden: int = 128) -> None:
        super().__init__()
        self.hidden = hidden
        self.register_buffer("feat_mean", torch.zeros(N_MELS))
        self.register_buffer("feat_std", torch.ones(N_MELS))
        convs = [nn.Conv1d(N_MELS, channels, KERNEL)] + [nn.Conv1d(channels, channels, KERNEL) for _ in range(LAYERS - 1)]
        self.convs = nn.ModuleList(convs)
        self.act = nn.GELU()
        self.gru = nn.GRU(channels + n_emotions, hidden, batch_first=True)
        self.weights_head = nn.Linear(hidden + channels, n_outputs)
        self.viseme_head = nn.Linear(hidden + channels, n_visemes)

    def set_normalisation(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.feat_mean.copy_(mean)
        self.feat_std.copy_(std.clamp_min(1e-3))

    def step(self, feats: torch.Tensor, emotion: torch.Tensor, state: torch.Tensor):
        """feats [B, LEFT + 2m + RIGHT, 80] (raw log-mel, context included); emotion [B, E]; state [1, B, H].

        Returns weights [B, m, 52], viseme logits [B, m, 16], next state. Weights are
        clipped to 0..1 in eval mode (and so in the ONNX export); training sees them
        unclipped, because a saturated output (a sigmoid stuck at 0) stops learning.
        """
        x = ((feats - self.feat_mean) / self.feat_std).transpose(1, 2)
        for i, conv in enumerate(self.convs):
            y = self.act(conv(x))
            # Residual from the centre-aligned slice of the input (valid convs shrink by KERNEL-1).
            x = y + x[:, :, KERNEL // 2 : x.shape[2] - KERNEL // 2] if i > 0 else y
        x = x[:, :, ::OUTPUT_STRIDE].transpose(1, 2)  # [B, m, C]
        emo = emotion[:, None, :].expand(-1, x.shape[1], -1)
        h, state = self.gru(torch.cat([x, emo], dim=2), state)
        z = torch.cat([h, x], dim=2)
        weights = self.weights_head(z)
        return (weights if self.training else weights.clamp(0.0, 1.0)), self.viseme_head(z), state

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        return torch.zeros(1, batch, self.hidden)

    def forward(self, feats: torch.Tensor, emotion: torch.Tensor):
        """Whole utterances [B, T, 80] -> [B, ceil(T/2), 52], [B, ceil(T/2), 16]."""
        batch, frames = feats.shape[0], feats.shape[1]
        sil = torch.as_tensor(silence_frame(), dtype=feats.dtype, device=feats.device)
        extra = frames % OUTPUT_STRIDE  # pad to an even number of centres
        pad_right = RIGHT + (OUTPUT_STRIDE - extra if extra else 0)
        padded = torch.cat([sil.expand(batch, LEFT, -1), feats, sil.expand(batch, pad_right, -1)], dim=1)
        weights, visemes, _ = self.step(padded, emotion, self.initial_state(batch).to(feats.device))
        return weights, visemes
