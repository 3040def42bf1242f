"""One customer's conversation: hear -> transcribe -> answer -> speak -> animate -> the avatar output port.

Transport-free, so the same pipeline runs behind WebRTC, in tests and in
benchmarks. It knows the stages only by their contracts (`stages.py`); events
for the page (`events.py`) go to `send_event`. It owns the call's turn counter,
its state and its response task; its avatar output port (`output/port.py`) owns
what is being said, and the call attaches the port's sink.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Callable, NamedTuple

import numpy as np

from models.audio import SPEECH_RATE

from . import metrics
from .animate.speech import animate_sentence
from .config import HearConfig
from .events import AgentState, AvatarSaid, ErrorEvent, HandedOff, Interrupted, PageEvent, StateChanged, UserSaid
from .hear.echo import EchoCanceller
from .hear.turns import SpeechStarted, TurnDetector, TurnEnded, TurnPaused
from .messages import Reply, Transcript, UserTurn
from .output.playout import PlayoutEvent
from .output.port import AvatarOutput
from .speak.sentences import split_sentences
from .stages import CallStages

log = logging.getLogger(__name__)
HISTORY = 200  # replies and timings kept per call: enough for any report, bounded for long calls
MAX_TYPED_CHARS = 500  # a typed question longer than this is cut: no FAQ question is that long


class EarlyTranscript(NamedTuple):
    """Transcription started at a pause; valid if the turn ends with no more speech after it."""

    speech_windows: int
    text: asyncio.Future
    started: float


class Conversation:
    def __init__(self, session_id: str, stages: CallStages, hear: HearConfig, send_event: Callable[[PageEvent], None],
                 fps: int = 25) -> None:
        self.session_id = session_id
        self.stages = stages
        self.barge_in = hear.barge_in
        self.send_event = send_event
        self.echo = EchoCanceller() if hear.echo_cancellation else None
        self.output = AvatarOutput(on_event=self._on_playout, on_audio=self.echo.far_end if self.echo else None, fps=fps)
        self.turns = TurnDetector(hear.vad_threshold, hear.end_of_turn_ms, hear.min_speech_ms, hear.max_turn_s)
        self.log = logging.LoggerAdapter(log, {"session": session_id})
        self.state = AgentState.IDLE
        self.history: deque[Reply] = deque(maxlen=HISTORY)
        self.response_latencies: deque[float] = deque(maxlen=HISTORY)
        self.stage_timings: deque[tuple[str, float]] = deque(maxlen=HISTORY * 4)
        self._turn_counter = 0
        self._responding: asyncio.Task | None = None
        self._awaiting_first_audio: dict[int, float] = {}  # turn -> end of the customer's speech
        self._previous_question: str | None = None  # for follow-ups such as "and on Saturdays?"
        self._early: EarlyTranscript | None = None
        self._closed = False

    # ----- state -----------------------------------------------------------------
    def _set_state(self, state: AgentState) -> None:
        """The one place the call's state changes; the page hears of each change once."""
        if state != self.state:
            self.state = state
            self.send_event(StateChanged(state))

    # ----- input ---------------------------------------------------------------
    def hear(self, audio_16k: np.ndarray) -> None:
        """Feed customer audio (16 kHz mono float32) as it arrives."""
        listen = None
        if self.echo is not None:
            listen, audio_16k = self.echo.near_end(audio_16k)
        for event in self.turns.feed(audio_16k, listen=listen):
            if isinstance(event, SpeechStarted):
                self._on_speech_started()
            elif isinstance(event, TurnPaused):
                self._transcribe_early(event)
            elif isinstance(event, TurnEnded):
                self._turn_counter += 1
                early = self._early if self._early is not None and self._early.speech_windows == event.speech_windows else None
                self._early = None
                self._start_response(self._respond_to_audio(UserTurn(self._turn_counter, event.audio, event.at), early))

    def _transcribe_early(self, pause: TurnPaused) -> None:
        """Starts transcribing at the first pause; if the customer says nothing more, the reply starts that much sooner."""
        if self._early is not None and not self._early.text.done():
            return  # one speculative job at a time
        future = asyncio.get_running_loop().run_in_executor(self.stages.executor, self.stages.transcriber.transcribe, pause.audio)
        self._early = EarlyTranscript(pause.speech_windows, future, time.perf_counter())

    def ask_text(self, text: str) -> None:
        """A typed question from the page."""
        self._interrupt()
        self._turn_counter += 1
        self._start_response(self._respond_to_text(Transcript(self._turn_counter, text.strip()[:MAX_TYPED_CHARS], time.monotonic())))

    def say(self, text: str, emotion: str = "neutral") -> asyncio.Task:
        self._turn_counter += 1
        return self._start_response(self._speak(Reply(self._turn_counter, text, emotion)))

    def _on_speech_started(self) -> None:
        self._set_state(AgentState.LISTENING)
        if self.barge_in:
            self._interrupt()

    @property
    def responding(self) -> bool:
        """True while a reply is being transcribed, answered or synthesised."""
        return self._responding is not None and not self._responding.done()

    async def settled(self) -> None:
        """Waits until the reply in progress (if any) is synthesised, answered or given up."""
        while self.responding:
            await asyncio.wait({self._responding})

    def _interrupt(self) -> None:
        if self.responding:
            self._responding.cancel()
        self.output.flush()
        self._awaiting_first_audio.clear()

    def _start_response(self, coro) -> asyncio.Task:
        if self.responding:
            self._responding.cancel()
        self._responding = asyncio.get_running_loop().create_task(coro, name=f"respond-{self.session_id}")
        self._responding.add_done_callback(self._response_done)
        return self._responding

    def _response_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            metrics.ERRORS.labels("response").inc()
            self.log.error("response failed: %r", task.exception(), exc_info=task.exception())
            self.send_event(ErrorEvent("Sorry, something went wrong while answering."))
            self._set_state(AgentState.IDLE)

    # ----- stages --------------------------------------------------------------
    async def _run(self, stage: str, fn, *args):
        started = time.perf_counter()
        result = await asyncio.get_running_loop().run_in_executor(self.stages.executor, fn, *args)
        self._timed(stage, started)
        return result

    def _timed(self, stage: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        metrics.STAGE_SECONDS.labels(stage).observe(elapsed)
        self.stage_timings.append((stage, elapsed))

    async def _respond_to_audio(self, turn: UserTurn, early: EarlyTranscript | None = None) -> None:
        self._set_state(AgentState.THINKING)
        if early is not None:
            text = await early.text
            self._timed("transcribe", early.started)
        else:
            text = await self._run("transcribe", self.stages.transcriber.transcribe, turn.audio)
        self.log.info("turn %d heard %r (%.1f s of audio)", turn.turn_id, text, len(turn.audio) / SPEECH_RATE)
        if not text:
            metrics.TURNS_TOTAL.labels("nothing_heard").inc()
            self._set_state(AgentState.IDLE)
            return
        await self._respond_to_text(Transcript(turn.turn_id, text, turn.ended_at))

    async def _respond_to_text(self, transcript: Transcript) -> None:
        self._set_state(AgentState.THINKING)
        self.send_event(UserSaid(transcript.text, transcript.turn_id))
        answer = await self._run("answer", self.stages.answerer.answer, transcript.text, self._previous_question)
        self._previous_question = transcript.text
        reply = Reply(transcript.turn_id, answer.text, answer.emotion, answer.handoff, answer.confidence, answer.matched_question, transcript.ended_at)
        self.log.info(
            "turn %d answer %r confidence %.2f handoff %s", reply.turn_id, reply.matched_question, reply.confidence, reply.handoff
        )
        metrics.TURNS_TOTAL.labels("handoff" if reply.handoff else "answered").inc()
        if reply.handoff:
            self.send_event(HandedOff(reply.turn_id, "low_confidence" if answer.matched_question is None else "requested"))
        await self._speak(reply)

    async def _speak(self, reply: Reply) -> None:
        self.history.append(reply)
        if reply.ended_at is not None:
            self._awaiting_first_audio[reply.turn_id] = reply.ended_at
        sentences = split_sentences(reply.text)
        voice = self.stages.voice
        for index, sentence in enumerate(sentences):
            audio = await self._run("tts", voice.synthesize, sentence)
            speech = await self._run("animate", animate_sentence, self.stages.face_model, reply.turn_id, sentence, audio,
                                     voice.sample_rate, reply.emotion, index == len(sentences) - 1)
            self.output.capture(speech)

    # ----- playout events ------------------------------------------------------
    def _on_playout(self, event: PlayoutEvent) -> None:
        if event.kind == "started":
            ended_at = self._awaiting_first_audio.pop(event.turn_id, None)
            if ended_at is not None:
                latency = event.at - ended_at
                self.response_latencies.append(latency)
                metrics.RESPONSE_SECONDS.observe(latency)
                self.log.info("turn %d first audio %.0f ms after end of speech", event.turn_id, latency * 1000)
            self.send_event(AvatarSaid(event.text, event.turn_id))
            self._set_state(AgentState.SPEAKING)
        elif event.kind == "finished":
            self._set_state(AgentState.IDLE)
        elif event.kind == "flushed":
            self.log.info("turn %d interrupted by the customer", event.turn_id)
            metrics.INTERRUPTIONS.inc()
            self.send_event(Interrupted(event.turn_id))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.responding:
            self._responding.cancel()
            try:
                await self._responding
            except (asyncio.CancelledError, Exception):
                pass
        self.output.flush()
