"""The conversation with fake stages: turns, answers, captions, state, playout, barge-in and echo, in seconds.

The VAD and echo canceller are real; the transcriber, answerer, voice, face model and renderer are
the fakes of `fakes.py`. `test_models.py` runs the same path with the real models.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.config import HearConfig
from agent.conversation import Conversation
from agent.events import AgentState
from models.audio import from_pcm16

from .conftest import espeak, read_wav
from .fakes import FakeRenderer, FakeTranscriber, fake_stages


async def feed(conversation: Conversation, audio: np.ndarray, chunk: int = 320) -> None:
    for start in range(0, len(audio), chunk):
        conversation.hear(audio[start : start + chunk])
        await asyncio.sleep(0)


def play_out(conversation: Conversation, renderer) -> tuple[np.ndarray, list[np.ndarray]]:
    """Plays the answer the way the tracks do: 20 ms of audio at a time, a video frame every 40 ms."""
    port = conversation.output
    pcm, frames = [], []
    while port.speaking:
        pcm.append(port.next_audio_frame())
        if len(pcm) % 2 == 0:
            pose = port.compose()
            frames.append(renderer.render(pose.weights, pose.head))
    return from_pcm16(np.concatenate(pcm)), frames


def mouth_motion(frames: list[np.ndarray], rows: slice, cols: slice) -> float:
    mouth = np.stack([f[rows, cols].astype(np.float32) for f in frames])
    return float(np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3)).max())


async def test_a_spoken_question_is_heard_answered_spoken_and_mouthed(speech_dir):
    events = []
    stages = fake_stages(FakeTranscriber("What are your opening hours?"))
    conversation = Conversation("fake", stages, HearConfig(), events.append)
    audio, _ = read_wav(espeak("What are your opening hours?", speech_dir / "hours.wav"))
    await feed(conversation, audio)
    await conversation.settled()

    assert [e.text for e in events if e.type == "user"] == ["What are your opening hours?"]
    assert conversation.history[-1].matched_question == "What are your opening hours?"
    audio_out, frames = play_out(conversation, FakeRenderer())
    assert len(audio_out) / 48000 > 2.0 and np.sqrt(np.mean(audio_out**2)) > 0.02, "the answer is spoken"
    captions = [e.text for e in events if e.type == "avatar"]
    assert captions[0].startswith("We are open") and len(captions) == 2, "one caption per sentence, as it starts"
    assert mouth_motion(frames, slice(44, 58), slice(22, 42)) > 2.0, "the mouth moves while speaking"
    states = [e.state for e in events if e.type == "state"]
    assert states == [AgentState.LISTENING, AgentState.THINKING, AgentState.SPEAKING, AgentState.IDLE], "each change once"
    await conversation.close()


async def test_silence_and_noise_give_no_turn():
    events, transcriber = [], FakeTranscriber("anything")
    conversation = Conversation("quiet", fake_stages(transcriber), HearConfig(), events.append)
    await feed(conversation, np.zeros(16000 * 2, np.float32))
    await feed(conversation, (np.random.default_rng(0).standard_normal(16000 * 2) * 0.05).astype(np.float32))
    await conversation.settled()
    assert transcriber.calls == 0 and not conversation.responding
    assert events == []
    await conversation.close()


async def test_typed_question_thinks_then_hands_off_when_out_of_scope():
    events = []
    conversation = Conversation("typed", fake_stages(), HearConfig(), events.append)
    conversation.ask_text("Who won the football world cup in 1966?")
    await conversation.settled()
    assert [e.type for e in events][:3] == ["state", "user", "handoff"]
    assert events[0].state == AgentState.THINKING, "a typed question shows the agent thinking too"
    assert conversation.history[-1].handoff and "connect you to a person" in conversation.history[-1].text
    await conversation.close()


class ClickVoice:
    sample_rate = 16_000

    def synthesize(self, text: str) -> np.ndarray:
        return np.full(160, 0.1, np.float32)


async def test_a_long_call_keeps_bounded_history():
    conversation = Conversation("long", fake_stages(voice=ClickVoice()), HearConfig(), lambda event: None)
    for i in range(260):
        conversation.ask_text("what are your opening hours")
        await conversation.settled()
        conversation.output.flush()
    assert len(conversation.history) <= 200 and len(conversation.stage_timings) <= 800
    await conversation.close()


def echo_path(far_end_48k: np.ndarray, delay_s: float = 0.08, gain: float = 0.3) -> np.ndarray:
    """What a laptop microphone hears of its own speakers: later, quieter, duller, with a short room tail."""
    from scipy.signal import lfilter

    from models.audio import resample

    x = lfilter([0.5], [1, -0.5], resample(far_end_48k, 48000, 16000))
    tail = np.exp(-np.arange(480) / 80.0)
    tail[0] = 1.0
    x = np.convolve(x, tail / tail.sum() * 2.0)[: len(x)]
    return np.concatenate([np.zeros(int(delay_s * 16000)), gain * x])


def echo_of_step(far_end: list[np.ndarray], step: int, delay_s: float = 0.08, gain: float = 0.3) -> np.ndarray:
    """The microphone's echo during 20 ms step `step`, from the last second the avatar played (older sound has died away)."""
    window = far_end[-50:]
    first = len(far_end) - len(window)  # the step the window starts at
    echo = echo_path(np.concatenate(window), delay_s, gain)
    return echo[(step - first) * 320 : (step - first + 1) * 320]


async def talk_over_the_avatar(conversation, interruption: np.ndarray | None, onset_s: float = 2.0, echo_gain: float = 0.3) -> float | None:
    """Runs the call's clock in 20 ms steps: the avatar speaks, its echo (and then maybe the customer) reach the mic.

    Returns the milliseconds, on that audio clock, from the customer's first sound to the avatar's output
    falling silent; -1 if its own echo silenced it first, None if it never stopped.
    """
    noise = np.random.default_rng(0).normal(0, 0.002, 16000 * 10).astype(np.float32)
    onset = int(onset_s / 0.02)
    first_sound = int(np.argmax(np.abs(interruption) > 0.02)) if interruption is not None else 0
    far_end = []
    for step in range(onset + 40):
        far_end.append(from_pcm16(conversation.output.next_audio_frame()))  # the audio track's 20 ms
        mic = noise[step * 320 : (step + 1) * 320].copy()
        echo = echo_of_step(far_end, step, gain=echo_gain)
        mic[: len(echo)] += echo
        if interruption is not None and step >= onset:
            part = interruption[(step - onset) * 320 : (step - onset + 1) * 320]
            mic[: len(part)] += part
        conversation.hear(mic)
        await asyncio.sleep(0)
        if not conversation.output.speaking:
            return -1.0 if interruption is None or step < onset else ((step + 1 - onset) * 320 - first_sound) / 16
    return None


LONG_ANSWER = ("Thanks for waiting. Your refund was approved this morning, and the money should be back on your card "
               "within five working days. Is there anything else I can help you with today?")


async def test_echo_does_not_interrupt_but_the_customer_does_at_once(speech_dir):
    events = []
    conversation = Conversation("barge", fake_stages(), HearConfig(), events.append)
    await conversation.say(LONG_ANSWER)
    interruption, _ = read_wav(espeak("Sorry, wait a moment please.", speech_dir / "interrupt.wav", lead_s=0.0, tail_s=0.6))
    speech = np.flatnonzero(np.abs(interruption) > 0.02)
    customer_speaking_ms = (speech[-1] - speech[0]) / 16
    latency_ms = await talk_over_the_avatar(conversation, 0.8 * interruption)
    assert latency_ms is not None and latency_ms > 0, "two seconds of the avatar's own echo must not stop it"
    print(f"barge-in: avatar output silent {latency_ms:.0f} ms after the customer's first sound, with echo on the line")
    assert latency_ms < customer_speaking_ms / 2, "the avatar must stop while the customer is still starting to speak"
    assert [e.turn for e in events if e.type == "interrupted"] == [1]
    assert not conversation.output.speaking, "the rest of the answer is dropped, not paused"
    await conversation.close()


async def test_without_echo_cancellation_the_echo_would_interrupt():
    conversation = Conversation("echo-off", fake_stages(), HearConfig(echo_cancellation="never"), lambda event: None)
    await conversation.say(LONG_ANSWER)
    assert await talk_over_the_avatar(conversation, None) == -1.0, "the simulated echo is loud enough to matter"
    await conversation.close()


async def test_a_page_whose_browser_cancels_echo_keeps_the_residue_gate_and_the_barge_in(speech_dir):
    """echo_cancellation: auto. The widget says Chromium cancels echo: the server's canceller stands down (a loud
    raw echo now interrupts, as with none), while the weak echo a browser's canceller lets through is still gated
    and the customer still interrupts at once."""
    said_nothing = Conversation("unsaid", fake_stages(), HearConfig(), lambda event: None)
    said_nothing.microphone_said(None)
    assert said_nothing.echo.cancelling, "a page that does not say gets the server's canceller"
    await said_nothing.close()
    always = Conversation("always", fake_stages(), HearConfig(echo_cancellation="always"), lambda event: None)
    always.microphone_said(True)
    assert always.echo.cancelling
    await always.close()

    def trusting():
        conversation = Conversation("trusted", fake_stages(), HearConfig(), events.append)
        conversation.microphone_said(True)
        assert not conversation.echo.cancelling
        return conversation

    events = []
    raw = trusting()
    await raw.say(LONG_ANSWER)
    assert await talk_over_the_avatar(raw, None, echo_gain=0.6) == -1.0, "the server's canceller is off (it holds this echo)"
    await raw.close()
    ungated = Conversation("ungated", fake_stages(), HearConfig(echo_cancellation="never"), lambda event: None)
    await ungated.say(LONG_ANSWER)
    assert await talk_over_the_avatar(ungated, None, echo_gain=0.08) == -1.0, "this leak interrupts with no gate"
    await ungated.close()
    leaky = trusting()
    await leaky.say(LONG_ANSWER)
    assert await talk_over_the_avatar(leaky, None, echo_gain=0.08) is None, "the gate holds back a weak leak"
    await leaky.close()
    events.clear()
    customer = trusting()
    await customer.say(LONG_ANSWER)
    interruption, _ = read_wav(espeak("Sorry, wait a moment please.", speech_dir / "interrupt.wav", lead_s=0.0, tail_s=0.6))
    latency_ms = await talk_over_the_avatar(customer, 0.8 * interruption, echo_gain=0.08)
    assert latency_ms is not None and latency_ms > 0 and [e.turn for e in events if e.type == "interrupted"] == [1]
    await customer.close()


def test_echo_cancellation_takes_its_old_switch_and_refuses_nonsense():
    assert HearConfig(echo_cancellation=True).echo_cancellation == "always"
    assert HearConfig(echo_cancellation=False).echo_cancellation == "never"  # YAML's off reads as false
    assert HearConfig().echo_cancellation == "auto"
    with pytest.raises(ValueError, match="auto"):
        HearConfig(echo_cancellation="sometimes")


@pytest.mark.parametrize("gain,delay_s", [(0.3, 0.08), (0.6, 0.2)])
async def test_echo_alone_never_interrupts(gain, delay_s):
    events = []
    conversation = Conversation("echo", fake_stages(), HearConfig(), events.append)
    await conversation.say(LONG_ANSWER)
    far_end, steps = [], 0
    while conversation.output.speaking and steps < 600:
        far_end.append(from_pcm16(conversation.output.next_audio_frame()))
        echo = echo_of_step(far_end, steps, delay_s, gain)
        mic = np.zeros(320, np.float32)
        mic[: len(echo)] += echo
        conversation.hear(mic)
        steps += 1
        await asyncio.sleep(0)
    assert not [e for e in events if e.type == "interrupted"], "the avatar interrupted itself"
    assert [e.state for e in events if e.type == "state"][-1] == AgentState.IDLE, "the whole answer was said"
    await conversation.close()


class BrokenAnswerer:
    def __init__(self) -> None:
        self.broken = True

    def answer(self, text: str, previous: str | None = None):
        if self.broken:
            raise RuntimeError("the FAQ index is gone")
        from .fakes import FakeAnswerer

        return FakeAnswerer().answer(text, previous)


async def test_a_stage_that_fails_tells_the_page_and_the_call_goes_on():
    events, answerer = [], BrokenAnswerer()
    conversation = Conversation("broken", fake_stages(answerer=answerer), HearConfig(), events.append)
    conversation.ask_text("What are your opening hours?")
    await conversation.settled()
    errors = [e for e in events if e.type == "error"]
    assert [e.message for e in errors] == ["Sorry, something went wrong while answering."], "a clear error, not a traceback"
    assert events[-1].type == "state" and events[-1].state == AgentState.IDLE, "the call is ready for the next question"
    answerer.broken = False
    conversation.ask_text("What are your opening hours?")
    await conversation.settled()
    assert conversation.history[-1].matched_question == "What are your opening hours?"
    await conversation.close()


async def test_a_typed_question_is_cut_to_its_first_500_characters():
    from agent.conversation import MAX_TYPED_CHARS

    events = []
    conversation = Conversation("long-text", fake_stages(voice=ClickVoice()), HearConfig(), events.append)
    conversation.ask_text("  what are your opening hours " + "please " * 1000)
    await conversation.settled()
    [said] = [e.text for e in events if e.type == "user"]
    assert len(said) == MAX_TYPED_CHARS and said.startswith("what are your opening hours")
    assert conversation.history[-1].matched_question == "What are your opening hours?"
    await conversation.close()


async def test_a_customer_who_never_pauses_is_answered_after_max_turn_s(speech_dir):
    audio, _ = read_wav(espeak("I would like to know about my order and my refund and my delivery and my account "
                               "and my password and my payment and my subscription and my address",
                               speech_dir / "endless.wav", lead_s=0.0, tail_s=0.0))
    loud = np.flatnonzero(np.abs(audio) > 0.01)
    audio = audio[loud[0] : loud[-1]]  # no quiet at either end: twice over, it is one long stretch of speech
    assert len(audio) / 16000 > 4.0
    answered = {}
    for max_turn_s in (20.0, 2.0):
        conversation = Conversation("endless", fake_stages(FakeTranscriber("What are your opening hours?")), HearConfig(max_turn_s=max_turn_s),
                                    lambda event: None)
        await feed(conversation, np.concatenate([audio, audio]))  # seconds of speech, never the end-of-turn silence
        await conversation.settled()
        answered[max_turn_s] = len(conversation.history)
        await conversation.close()
    assert answered == {20.0: 0, 2.0: answered[2.0]} and answered[2.0] >= 1, "only the limit ends a turn that never pauses"


async def test_a_busy_end_of_turn_model_is_asked_again_only_once_it_has_answered(speech_dir):
    """On a busy box a judgment waits its turn in the model queue: the rechecks of the same pause must not queue a
    question each (five in a 1.6 s wait at 300 ms), ahead of the transcriptions and answers of every call."""
    import threading
    import time

    class SlowUnsureModel:
        def __init__(self) -> None:
            self.asked, self.at_once, self._running, self._lock = 0, 0, 0, threading.Lock()

        def complete(self, audio: np.ndarray) -> float:
            with self._lock:
                self.asked += 1
                self._running += 1
                self.at_once = max(self.at_once, self._running)
            time.sleep(1.0)  # behind other calls' work
            with self._lock:
                self._running -= 1
            return 0.1  # not done: only the long silence ends the turn

    from agent import metrics

    def questions(outcome: str) -> float:
        return metrics.REGISTRY.get_sample_value("avatar_end_of_turn_questions_total", {"outcome": outcome}) or 0.0

    busy = questions("busy")
    model = SlowUnsureModel()
    stages = fake_stages(FakeTranscriber("What are your opening hours?"), end_of_turn=model)
    hear = HearConfig(turn_pause_ms=300, turn_recheck_ms=300, turn_wait_ms=1600)
    conversation = Conversation("slow-judge", stages, hear, lambda event: None)
    audio, _ = read_wav(espeak("What are your opening hours?", speech_dir / "slow-judge.wav", lead_s=0.2, tail_s=0.0))
    start = time.perf_counter()
    for i in range(0, len(audio) + 32000, 320):  # in real time, with 2 s of silence after the question
        conversation.hear(audio[i : i + 320] if i < len(audio) else np.zeros(320, np.float32))
        await asyncio.sleep(max(0.0, start + (i + 320) / 16000 - time.perf_counter()))
    await conversation.settled()
    assert len(conversation.history) == 1, "the long silence still ends the turn, and it is answered"
    assert model.at_once == 1 and 1 <= model.asked <= 2, f"asked {model.asked} times, {model.at_once} at once"
    assert questions("busy") > busy, "the rechecks it held back are counted on /metrics"
    await conversation.close()


async def test_a_short_turn_heard_unsure_is_asked_back_not_answered_and_a_yes_answers_it(speech_dir):
    events, transcriber = [], FakeTranscriber("hours", sure=0.2)
    conversation = Conversation("unsure", fake_stages(transcriber), HearConfig(), events.append)
    audio, _ = read_wav(espeak("hours", speech_dir / "hours-word.wav"))
    await feed(conversation, audio)
    await conversation.settled()
    assert conversation.history[-1].text == "Sorry, did you say hours?" and conversation.history[-1].matched_question is None
    assert not [e for e in events if e.type == "handoff"], "an unsure word is neither answered nor handed off"
    assert [e.text for e in events if e.type == "user"] == ["hours"], "the caption shows what was heard"

    transcriber.text, transcriber.sure = "Yes.", 0.9
    await feed(conversation, audio)
    await conversation.settled()
    assert conversation.history[-1].matched_question == "What are your opening hours?", "the yes answers the turn asked back about"

    transcriber.text, transcriber.sure = "hours", 0.2
    await feed(conversation, audio)
    await conversation.settled()
    transcriber.text, transcriber.sure = "No.", 0.9
    await feed(conversation, audio)
    await conversation.settled()
    assert conversation.history[-1].text == "Sorry about that. Could you say it again?"
    transcriber.text, transcriber.sure = "Where is my password?", 0.3  # a longer turn is answered, however unsure
    await feed(conversation, audio)
    await conversation.settled()
    assert conversation.history[-1].matched_question == "How do I reset my password?"
    await conversation.close()


async def test_after_a_question_for_a_number_the_transcriber_expects_one(speech_dir):
    from agent.messages import Answer

    from .fakes import FakeAnswerer

    transcriber = FakeTranscriber("my order")
    answerer = FakeAnswerer({"order": Answer("I can look that up. What is your order number?", "neutral", 0.9, False, "Where is my order?")})
    conversation = Conversation("number", fake_stages(transcriber, answerer=answerer), HearConfig(), lambda event: None)
    audio, _ = read_wav(espeak("where is my order", speech_dir / "order-where.wav"))
    await feed(conversation, audio)
    await conversation.settled()
    assert {e.kind for e in transcriber.expected} == {"open"}, "the first turn is open"
    transcriber.expected.clear()
    await feed(conversation, audio)
    await conversation.settled()
    assert transcriber.expected and {e.kind for e in transcriber.expected} == {"number"}, transcriber.expected
    await conversation.close()
