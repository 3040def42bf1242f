"""Offline rendering: speech (a WAV file, or text spoken by our voice) -> MP4 with the same avatar.

The same stages as a live call (lip-sync model, expression, idle life,
renderer), paced by the audio clock instead of the wall clock.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..animate.expression import FaceComposer
from ..animate.lipsync import ModelLipSync
from ..audio import read_wav, resample
from .avatar import Avatar
from .renderer import make_renderer, use_gl_backend

log = logging.getLogger(__name__)
AUDIO_RATE = 48000


def render_clip(avatar: Avatar, lipsync: ModelLipSync, audio: np.ndarray, sample_rate: int, out: Path,
                settings, emotion: str = "neutral", lead_s: float = 0.3, tail_s: float = 0.5, seed: int = 0, progress: bool = True) -> dict:
    """Writes an H.264 + AAC MP4; returns its frame count and duration."""
    import av

    audio = resample(audio, sample_rate, AUDIO_RATE)
    audio = np.concatenate([np.zeros(int(lead_s * AUDIO_RATE), np.float32), audio, np.zeros(int(tail_s * AUDIO_RATE), np.float32)])
    fps = lipsync.fps
    n_frames = int(np.ceil(len(audio) / AUDIO_RATE * fps))
    speech = lipsync(audio, AUDIO_RATE, emotion)
    speech = np.concatenate([speech, np.zeros((max(0, n_frames - len(speech)), speech.shape[1]), np.float32)])
    face = FaceComposer(seed)
    renderer = make_renderer(avatar, settings, use_gl_backend(settings.backend))
    width, height = settings.width, settings.height
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(out), "w") as container:
            video = container.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast"})
            video.width, video.height, video.pix_fmt = width, height, "yuv420p"
            sound = container.add_stream("aac", rate=AUDIO_RATE, layout="mono")
            frames = range(n_frames)
            for i in tqdm(frames, desc="rendering", unit="frame") if progress else frames:
                weights, head = face.compose(speech[i], True, i / fps)
                frame = av.VideoFrame.from_ndarray(renderer.render(weights, head), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode())
            pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
            step = 1024
            for start in range(0, len(pcm), step):
                chunk = av.AudioFrame.from_ndarray(pcm[None, start : start + step], format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    finally:
        renderer.close()
    return {"frames": n_frames, "seconds": len(audio) / AUDIO_RATE, "fps": fps, "path": str(out)}


def speech_for(wav: Path | None, text: str | None, voice_factory) -> tuple[np.ndarray, int]:
    if wav is not None:
        return read_wav(wav)
    if not text or not text.strip():
        raise ValueError("give --wav FILE or --text 'something to say'")
    voice = voice_factory()
    return voice.synthesize(text), voice.sample_rate
