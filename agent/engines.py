"""Models shared by every session of this process, loaded once at start-up."""
from __future__ import annotations

import logging
import os
import threading
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
from .speak.cache import CachedVoice
from .speak.piper_voice import PiperVoice
from .speak.sentences import split_sentences

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
    voices: dict[float, CachedVoice]  # by speaking rate (length_scale)
    lipsync: ModelLipSync
    avatars: dict[str, Avatar]  # by avatar spec ('default' or a file)
    config: AgentConfig
    executor: ThreadPoolExecutor  # model work runs here, off the event loop

    @classmethod
    def load(cls, config: AgentConfig) -> "Engines":
        started = time.perf_counter()
        embedder = load_embedder(config.threads)
        faqs = {config.answer.faq_path} | {t.faq_path for t in config.tenants.values() if t.faq_path is not None}
        answerers_by_faq = {faq: FaqAnswerer(load_faq(faq), embedder, config.answer.confidence_threshold, config.answer.handoff_text) for faq in faqs}
        base = {tenant: answerers_by_faq[t.faq_path or config.answer.faq_path] for tenant, t in config.tenants.items()}
        answerers = AnswererRegistry(answerers_by_faq[config.answer.faq_path], config.answer.versions_dir, config.threads,
                                     config.answer.handoff_text, base_by_tenant=base)
        answerers.restore(list(config.tenants))
        rates = {config.speak.length_scale} | {t.length_scale for t in config.tenants.values() if t.length_scale is not None}
        specs = {config.render.avatar} | {t.avatar for t in config.tenants.values() if t.avatar is not None}
        engines = cls(
            transcriber=Transcriber(config.hear.asr_model, config.hear.language, config.hear.asr_threads),
            answerers=answerers,
            voices={rate: CachedVoice(PiperVoice.joe(config.threads, rate)) for rate in rates},
            lipsync=ModelLipSync(config.render.fps, config.animate.model_dir, config.animate.device, config.threads),
            avatars={spec: load_avatar(spec) for spec in specs},
            config=config,
            executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="models"),
        )
        log.info("models loaded in %.1f s (%d FAQ files, %d avatars, %d tenants)", time.perf_counter() - started, len(faqs), len(specs), len(config.tenants))
        return engines

    def sentences_to_warm(self, tenant: str) -> list[str]:
        """What this tenant's avatar will say most: its greeting, the hand-off, and every answer, sentence by sentence."""
        settings = self.config.tenants.get(tenant)
        greeting = (settings.greeting if settings is not None else None) or self.config.answer.greeting
        answerer = self.answerers.get(tenant)
        texts = [greeting, answerer.handoff_text, *(entry.answer for entry in answerer.entries)]
        return [sentence for text in texts for sentence in split_sentences(text)]

    def warm_speech(self, tenants: list[str] | None = None) -> int:
        """Speaks every tenant's likely sentences into the voices' caches (seconds per tenant); returns how many."""
        return sum(self.voice_for(t).warm(self.sentences_to_warm(t)) for t in tenants or list(self.config.tenants))

    def warm_speech_in_background(self) -> threading.Thread:
        """warm_speech on a thread below the agent's priority, so calls that start meanwhile come first."""
        def run() -> None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
            started = time.perf_counter()
            try:
                added = self.warm_speech()
            except Exception:  # a voice problem shows up on the first call too; start-up goes on
                log.exception("could not warm the speech cache")
                return
            log.info("speech cache: %d sentences spoken ahead in %.1f s", added, time.perf_counter() - started)

        thread = threading.Thread(target=run, name="warm-speech", daemon=True)
        thread.start()
        return thread

    def voice_for(self, tenant: str) -> CachedVoice:
        settings = self.config.tenants.get(tenant)
        rate = settings.length_scale if settings is not None and settings.length_scale is not None else self.config.speak.length_scale
        return self.voices[rate]

    def avatar_for(self, tenant: str) -> Avatar:
        settings = self.config.tenants.get(tenant)
        return self.avatars[settings.avatar if settings is not None and settings.avatar is not None else self.config.render.avatar]

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
