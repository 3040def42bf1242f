"""Models shared by every session of this process, loaded once at start-up."""
from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .animate.lipsync import SpectralLipSync
from .answer.answerer import FaqAnswerer, load_embedder
from .answer.faq import load_faq
from .config import AgentConfig
from .hear.transcriber import Transcriber
from .render.avatar import Avatar
from .render.default_head import build_default_head
from .speak.piper_voice import PiperVoice

log = logging.getLogger(__name__)


@dataclass
class Engines:
    transcriber: Transcriber
    answerer: FaqAnswerer
    voice: PiperVoice
    lipsync: SpectralLipSync
    avatar: Avatar
    executor: ThreadPoolExecutor  # model work runs here, off the event loop

    @classmethod
    def load(cls, config: AgentConfig) -> "Engines":
        started = time.perf_counter()
        entries = load_faq(config.answer.faq_path)
        answerer = FaqAnswerer(entries, load_embedder(config.threads), config.answer.confidence_threshold, config.answer.handoff_text)
        engines = cls(
            transcriber=Transcriber(config.hear.asr_model, config.hear.language, config.hear.asr_threads),
            answerer=answerer,
            voice=PiperVoice.joe(config.threads, config.speak.length_scale),
            lipsync=SpectralLipSync(fps=config.render.fps),
            avatar=build_default_head(),
            executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="models"),
        )
        log.info("models loaded in %.1f s (%d FAQ entries)", time.perf_counter() - started, len(entries))
        return engines

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
