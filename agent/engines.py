"""Models shared by every session of this process, loaded once at start-up."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .animate.lipsync import ModelLipSync
from .answer.answerer import FaqAnswerer, load_embedder
from .answer.registry import AnswererRegistry
from .answer.faq import load_faq
from .config import AgentConfig
from .hear.transcriber import Transcriber
from .render.avatar import Avatar
from .render.default_head import build_default_head
from .render.gltf_avatar import load_gltf_avatar
from .speak.piper_voice import PiperVoice

log = logging.getLogger(__name__)


def load_avatar(spec: str) -> Avatar:
    """'default' or a glTF/GLB path; missing ARKit shapes are reported, not fatal."""
    if spec == "default":
        return build_default_head()
    avatar = load_gltf_avatar(spec)
    if avatar.missing:
        log.warning("avatar %s lacks %d ARKit shapes (they will not move): %s", avatar.name, len(avatar.missing), ", ".join(avatar.missing))
    log.info("avatar %s: %d vertices, %d triangles", avatar.name, avatar.vertex_count, len(avatar.faces))
    return avatar


@dataclass
class Engines:
    transcriber: Transcriber
    answerers: AnswererRegistry  # per tenant, swappable while calls go on
    voice: PiperVoice
    lipsync: ModelLipSync
    avatar: Avatar
    executor: ThreadPoolExecutor  # model work runs here, off the event loop

    @classmethod
    def load(cls, config: AgentConfig) -> "Engines":
        started = time.perf_counter()
        entries = load_faq(config.answer.faq_path)
        answerer = FaqAnswerer(entries, load_embedder(config.threads), config.answer.confidence_threshold, config.answer.handoff_text)
        answerers = AnswererRegistry(answerer, config.answer.versions_dir, config.threads, config.answer.handoff_text)
        answerers.restore(list(config.tenants))
        engines = cls(
            transcriber=Transcriber(config.hear.asr_model, config.hear.language, config.hear.asr_threads),
            answerers=answerers,
            voice=PiperVoice.joe(config.threads, config.speak.length_scale),
            lipsync=ModelLipSync(config.render.fps, config.animate.model_dir, config.animate.device, config.threads),
            avatar=load_avatar(config.render.avatar),
            executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="models"),
        )
        log.info("models loaded in %.1f s (%d FAQ entries)", time.perf_counter() - started, len(entries))
        return engines

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
