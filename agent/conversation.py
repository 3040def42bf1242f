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
from dataclasses import replace
from typing import Callable, NamedTuple

import numpy as np

from models.audio import SPEECH_RATE

from . import metrics
from .animate.live import LiveSpeech
from .animate.speech import animate_sentence
from .answer.questions import mask
from .config import HearConfig
from .events import AgentState, AvatarSaid, ErrorEvent, HandedOff, Interrupted, PageEvent, StateChanged, UserSaid
from .hear.echo import EchoCanceller
from .hear.expect import OPEN, check_question, expectation_after, yes_or_no
from .hear.turn_model import COMPLETE as END_OF_TURN_PROBABILITY, turn_is_done
from .hear.turns import SpeechStarted, TurnDetector, TurnEnded, TurnPaused
from .messages import Reply, Transcript, UserTurn
from .output.playout import PlayoutEvent
from .output.port import AvatarOutput
from .speak.sentences import split_sentences
from .stages import CallStages

log = logging.getLogger(__name__)
HISTORY = 200  # replies and timings kept per call: enough for any report, bounded for long calls
SPECULATE_AFTER_MS = 160  # hearing and answering begin at this pause: by the end-of-turn model's first say, the words are there
MAX_TYPED_CHARS = 500  # a typed question longer than this is cut: no FAQ question is that long
PERSON_BACKLOG = 25  # blocks of a person's voice (8 s) waiting for the face model at most
# A turn of a few words the decoder is this unsure of (its mean token probability, `Heard.sure`) is asked back
# ("Sorry, was that 5?"), never answered: on the short-answer set, most misheard short turns score below it and
# few heard right do (`avatar-agent benchmark short`).
UNSURE_BELOW = 0.35
SHORT_TURN_WORDS = 3


class Speculation(NamedTuple):
    """The turn heard and answered from a pause on; used if the turn ends with no more speech after that pause,
    dropped without a sound if the customer goes on."""

    speech_windows: int
    previous_question: str | None  # what the answer was read with (a follow-up depends on it)
    heard: asyncio.Future  # -> what was heard (messages.Heard), as soon as it is there (the end-of-turn decision reads it)
    work: asyncio.Task  # -> (Heard, Answer | None, the answer's first sentence spoken and animated | None, {stage: seconds})


class Conversation:
    def __init__(self, session_id: str, stages: CallStages, hear: HearConfig, send_event: Callable[[PageEvent], None],
                 fps: int = 25, log_words: bool = False) -> None:
        self.session_id = session_id
        self.log_words = log_words  # the tenant's log_transcripts: the customer's words (masked) in the log, else none
        self.last_heard = time.monotonic()  # when the customer last spoke or typed (the call's idle limit reads it)
        self.stages = stages
        self.barge_in = hear.barge_in
        self.language = hear.language
        self.send_event = send_event
        self.echo = EchoCanceller() if hear.echo_cancellation != "never" else None
        self._echo_mode = hear.echo_cancellation
        self.output = AvatarOutput(on_event=self._on_playout, on_audio=self.echo.far_end if self.echo else None, fps=fps)
        # With the end-of-turn model, a short pause asks it whether the customer is done, and only a long one ends the
        # turn by itself; without it, a fixed silence does.
        judged = stages.end_of_turn is not None
        self.turns = TurnDetector(hear.vad_threshold, hear.turn_wait_ms if judged else hear.end_of_turn_ms, hear.min_speech_ms,
                                  hear.max_turn_s, pause_ms=SPECULATE_AFTER_MS, judge_ms=hear.turn_pause_ms if judged else None,
                                  recheck_ms=hear.turn_recheck_ms)
        self.log = logging.LoggerAdapter(log, {"session": session_id})
        self.state = AgentState.IDLE
        self.history: deque[Reply] = deque(maxlen=HISTORY)
        self.response_latencies: deque[float] = deque(maxlen=HISTORY)
        self.stage_timings: deque[tuple[str, float]] = deque(maxlen=HISTORY * 4)
        self._turn_counter = 0
        self._responding: asyncio.Task | None = None
        self._awaiting_first_audio: dict[int, float] = {}  # turn -> end of the customer's speech
        self._previous_question: str | None = None  # for follow-ups such as "and on Saturdays?"
        self._expecting = OPEN  # what the agent's last words asked for (a number, a yes or no): the transcriber weighs by it
        self._checking: str | None = None  # the short turn the agent asked back about ("Sorry, was that 5?")
        self._speculation: Speculation | None = None
        self._judging: set[asyncio.Future] = set()  # the end-of-turn model's answers still to come
        self._waiting_pause: TurnPaused | None = None  # the latest recheck that came while one was still to come
        self.person: LiveSpeech | None = None  # a person speaking through the avatar (people/desk.py): the assistant is silent
        self._person_blocks: asyncio.Queue | None = None
        self._person_task: asyncio.Task | None = None
        self._closed = False

    def _words(self, text: str) -> str:
        """What the log may say of the customer's words: masked, for a tenant that opted in; else only how many."""
        return repr(mask(text)) if self.log_words else f"{len(text.split())} words"

    # ----- state -----------------------------------------------------------------
    def _set_state(self, state: AgentState) -> None:
        """The one place the call's state changes; the page hears of each change once."""
        if state != self.state:
            self.state = state
            self.send_event(StateChanged(state))

    # ----- input ---------------------------------------------------------------
    def microphone_said(self, cancels_echo: bool | None) -> None:
        """What the page said of its microphone: with `echo_cancellation: auto`, a browser's own canceller stands alone."""
        if self.echo is not None and self._echo_mode == "auto" and cancels_echo is True:
            self.echo.trust_microphone()
        self.log.info("echo: %s", "cancelled here too" if self.echo is not None and self.echo.cancelling else
                      "the browser's canceller and the residue gate" if self.echo is not None else "not cancelled here")

    def hear(self, audio_16k: np.ndarray) -> None:
        """Feed customer audio (16 kHz mono float32) as it arrives."""
        listen = None
        if self.echo is not None:
            listen, audio_16k = self.echo.near_end(audio_16k)
        for event in self.turns.feed(audio_16k, listen=listen):
            if isinstance(event, SpeechStarted):
                self.last_heard = time.monotonic()
                self._on_speech_started()
            elif isinstance(event, TurnPaused) and self.person is None:  # the words wait for the turn's end: captions only
                self._speculate(event)
                if self.stages.end_of_turn is not None and event.judge:
                    self._ask_if_done(event)
            elif isinstance(event, TurnEnded):
                self._on_turn_ended(event, "silence")

    def _on_turn_ended(self, event: TurnEnded, by: str) -> None:
        metrics.TURNS_ENDED.labels(by).inc()
        self._turn_counter += 1
        speculation = self._speculation if self._speculation is not None and self._speculation.speech_windows == event.speech_windows else None
        self._speculation = None
        self._start_response(self._respond_to_audio(UserTurn(self._turn_counter, event.audio, event.at), speculation))

    def _speculate(self, pause: TurnPaused) -> None:
        """Hears and answers the turn from this pause on: if the customer says nothing more, the reply is ready sooner."""
        if self._speculation is not None and (not self._speculation.work.done() or self._speculation.speech_windows == pause.speech_windows):
            return  # one speculative job at a time, and one a pause
        loop = asyncio.get_running_loop()
        previous = self._previous_question
        heard = loop.run_in_executor(self.stages.executor, self.stages.transcriber.hear_so_far, pause.audio, self._expecting)
        self._speculation = Speculation(pause.speech_windows, previous, heard, loop.create_task(
            self._answer_heard(heard, previous), name=f"speculate-{self.session_id}"))

    async def _answer_heard(self, heard: asyncio.Future, previous: str | None):
        """What the turn would get if it ended at this pause: its words, the answer, and the answer's first sentence ready to play."""
        timings = {}
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        heard = await heard
        text = heard.text
        timings["transcribe"] = time.perf_counter() - started
        if not text or self._asks_back(heard.text, heard.sure) or self._checking is not None:
            return heard, None, None, timings  # nothing to answer yet
        started = time.perf_counter()
        answer = await loop.run_in_executor(self.stages.executor, self.stages.answerer.answer, text, previous)
        timings["answer"] = time.perf_counter() - started
        sentences = split_sentences(answer.text)
        first = None
        if sentences:
            started = time.perf_counter()
            first = await self._animated(0, sentences[0], answer.emotion, len(sentences) == 1)
            timings["first sentence"] = time.perf_counter() - started
        return heard, answer, first, timings

    async def _animated(self, turn_id: int, sentence: str, emotion: str, is_last: bool):
        """One sentence spoken by the voice and animated by the face model (off the event loop)."""
        loop, voice = asyncio.get_running_loop(), self.stages.voice
        audio = await loop.run_in_executor(self.stages.executor, voice.synthesize, sentence)
        return await loop.run_in_executor(self.stages.executor, animate_sentence, self.stages.face_model, turn_id, sentence, audio,
                                          voice.sample_rate, emotion, is_last)

    def _ask_if_done(self, pause: TurnPaused) -> None:
        """The end-of-turn model hears the turn so far while it is transcribed; if the model says the customer is done
        and the words do not go on (`turn_model.turn_is_done`), the turn ends at this pause.

        One question at a time, and none that is stale when its turn in the queue comes: on a busy box model work
        waits, and a pause is rechecked every `turn_recheck_ms`, so asking at each recheck while the last answer is
        still to come would queue a question a recheck per call, each one ahead of the transcriptions and answers
        queued after it. A recheck that comes meanwhile waits instead, the latest only, and is asked when the answer
        comes (the audio may have stopped coming by then: a later recheck may never come)."""
        if self._judging:
            metrics.TURN_QUESTIONS.labels("busy").inc()
            self._waiting_pause = pause
            return
        model = self.stages.end_of_turn

        def unless_over(audio: np.ndarray) -> float | None:
            # Read on a model thread: a stale read only runs the model once for nothing, or drops a pause whose
            # answer would have been too late to end the turn.
            if not self._still_paused(pause):
                metrics.TURN_QUESTIONS.labels("over").inc()
                return None  # the customer went on, or the silence ended the turn, while this waited
            metrics.TURN_QUESTIONS.labels("asked").inc()
            return model.complete(audio)

        probability = asyncio.get_running_loop().run_in_executor(self.stages.executor, unless_over, pause.audio)
        heard = self._speculation.heard if self._speculation is not None and self._speculation.speech_windows == pause.speech_windows else None
        decision = asyncio.ensure_future(self._decide(pause, probability, heard))
        self._judging.add(decision)
        decision.add_done_callback(self._judged)

    def _judged(self, decision: asyncio.Future) -> None:
        self._judging.discard(decision)
        pause, self._waiting_pause = self._waiting_pause, None
        if pause is not None and not self._closed and self._still_paused(pause):
            self._ask_if_done(pause)

    def _still_paused(self, pause: TurnPaused) -> bool:
        """The turn `pause` came in goes on, and the customer has said nothing since."""
        return self.turns.in_turn and self.turns.speech_windows == pause.speech_windows

    async def _decide(self, pause: TurnPaused, probability: asyncio.Future, heard: asyncio.Future | None) -> None:
        try:
            p = await probability
            if p is None:
                return
            words = await heard if heard is not None and p >= END_OF_TURN_PROBABILITY else None
        except Exception as exc:  # the fixed wait (hear.turn_wait_ms) still ends the turn
            self.log.error("end-of-turn decision failed: %r", exc)
            return
        if self._closed or not turn_is_done(p, words, self.language):
            return
        ended = self.turns.complete(pause.speech_windows)
        if ended is not None:
            self.log.info("the customer is done after a %d ms pause (end-of-turn model: %.2f)", pause.silence_ms, p)
            self._on_turn_ended(ended, "model")

    def ask_text(self, text: str) -> None:
        """A typed question from the page."""
        self.last_heard = time.monotonic()
        self._interrupt()
        self._turn_counter += 1
        self._start_response(self._respond_to_text(Transcript(self._turn_counter, text.strip()[:MAX_TYPED_CHARS], time.monotonic())))

    def say(self, text: str, emotion: str = "neutral") -> asyncio.Task:
        self._turn_counter += 1
        return self._start_response(self._speak(Reply(self._turn_counter, text, emotion)))

    def say_next(self, text: str, emotion: str = "neutral") -> asyncio.Task:
        """Says `text` after the reply in progress, if any (a barge-in drops both)."""
        self._turn_counter += 1
        previous = self._responding if self.responding else None
        return self._start_response(self._after(previous, Reply(self._turn_counter, text, emotion)), replace=False)

    async def _after(self, previous: asyncio.Task | None, reply: Reply) -> None:
        if previous is not None:
            try:
                await asyncio.wait({previous})
            except asyncio.CancelledError:
                previous.cancel()
                raise
        await self._speak(reply)

    def _on_speech_started(self) -> None:
        self._set_state(AgentState.LISTENING)
        if self.barge_in:
            self._interrupt()

    @property
    def responding(self) -> bool:
        """True while a reply is being transcribed, answered or synthesised."""
        return self._responding is not None and not self._responding.done()

    async def settled(self) -> None:
        """Waits until the end-of-turn model has judged every pause so far and the reply in progress (if any) is
        synthesised, answered or given up (tests and tools feed audio faster than real time)."""
        while self._judging or self.responding:
            await asyncio.wait({*self._judging, *([self._responding] if self.responding else [])})

    def _interrupt(self) -> None:
        if self.responding:
            self._responding.cancel()
        self.output.flush()
        self._awaiting_first_audio.clear()

    def _start_response(self, coro, replace: bool = True) -> asyncio.Task:
        """The call's one response task; `replace`: the one in progress is cancelled (else `coro` waits for it itself)."""
        if replace and self.responding:
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
        self._record(stage, time.perf_counter() - started)

    def _record(self, stage: str, seconds: float) -> None:
        metrics.STAGE_SECONDS.labels(stage).observe(seconds)
        self.stage_timings.append((stage, seconds))

    async def _respond_to_audio(self, turn: UserTurn, speculation: Speculation | None = None) -> None:
        self._set_state(AgentState.THINKING)
        answer = first = None
        if speculation is not None:
            waited = time.perf_counter()
            heard, answer, first, timings = await speculation.work
            self._timed("speculation_wait", waited)  # how long the finished turn still waited for work begun at its pause
            for stage, seconds in timings.items():
                self._record(stage, seconds)
            if speculation.previous_question != self._previous_question:
                answer = first = None  # read with another previous question: answered again below
        else:
            heard = await self._run("transcribe", self.stages.transcriber.hear, turn.audio, self._expecting)
        text = heard.text
        self.log.info("turn %d heard %s (%.1f s of audio)", turn.turn_id, self._words(text), len(turn.audio) / SPEECH_RATE)
        if not text:
            metrics.TURNS_TOTAL.labels("nothing_heard").inc()
            self._set_state(AgentState.IDLE)
            return
        await self._respond_to_text(Transcript(turn.turn_id, text, turn.ended_at, heard.sure), answer, first)

    async def _respond_to_text(self, transcript: Transcript, answer=None, first=None) -> None:
        if self.person is not None:  # a person answers: the customer's words (heard or typed) are their caption
            self.send_event(UserSaid(transcript.text, transcript.turn_id))
            self._set_state(AgentState.IDLE)
            return
        self._set_state(AgentState.THINKING)
        self.send_event(UserSaid(transcript.text, transcript.turn_id))
        checked = self._checked(transcript)
        if isinstance(checked, Reply):
            metrics.TURNS_TOTAL.labels("asked_back").inc()
            await self._speak(checked)
            return
        if checked is not transcript:
            transcript, answer, first = checked, None, None
        if answer is None:
            answer = await self._run("answer", self.stages.answerer.answer, transcript.text, self._previous_question)
        self._previous_question = transcript.text
        if self.stages.questions is not None:  # the tenant keeps what the avatar missed (masked), for its operator
            asyncio.get_running_loop().run_in_executor(self.stages.executor, self.stages.questions.keep, transcript.text, answer)
        reply = Reply(transcript.turn_id, answer.text, answer.emotion, answer.handoff, answer.confidence, answer.matched_question, transcript.ended_at)
        self.log.info(
            "turn %d answer %r confidence %.2f handoff %s", reply.turn_id, reply.matched_question, reply.confidence, reply.handoff
        )
        metrics.TURNS_TOTAL.labels("handoff" if reply.handoff else "answered").inc()
        if reply.handoff:
            self.send_event(HandedOff(reply.turn_id, "low_confidence" if answer.matched_question is None else "requested"))
        await self._speak(reply, first)

    def _asks_back(self, text: str, sure: float) -> bool:
        """A turn of a few words the decoder is unsure of: acting on it could answer "Bye!" to a faint "five"."""
        return sure < UNSURE_BELOW and len(text.split()) <= SHORT_TURN_WORDS

    def _checked(self, transcript: Transcript) -> Transcript | Reply:
        """The turn to answer (the one asked back about, once the customer says yes), or what to ask instead."""
        checking, self._checking = self._checking, None
        if checking is not None:
            said = yes_or_no(transcript.text)
            if said is True:
                self.log.info("turn %d confirms the turn asked back about", transcript.turn_id)
                return replace(transcript, text=checking, sure=1.0)
            if said is False:
                again = "Sorry. Could you say the number again, digit by digit?" if any(c.isdigit() for c in checking) else \
                    "Sorry about that. Could you say it again?"
                return Reply(transcript.turn_id, again, "neutral", ended_at=transcript.ended_at)
        if self._asks_back(transcript.text, transcript.sure):
            self.log.info("turn %d heard unsure (%.2f): asked back", transcript.turn_id, transcript.sure)
            self._checking = transcript.text
            return Reply(transcript.turn_id, check_question(transcript.text), "neutral", ended_at=transcript.ended_at)
        return transcript

    async def _speak(self, reply: Reply, first=None) -> None:
        """Speaks the reply sentence by sentence; `first`: its first sentence, already spoken and animated at the pause."""
        self.history.append(reply)
        self._expecting = expectation_after(reply.text)
        if reply.ended_at is not None:
            self._awaiting_first_audio[reply.turn_id] = reply.ended_at
        sentences = split_sentences(reply.text)
        voice = self.stages.voice
        for index, sentence in enumerate(sentences):
            if index == 0 and first is not None and first.text == sentence:
                self.output.capture(replace(first, turn_id=reply.turn_id))
                continue
            audio = await self._run("tts", voice.synthesize, sentence)
            speech = await self._run("animate", animate_sentence, self.stages.face_model, reply.turn_id, sentence, audio,
                                     voice.sample_rate, reply.emotion, index == len(sentences) - 1)
            self.output.capture(speech)

    # ----- playout events ------------------------------------------------------
    def _on_playout(self, event: PlayoutEvent) -> None:
        if self.person is not None and event.turn_id == self.person.turn_id and event.kind != "flushed":
            return  # a person's voice, block by block: no sentences to show, no state flicker
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

    # ----- a person speaking through the avatar (people/desk.py decides when) -------------------------------------
    def person_joins(self) -> None:
        """From now on the assistant is silent; the person's voice (`person_speaks`) or typed words (`say`) come out."""
        self._interrupt()
        self._turn_counter += 1
        self.person = LiveSpeech(self.stages.face_model, self._turn_counter)
        self._person_blocks = asyncio.Queue(maxsize=PERSON_BACKLOG)
        self._person_task = asyncio.get_running_loop().create_task(self._animate_person(self.person, self._person_blocks),
                                                                   name=f"person-{self.session_id}")
        self.log.info("a person speaks through the avatar")

    def person_speaks(self, audio_16k: np.ndarray) -> None:
        """The person's microphone audio as it arrives (16 kHz mono float32)."""
        if self.person is None:
            return
        for window in self.person.feed(audio_16k):
            if self._person_blocks.full():  # the face model fell behind: the oldest unheard block goes
                self._person_blocks.get_nowait()
                metrics.ERRORS.labels("person_block_dropped").inc()
            self._person_blocks.put_nowait(window)

    def person_leaves(self) -> None:
        """The assistant answers again from the next turn."""
        if self.person is None:
            return
        self.person = None
        if self._person_task is not None:
            self._person_task.cancel()
        self.output.flush()
        self.log.info("the person left; the assistant answers again")

    async def _animate_person(self, person: LiveSpeech, blocks: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        while True:
            window = await blocks.get()
            speech = await loop.run_in_executor(self.stages.executor, person.animate, window)
            if speech is not None and self.person is person:
                self.output.capture(speech)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._person_task is not None:
            self._person_task.cancel()
        if self._speculation is not None:
            self._speculation.work.cancel()
        if self.responding:
            self._responding.cancel()
            try:
                await self._responding
            except (asyncio.CancelledError, Exception):
                pass
        self.output.flush()
