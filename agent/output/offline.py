"""Offline rendering: speech (a WAV file, or text spoken by our voice) -> MP4 with the same avatar.

The same path as a live call (`animate_sentence` -> the avatar output port ->
renderer), paced by the audio clock instead of the wall clock. The process's GL
platform is chosen by the caller (`render.gl.use_gl_backend`).
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import numpy as np
from tqdm import tqdm

from models.audio import read_wav
from ..animate.speech import animate_sentence
from ..avatars.avatar import Avatar
from ..messages import FRAME_SAMPLES, OUTPUT_RATE
from ..render.renderer import make_renderer
from .port import AvatarOutput

log = logging.getLogger(__name__)


def render_clip(avatar: Avatar, face_model, audio: np.ndarray, sample_rate: int, out: Path, settings,
                emotion: str = "neutral", lead_s: float = 0.3, tail_s: float = 0.5, seed: int = 0, progress: bool = True) -> dict:
    """Writes an H.264 + AAC MP4; returns its frame count and duration."""
    import av

    fps = face_model.fps
    port = AvatarOutput(fps=fps, seed=seed)
    speech = animate_sentence(face_model, 1, "", audio, sample_rate, emotion)
    seconds = lead_s + len(audio) / sample_rate + tail_s
    n_frames = int(np.ceil(seconds * fps))
    audio_frames_per_video_frame = OUTPUT_RATE / FRAME_SAMPLES / fps
    renderer = make_renderer(avatar, settings)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    lead_frames = int(lead_s * OUTPUT_RATE / FRAME_SAMPLES)
    pcm_parts: list[np.ndarray] = []
    try:
        with av.open(str(out), "w") as container:
            video = container.add_stream("libx264", rate=fps, options={"crf": "20", "preset": "veryfast"})
            video.width, video.height, video.pix_fmt = settings.width, settings.height, "yuv420p"
            sound = container.add_stream("aac", rate=OUTPUT_RATE, layout="mono")
            frames = range(n_frames)
            for i in tqdm(frames, desc="rendering", unit="frame") if progress else frames:
                # Hand out the audio up to this frame's time, as the audio track does, then pose the face for it.
                while len(pcm_parts) < (i + 1) * audio_frames_per_video_frame:
                    if len(pcm_parts) == lead_frames:
                        port.capture(speech)
                    pcm_parts.append(port.next_audio_frame())
                pose = port.compose()
                frame = av.VideoFrame.from_ndarray(renderer.render(pose.weights, pose.head), format="rgb24")
                frame.pts, frame.time_base = i, Fraction(1, fps)
                container.mux(video.encode(frame))
            container.mux(video.encode())
            pcm = np.concatenate(pcm_parts)[: int(round(seconds * OUTPUT_RATE))]  # the clip, not the last frame's rounding
            step = 1024
            for start in range(0, len(pcm), step):
                chunk = av.AudioFrame.from_ndarray(pcm[None, start : start + step], format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = OUTPUT_RATE, start
                container.mux(sound.encode(chunk))
            container.mux(sound.encode())
    finally:
        renderer.close()
    return {"frames": n_frames, "seconds": len(pcm) / OUTPUT_RATE, "fps": fps, "path": str(out)}


def speech_for(wav: Path | None, text: str | None, voice_factory) -> tuple[np.ndarray, int]:
    if wav is not None:
        return read_wav(wav)
    if not text or not text.strip():
        raise ValueError("give --wav FILE or --text 'something to say'")
    voice = voice_factory()
    return voice.synthesize(text), voice.sample_rate
