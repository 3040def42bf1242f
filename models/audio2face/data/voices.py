"""Speech engines that give us audio plus phone timings.

flite reports its own phone end times (`-psdur`). Piper, Kokoro and espeak-ng do
not, so their speech is force-aligned to the text with pocketsphinx. Kokoro's 28
English voices are natural, many-speaker speech. Every voice has
speed and pitch variants; the voice name (not the variant) is the unit of the
train/val/test split, so test voices are never heard in training.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.audio import read_wav

from ..features import SAMPLE_RATE, to_model_rate
from .align import Aligner
from .visemes import Phone


@dataclass(frozen=True)
class VoiceVariant:
    engine: str  # flite | espeak | piper | kokoro
    voice: str  # split unit, e.g. "flite-slt"
    params: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def name(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.voice}[{extra}]"


def default_voices() -> list[VoiceVariant]:
    variants = []
    for voice in ("kal16", "awb", "rms", "slt", "kal"):
        for stretch, f0 in ((1.0, 0), (0.85, 15), (1.2, -15)):
            variants.append(VoiceVariant("flite", f"flite-{voice}", {"voice": voice, "stretch": stretch, "f0_shift": f0}))
    for variant in ("m1", "m3", "m7", "f1", "f2", "f4", "klatt", "croak"):
        for speed, pitch in ((150, 50), (180, 35), (130, 65)):
            variants.append(VoiceVariant("espeak", f"espeak-{variant}", {"variant": variant, "speed": speed, "pitch": pitch}))
    for scale in (1.0, 0.85, 1.2):
        variants.append(VoiceVariant("piper", "piper-joe", {"length_scale": scale}))
    for voice in KOKORO_VOICES:
        variants.append(VoiceVariant("kokoro", f"kokoro-{voice}", {"voice": voice, "length_scale": 1.0}))
    return variants


# Kokoro's English voices (kokoro-js 1.2.1): American and British, women and men.
KOKORO_VOICES = (
    "af_alloy", "af_aoede", "af_bella", "af_heart", "af_jessica", "af_kore", "af_nicole", "af_nova", "af_river", "af_sarah", "af_sky",
    "am_adam", "am_echo", "am_eric", "am_fenrir", "am_liam", "am_michael", "am_onyx", "am_puck", "am_santa",
    "bf_alice", "bf_emma", "bf_isabella", "bf_lily", "bm_daniel", "bm_fable", "bm_george", "bm_lewis",
)


# The split: voices never seen in training measure generalisation.
TEST_VOICES = ("flite-slt", "espeak-f2", "espeak-croak", "kokoro-af_sky", "kokoro-am_onyx", "kokoro-bm_lewis")
VAL_VOICES = ("flite-rms", "espeak-m7", "kokoro-bf_lily", "kokoro-am_puck")


def split_of(voice: str) -> str:
    return "test" if voice in TEST_VOICES else "val" if voice in VAL_VOICES else "train"


class Synthesizer:
    """Synthesises one sentence with one voice variant: (16 kHz audio, phones).

    `agent_voice(name, threads, length_scale)` makes the agent's voices (`agent.speak.voices.make_voice`);
    the caller hands it in, so this package does not depend on the agent.
    """

    def __init__(self, agent_voice=None) -> None:
        self._agent_voice = agent_voice
        for tool in ("flite", "espeak-ng"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed (apt-get install {tool})")
        self._aligner = Aligner()
        self._last_voice: tuple | None = None

    def __call__(self, variant: VoiceVariant, text: str, seed: int = 0) -> tuple[np.ndarray, list[Phone]]:
        if variant.engine == "flite":
            return self._flite(text, **variant.params)
        if variant.engine == "espeak":
            audio = self._espeak(text, **variant.params)
        elif variant.engine == "kokoro":
            audio = self._agent_speech(f"kokoro:{variant.params['voice']}", text, variant.params["length_scale"])
        else:
            audio = self._piper_speech(text, seed=seed, **variant.params)
        return audio, self._aligner.align(audio, text)

    def _flite(self, text: str, voice: str, stretch: float, f0_shift: float) -> tuple[np.ndarray, list[Phone]]:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "s.wav"
            cmd = ["flite", "-voice", voice, "-t", text, "-o", str(wav), "-psdur", "--setf", f"duration_stretch={stretch}"]
            if f0_shift:
                base = 100.0 if voice in ("kal", "kal16", "awb", "rms") else 170.0
                cmd += ["--setf", f"int_f0_target_mean={base + f0_shift}"]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            audio, rate = read_wav(wav)
        phones, start = [], 0.0
        for name, end in re.findall(r"(\w+):([\d.]+)", out):
            phones.append(Phone(name, start, float(end)))
            start = float(end)
        return to_model_rate(audio, rate), phones

    def _espeak(self, text: str, variant: str, speed: int, pitch: int) -> np.ndarray:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "s.wav"
            subprocess.run(["espeak-ng", "-v", f"en-us+{variant}", "-s", str(speed), "-p", str(pitch), "-w", str(wav), text], check=True)
            audio, rate = read_wav(wav)
        return to_model_rate(audio, rate)

    def _piper_speech(self, text: str, length_scale: float, seed: int) -> np.ndarray:
        import onnxruntime

        # Piper samples noise; onnxruntime seeds it when a session is created, so
        # a fresh session per sentence makes the corpus reproducible (0.2 s each).
        onnxruntime.set_seed(seed % 2**31)
        return self._agent_speech("joe", text, length_scale, keep=False)

    def _agent_speech(self, name: str, text: str, length_scale: float, keep: bool = True) -> np.ndarray:
        if self._agent_voice is None:
            raise RuntimeError("piper and kokoro variants need the agent's voices: build(..., agent_voice=make_voice)")
        key = (name, length_scale)
        voice = self._last_voice[1] if keep and self._last_voice and self._last_voice[0] == key else None
        if voice is None:
            voice = self._agent_voice(name, 1, length_scale)
            if keep:  # Kokoro takes a second to load; one voice at a time (each holds its own 92 MB model session)
                self._last_voice = (key, voice)
        return to_model_rate(voice.synthesize(text), voice.sample_rate)


__all__ = ["SAMPLE_RATE", "Synthesizer", "VoiceVariant", "default_voices", "split_of"]
