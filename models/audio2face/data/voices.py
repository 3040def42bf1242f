"""Speech engines that give us audio plus phone timings.

flite reports its own phone end times (`-psdur`). Piper and espeak-ng do not, so
their speech is force-aligned to the text with pocketsphinx. Every voice has
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
    engine: str  # flite | espeak | piper
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
    return variants


# The split: voices never seen in training measure generalisation.
TEST_VOICES = ("flite-slt", "espeak-f2", "espeak-croak")
VAL_VOICES = ("flite-rms", "espeak-m7")


def split_of(voice: str) -> str:
    return "test" if voice in TEST_VOICES else "val" if voice in VAL_VOICES else "train"


class Synthesizer:
    """Synthesises one sentence with one voice variant: (16 kHz audio, phones).

    `piper_voice(length_scale)` makes the agent's Piper voice (`agent.speak.piper_voice.PiperVoice.joe`);
    the caller hands it in, so this package does not depend on the agent.
    """

    def __init__(self, piper_voice=None) -> None:
        self._piper_voice = piper_voice
        for tool in ("flite", "espeak-ng"):
            if not shutil.which(tool):
                raise RuntimeError(f"{tool} is not installed (apt-get install {tool})")
        self._aligner = Aligner()

    def __call__(self, variant: VoiceVariant, text: str, seed: int = 0) -> tuple[np.ndarray, list[Phone]]:
        if variant.engine == "flite":
            return self._flite(text, **variant.params)
        if variant.engine == "espeak":
            audio = self._espeak(text, **variant.params)
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

        if self._piper_voice is None:
            raise RuntimeError("the piper voices need the agent's Piper voice: build(..., piper_voice=PiperVoice.joe)")
        # Piper samples noise; onnxruntime seeds it when a session is created, so
        # a fresh session per sentence makes the corpus reproducible (0.2 s each).
        onnxruntime.set_seed(seed % 2**31)
        voice = self._piper_voice(threads=1, length_scale=length_scale)
        return to_model_rate(voice.synthesize(text), voice.sample_rate)


__all__ = ["SAMPLE_RATE", "Synthesizer", "VoiceVariant", "default_voices", "split_of"]
