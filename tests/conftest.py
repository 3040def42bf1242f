from __future__ import annotations

import os
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "tests" / "artifacts"


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768.0
    return pcm.reshape(-1, channels).mean(axis=1), rate


def write_wav(path: Path, audio: np.ndarray, rate: int) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(audio, -1, 1) * 32767).astype(np.int16).tobytes())
    return path


def espeak(text: str, path: Path, rate: int = 16000, lead_s: float = 0.3, tail_s: float = 1.0) -> Path:
    """Speech from espeak-ng (a different voice from the avatar's), resampled, with silence around it."""
    from scipy.signal import resample_poly

    assert shutil.which("espeak-ng"), "espeak-ng is needed for test speech"
    raw = path.with_suffix(".raw.wav")
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(raw), text], check=True)
    audio, src_rate = read_wav(raw)
    audio = resample_poly(audio, rate, src_rate) if src_rate != rate else audio
    audio = np.concatenate([np.zeros(int(lead_s * rate)), audio, np.zeros(int(tail_s * rate))])
    return write_wav(path, audio, rate)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speech")


@pytest.fixture(scope="session")
def config():
    from agent.config import load_config

    return load_config()


@pytest.fixture(scope="session")
def engines(config):
    from agent.engines import Engines

    engines = Engines.load(config)
    yield engines
    engines.close()


@pytest.fixture(scope="session")
def avatar(engines):
    return engines.avatar
