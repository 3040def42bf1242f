from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.audio import read_wav, write_wav  # noqa: F401  (tests import them from here)
from benchmarks.speech_sets import spoken
from models.devices import use_models_offline

use_models_offline(threads=1)  # as every entry point does
ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
ARTIFACTS = ROOT / "tests" / "artifacts"


async def until(condition, timeout: float = 30.0, every: float = 0.05) -> bool:
    """Waits for `condition()` to hold: the test awaits what it expects, never a guess at how long it takes."""
    import asyncio
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(every)
    return True


def espeak(text: str, path: Path, rate: int = 16000, lead_s: float = 0.3, tail_s: float = 1.0) -> Path:
    """Speech from espeak-ng (a different voice from the avatar's), resampled, with silence around it."""
    assert shutil.which("espeak-ng"), "espeak-ng is needed for test speech"
    audio = np.concatenate([np.zeros(int(lead_s * rate)), spoken(text, rate), np.zeros(int(tail_s * rate))])
    return write_wav(path, audio, rate)


@pytest.fixture(scope="session")
def speech_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("speech")


SHOP_FAQ = "question,answer,paraphrases\nDo you sell gift cards?,Yes: gift cards from ten to two hundred dollars.,Can I buy a gift card?\n"


@pytest.fixture(scope="session")
def config(tmp_path_factory):
    """The shipped config, with fine-tuned versions kept apart, and a second tenant `shop` with a FAQ, an avatar
    file, a speaking rate and a greeting of its own (so every test's one set of models serves both)."""
    import yaml

    from agent.avatars.builder import PRESETS, build_head
    from agent.avatars.gltf import write_glb
    from agent.config import DEFAULT_CONFIG, load_config

    folder = tmp_path_factory.mktemp("config")
    (folder / "shop.csv").write_text(SHOP_FAQ)
    write_glb(build_head(PRESETS["amara"], "shop-head"), folder / "shop-head.glb")
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["answer"]["faq_path"] = str((DEFAULT_CONFIG.parent / raw["answer"]["faq_path"]).resolve())
    raw["answer"]["versions_dir"] = str(folder / "versions")
    raw["tenants"]["shop"] = {"faq_path": "shop.csv", "avatar": "shop-head.glb", "length_scale": 1.25, "greeting": "Welcome to the shop!"}
    (folder / "agent.yaml").write_text(yaml.safe_dump(raw))
    return load_config(folder / "agent.yaml")


@pytest.fixture(scope="session")
def engines(config):
    from agent.engines import Engines

    engines = Engines.load(config)
    yield engines
    engines.close()


@pytest.fixture(scope="session")
def avatar(engines, config):
    return engines.avatar_for(config.tenant("demo"))


def renderer_for(avatar, size: int = 256, shading: str = "lean", msaa: int = 0, **settings_):
    """A renderer in this process, as offline tools use it."""
    from agent.config import RenderConfig
    from agent.render.gl import use_gl_backend
    from agent.render.renderer import make_renderer

    settings = RenderConfig(width=size, height=size, shading=shading, msaa=msaa, **settings_)
    use_gl_backend(settings.backend)  # the test process draws in threads
    return make_renderer(avatar, settings)
