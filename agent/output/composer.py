"""Emotion offsets for the face, and the idle life that keeps the avatar from freezing."""
from __future__ import annotations

import math

import numpy as np

from models.arkit import COUNT, INDEX, emotion_pose

# Channels that carry expression rather than articulation: they change slowly.
EXPRESSION_CHANNELS = np.array(
    [i for name, i in INDEX.items() if name.startswith(("brow", "cheek", "eyeWide", "eyeSquint", "mouthSmile", "mouthFrown", "noseSneer"))]
)


class IdleMotion:
    """Blinks every few seconds, small eye saccades, breathing and slow head sway.

    Deterministic for a given seed so tests and offline renders repeat.
    """

    BLINK_S = 0.16

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)
        self._next_blink = 1.0 + self._rng.uniform(0, 2)
        self._blink_start = -10.0
        self._next_saccade = 0.5
        self._gaze = np.zeros(2, np.float32)

    def step(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Weights to add and head rotation (pitch, yaw, roll in radians) at time t seconds."""
        w = np.zeros(COUNT, np.float32)
        if t >= self._next_blink:
            self._blink_start = t
            self._next_blink = t + self._rng.uniform(2.0, 5.5)
        phase = (t - self._blink_start) / self.BLINK_S
        if 0.0 <= phase <= 1.0:
            blink = math.sin(math.pi * phase)
            w[INDEX["eyeBlinkLeft"]] = w[INDEX["eyeBlinkRight"]] = blink
        if t >= self._next_saccade:
            self._gaze = self._rng.normal(0, 0.12, 2).astype(np.float32)
            self._next_saccade = t + self._rng.uniform(0.6, 2.5)
        x, y = self._gaze
        w[INDEX["eyeLookOutLeft" if x < 0 else "eyeLookInLeft"]] = abs(x)
        w[INDEX["eyeLookInRight" if x < 0 else "eyeLookOutRight"]] = abs(x)
        for side in ("Left", "Right"):
            w[INDEX[f"eyeLookUp{side}" if y > 0 else f"eyeLookDown{side}"]] = abs(y)
        breath = 0.5 + 0.5 * math.sin(2 * math.pi * t / 4.0)
        head = np.array(
            [
                0.02 * math.sin(2 * math.pi * t / 7.3) + 0.008 * breath,
                0.035 * math.sin(2 * math.pi * t / 11.0 + 1.0),
                0.012 * math.sin(2 * math.pi * t / 9.1 + 2.0),
            ],
            np.float32,
        )
        return w, head


class FaceComposer:
    """The final pose of each video frame.

    The speech pose (lip-sync plus the expression the model gives the reply's
    emotion) when speaking, a friendly rest expression when quiet; expression
    channels are eased so emotions blend in and out instead of jumping; idle
    life (blinks, gaze, breathing, head sway) goes on top.
    """

    EASE = 0.12  # per frame at 25 fps: about 0.3 s to settle

    def __init__(self, seed: int = 0, rest_emotion: str = "neutral") -> None:
        self.idle = IdleMotion(seed)
        self.rest = emotion_pose(rest_emotion)
        self._expression = self.rest[EXPRESSION_CHANNELS].copy()

    def compose(self, speech_pose: np.ndarray, speaking: bool, t: float) -> tuple[np.ndarray, np.ndarray]:
        pose = np.array(speech_pose if speaking else self.rest, np.float32)
        self._expression += self.EASE * (pose[EXPRESSION_CHANNELS] - self._expression)
        pose[EXPRESSION_CHANNELS] = self._expression
        idle, head = self.idle.step(t)
        return np.clip(pose + idle, 0.0, 1.0), head
