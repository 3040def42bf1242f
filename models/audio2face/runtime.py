"""Step 3: drive the face from audio with the exported ONNX model (numpy + onnxruntime + CTranslate2, no torch).

CUDA is used when onnxruntime-gpu (and CTranslate2) see a GPU, the CPU otherwise. animate() does a
whole clip at once; FaceStream takes audio in any chunk sizes and returns poses as soon as the
look-ahead allows (`look_ahead_s`). With log-mel features both give the same poses; with the
Whisper encoder the stream hears each frame in a shorter window (see `encoder.py`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from models.arkit import COUNT

from ..devices import onnx_session
from .features import OUTPUT_FPS, to_model_rate
from .kinds import make_features

log = logging.getLogger(__name__)
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


class ModelMissing(FileNotFoundError):
    pass


class FaceModel:
    def __init__(self, model_dir: Path = WEIGHTS_DIR, device: str = "auto", threads: int = 1, whisper=None) -> None:
        """`whisper`: the process's loaded Whisper tiny.en, for a model that hears through its encoder (else it loads one)."""
        model_dir = Path(model_dir)
        onnx_path, card_path = model_dir / "audio2face.onnx", model_dir / "audio2face.json"
        if not onnx_path.exists() or not card_path.exists():
            raise ModelMissing(f"no trained audio-to-face model in {model_dir} (run `avatar-agent train`)")
        self.card = json.loads(card_path.read_text())
        kind = self.card["features"].get("kind", "logmel")  # format 1 cards: log-mel
        self.features = make_features(kind, device=device, threads=threads, whisper=whisper)
        self.silence = self.features.silence()[None, :]
        self.left, self.right = self.card["context"]["left"], self.card["context"]["right"]
        self.stride = self.card["context"]["stride"]
        self.emotions: list[str] = self.card["emotions"]
        self.state_size = int(self.card["state_size"])
        self.session = onnx_session(onnx_path, threads, device)
        self.provider = self.session.get_providers()[0]
        log.info("audio-to-face model %s on %s, hearing %s features", onnx_path.name, self.provider, kind)

    @property
    def look_ahead_s(self) -> float:
        """How much later audio a streamed pose waits for: the features' own, then the network's."""
        return self.features.look_ahead_s + self.right / (OUTPUT_FPS * self.stride)

    def emotion_vector(self, emotion: str) -> np.ndarray:
        v = np.zeros((1, len(self.emotions)), np.float32)
        v[0, self.emotions.index(emotion if emotion in self.emotions else "neutral")] = 1.0
        return v

    def run(self, feats: np.ndarray, emotion: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        weights, visemes, state = self.session.run(None, {"feats": feats[None].astype(np.float32), "emotion": emotion, "state": state})
        return weights[0], visemes[0], state

    def initial_state(self) -> np.ndarray:
        return np.zeros((1, 1, self.state_size), np.float32)

    def infer(self, audio: np.ndarray, sample_rate: int, emotion: str = "neutral") -> tuple[np.ndarray, np.ndarray]:
        """Whole clip -> poses [ceil(frames / 2), 52] at OUTPUT_FPS (50 fps) and the viseme index of each."""
        feats = self.features(to_model_rate(audio, sample_rate))
        if len(feats) == 0:
            return np.zeros((0, COUNT), np.float32), np.zeros(0, np.int64)
        extra = (-len(feats)) % self.stride
        sil = self.silence
        padded = np.concatenate([np.repeat(sil, self.left, 0), feats, np.repeat(sil, self.right + extra, 0)])
        weights, visemes, _ = self.run(padded, self.emotion_vector(emotion), self.initial_state())
        return weights, visemes.argmax(-1)

    def animate(self, audio: np.ndarray, sample_rate: int, emotion: str = "neutral") -> np.ndarray:
        return self.infer(audio, sample_rate, emotion)[0]


class FaceStream:
    """Streaming inference: push audio chunks, get poses at 50 fps, flush at the end of speech."""

    def __init__(self, model: FaceModel, emotion: str = "neutral") -> None:
        self.model = model
        self.emotion = model.emotion_vector(emotion)
        self._features = model.features.stream()
        self._state = model.initial_state()
        self._frames = np.repeat(model.silence, model.left, 0)

    def _run_available(self) -> np.ndarray:
        m = self.model
        centres = len(self._frames) - m.left - m.right
        centres -= centres % m.stride
        if centres <= 0:
            return np.zeros((0, COUNT), np.float32)
        weights, _, self._state = m.run(self._frames[: m.left + centres + m.right], self.emotion, self._state)
        self._frames = self._frames[centres:]
        return weights

    def push(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        self._frames = np.concatenate([self._frames, self._features.push(to_model_rate(audio, sample_rate))])
        return self._run_available()

    def flush(self) -> np.ndarray:
        """Poses for the remaining audio (as if silence followed); the stream can go on after."""
        m = self.model
        self._frames = np.concatenate([self._frames, self._features.flush()])
        pending = len(self._frames) - m.left
        if pending <= 0:
            return np.zeros((0, COUNT), np.float32)
        extra = (-pending) % m.stride
        self._frames = np.concatenate([self._frames, np.repeat(m.silence, m.right + extra, 0)])
        weights = self._run_available()
        self._frames = self._frames[len(self._frames) - m.left :]
        return weights


def poses_at(poses: np.ndarray, times: np.ndarray) -> np.ndarray:
    """The model's 50 fps poses at any times (seconds), linear in time."""
    src = np.arange(len(poses)) / OUTPUT_FPS
    return np.stack([np.interp(times, src, poses[:, c]) for c in range(poses.shape[1])], axis=1).astype(np.float32)


def resample_poses(poses: np.ndarray, fps: float, n_frames: int | None = None) -> np.ndarray:
    """50 fps poses -> fps; pose i of the result is at i / fps seconds."""
    if len(poses) == 0:
        return np.zeros((n_frames or 0, COUNT), np.float32)
    n = n_frames if n_frames is not None else int(np.ceil(len(poses) * fps / OUTPUT_FPS))
    return poses_at(poses, np.arange(n) / fps)
