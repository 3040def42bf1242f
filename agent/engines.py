"""The models every call of this process shares, loaded once at start-up, and each call's stages built from them."""
from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from models.whisper import load_whisper
from .animate.lipsync import AudioToFace
from .answer.answerer import FaqAnswerer
from .answer.calibrate import calibrate_untuned
from .answer.encoders import load_encoder
from .answer.faq import load_faq
from .answer.questions import QuestionStore
from .answer.registry import AnswererRegistry
from .avatars.avatar import Avatar
from .avatars.library import load_avatar
from .config import AgentConfig, TenantSettings
from .hear.transcriber import WhisperTranscriber
from .hear.turn_model import LANGUAGES, SmartTurn
from .hear.vocabulary import faq_vocabulary
from .speak.cache import CachedVoice
from .speak.sentences import split_sentences
from .speak.voices import make_voice
from .stages import CallStages

log = logging.getLogger(__name__)


def base_answerer(faq: Path, encoders: list, threshold: float | str, handoff_text: str) -> FaqAnswerer:
    """The un-tuned answerer of a FAQ file, its threshold calibrated on the FAQ itself when the config says auto."""
    answerer = FaqAnswerer(load_faq(faq), encoders, 0.5, handoff_text)
    if threshold == "auto":
        outcomes = calibrate_untuned(answerer)
        log.info("%s: hand-off threshold %.3f (made phrasings answered right %.0f%%, off-topic handed off %.0f%%)",
                 faq.name, outcomes.threshold, 100 * outcomes.top1_accuracy, 100 * outcomes.off_topic_recall)
    else:
        answerer.threshold = float(threshold)
    return answerer


@dataclass(frozen=True)
class TenantQuestions:
    """A `QuestionLog`: one tenant's store and the hand-off line of its answerer at the time of the turn. `Engines` holds
    one per tenant, which every call of the tenant shares (the store's file lock keeps other instances safe too)."""

    store: QuestionStore
    threshold: object  # () -> float

    def keep(self, text: str, answer) -> object:
        try:
            return self.store.keep(text, answer, self.threshold())
        except OSError as exc:  # the call goes on; the operator loses one question
            log.warning("could not keep a missed question in %s: %s", self.store.path, exc)
            return None


def _below_the_event_loop(nice: int, threads: list[int]) -> None:
    """Lowers the OS priority of `threads` (thread ids) by `nice`. Linux gives each thread its own priority, so the
    event loop, which sends every call's audio on time, gets a core before the models when both want one."""
    for tid in threads:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
        except (AttributeError, OSError) as exc:  # not Linux, the thread has ended, or not allowed: the same priority
            log.debug("thread %d keeps its priority (%s)", tid, exc)


def _model_thread_started(nice: int) -> None:
    """The executor's initializer: each model thread lowers its own priority as it starts."""
    if nice:
        _below_the_event_loop(nice, [threading.get_native_id()])


def models_below_this_thread(nice: int) -> None:
    """Called by the thread that will run the event loop, once the models are loaded: every other thread of the process
    so far (CTranslate2's workers for Whisper among them) runs `nice` lower; the executor's threads do so as they start."""
    if not nice:
        return
    try:
        others = [int(t) for t in os.listdir("/proc/self/task") if int(t) != threading.get_native_id()]
    except OSError:
        return
    _below_the_event_loop(nice, others)


def _end_of_turn_model(config: AgentConfig) -> SmartTurn | None:
    if config.hear.turn_model == "none":
        return None
    if config.hear.language not in LANGUAGES:
        log.info("the end-of-turn model was not trained on %r: a silence of %d ms ends turns", config.hear.language, config.hear.end_of_turn_ms)
        return None
    return SmartTurn(config.threads)


@dataclass
class Engines:
    transcriber: WhisperTranscriber  # unbiased; each tenant's calls hear with its FAQ's words (transcriber_for)
    answerers: AnswererRegistry  # per tenant, swappable while calls go on
    voices: dict[tuple[str, float], CachedVoice]  # by voice name and speaking rate (length_scale)
    face_model: AudioToFace
    avatars: dict[str, Avatar]  # by avatar spec ('default' or a file)
    executor: ThreadPoolExecutor  # model work runs here, off the event loop
    end_of_turn: SmartTurn | None = None  # None: a fixed silence ends turns
    _vocabularies: weakref.WeakKeyDictionary = field(default_factory=weakref.WeakKeyDictionary)  # per answerer (FAQ version)
    _questions: dict = field(default_factory=dict)  # TenantQuestions by tenant and its store's settings (questions_for)
    _questions_lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)  # close() was called: background work stops
    _warming: list = field(default_factory=list)  # the warm-speech threads, joined by close()

    @classmethod
    def load(cls, config: AgentConfig) -> "Engines":
        started = time.perf_counter()
        tenants = [config.tenant(t) for t in config.tenants]
        encoders = {name: load_encoder(name) for name in config.answer.encoders}
        faqs = {config.answer.faq_path} | {t.faq_path for t in tenants}
        answerers_by_faq = {faq: base_answerer(faq, list(encoders.values()), config.answer.confidence_threshold, config.answer.handoff_text)
                            for faq in faqs}
        answerers = AnswererRegistry(answerers_by_faq[config.answer.faq_path], config.answer.versions_dir,
                                     config.answer.handoff_text, base_by_tenant={t.id: answerers_by_faq[t.faq_path] for t in tenants},
                                     shared=encoders)
        answerers.restore([t.id for t in tenants])
        voices = {(config.speak.voice, config.speak.length_scale)} | {(t.voice, t.length_scale) for t in tenants}
        specs = {config.render.avatar} | {t.avatar for t in tenants}
        # Two workers share the weights, so two calls' turns (or a turn and a sentence's face) are heard at once.
        whisper = load_whisper(config.hear.asr_model, "auto", config.hear.asr_threads, workers=2)
        face_whisper = whisper if config.hear.asr_model == "tiny.en" else load_whisper("tiny.en", config.animate.device, config.threads)
        engines = cls(
            transcriber=WhisperTranscriber(whisper, config.hear.language),
            answerers=answerers,
            voices={(name, rate): CachedVoice(make_voice(name, config.threads, rate)) for name, rate in voices},
            face_model=AudioToFace(config.render.fps, config.animate.model_dir, config.animate.device, config.threads, face_whisper),
            avatars={spec: load_avatar(spec) for spec in specs},
            executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="models", initializer=_model_thread_started,
                                        initargs=(config.models_nice,)),  # the models' threads, when they start
            end_of_turn=_end_of_turn_model(config),
        )
        log.info("models loaded in %.1f s (%d FAQ files, %d avatars, %d tenants)", time.perf_counter() - started, len(faqs), len(specs), len(tenants))
        return engines

    def stages_for(self, tenant: TenantSettings) -> CallStages:
        """One call's stages for this tenant."""
        return CallStages(self.transcriber_for(tenant), self.answerers.for_tenant(tenant.id), self.voice_for(tenant), self.face_model,
                          self.executor, self.end_of_turn, self.questions_for(tenant))

    def questions_for(self, tenant: TenantSettings) -> "TenantQuestions | None":
        """Where the tenant's missed questions are kept, judged against its active version's threshold; None if it did not opt in."""
        if tenant.questions_path is None:
            return None
        key = (tenant.id, tenant.questions_path, tenant.keep_questions_days, tenant.keep_questions_max)
        with self._questions_lock:  # one per tenant, shared by its calls; a new one if its settings changed
            if key not in self._questions:
                tenant_id = tenant.id
                self._questions = {k: q for k, q in self._questions.items() if k[0] != tenant_id}
                self._questions[key] = TenantQuestions(QuestionStore(tenant.questions_path, tenant.keep_questions_days, tenant.keep_questions_max),
                                                       lambda: self.answerers.get(tenant_id).threshold)
            return self._questions[key]

    def transcriber_for(self, tenant: TenantSettings) -> WhisperTranscriber:
        """Hears with the words of the tenant's active FAQ version, looked up per turn (a live swap applies at once)."""
        def vocabulary() -> tuple[str, ...]:
            answerer = self.answerers.get(tenant.id)
            if answerer not in self._vocabularies:
                self._vocabularies[answerer] = faq_vocabulary((t for e in answerer.entries for t in e.texts), self.transcriber.whisper.tokenizer)
            return self._vocabularies[answerer]

        return self.transcriber.with_vocabulary(vocabulary)

    def voice_for(self, tenant: TenantSettings) -> CachedVoice:
        return self.voices[(tenant.voice, tenant.length_scale)]

    def avatar_for(self, tenant: TenantSettings) -> Avatar:
        return self.avatars[tenant.avatar]

    def sentences_to_warm(self, tenant: TenantSettings) -> list[str]:
        """What this tenant's avatar will say most: its greeting, the hand-off, and every answer, sentence by sentence."""
        answerer = self.answerers.get(tenant.id)
        texts = [tenant.greeting, answerer.handoff_text, *(entry.answer for entry in answerer.entries)]
        return [sentence for text in texts for sentence in split_sentences(text)]

    def warm_speech(self, tenants: list[TenantSettings]) -> int:
        """Speaks the tenants' likely sentences into the voices' caches (seconds per tenant); returns how many."""
        return sum(self.voice_for(t).warm(self._until_closed(self.sentences_to_warm(t))) for t in tenants)

    def _until_closed(self, sentences):
        """The sentences, until close(): a model thread still in C++ when the interpreter exits aborts the process."""
        for sentence in sentences:
            if self._closing.is_set():
                return
            yield sentence

    def warm_speech_in_background(self, tenants: list[TenantSettings]) -> threading.Thread:
        """warm_speech on a thread below the agent's priority, so calls that start meanwhile come first."""
        def run() -> None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)  # this thread only (Linux)
            started = time.perf_counter()
            try:
                added = self.warm_speech(tenants)
            except Exception:  # a voice problem shows up on the first call too; start-up goes on
                log.exception("could not warm the speech cache")
                return
            log.info("speech cache: %d sentences spoken ahead in %.1f s", added, time.perf_counter() - started)

        thread = threading.Thread(target=run, name="warm-speech", daemon=True)
        thread.start()
        self._warming.append(thread)
        return thread

    def close(self) -> None:
        """Stops the models' threads and waits for the sentence or turn each is on (seconds at most), so the process exits
        cleanly (SIGTERM's drain ends here)."""
        self._closing.set()
        for thread in self._warming:
            thread.join(timeout=30)
        self.executor.shutdown(wait=True, cancel_futures=True)
