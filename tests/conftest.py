from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.audio import read_wav, write_wav  # noqa: F401  (tests import them from here)
from benchmarks.speech_sets import spoken

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "tests" / "artifacts"


def espeak(text: str, path: Path, rate: int = 16000, lead_s: float = 0.3, tail_s: float = 1.0) -> Path:
    """Speech from espeak-ng (a different voice from the avatar's), resampled, with silence around it."""
    assert shutil.which("espeak-ng"), "espeak-ng is needed for test speech"
    audio = np.concatenate([np.zeros(int(lead_s * rate)), spoken(text, rate), np.zeros(int(tail_s * rate))])
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
def avatar(engines, config):
    return engines.avatar_for(config.tenant("demo"))


def renderer_for(avatar, size: int = 256, shading: str = "lean", msaa: int = 0):
    """A renderer in this process, as offline tools use it."""
    from agent.config import RenderConfig
    from agent.render.gl import use_gl_backend
    from agent.render.renderer import make_renderer

    settings = RenderConfig(width=size, height=size, shading=shading, msaa=msaa)
    use_gl_backend(settings.backend)  # the test process draws in threads
    return make_renderer(avatar, settings)
