"""The whole conversation pipeline without WebRTC: question WAV in, answer audio and frames out."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.conversation import Conversation

from agent.transport.tracks import AvatarVideoTrack

from .conftest import espeak, read_wav, renderer_for


async def _feed(conversation: Conversation, audio: np.ndarray, chunk: int = 320) -> None:
    for start in range(0, len(audio), chunk):
        conversation.hear(audio[start : start + chunk])
        await asyncio.sleep(0)


async def _wait_for_reply(conversation: Conversation, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while conversation._responding is None or not conversation._responding.done():
        assert asyncio.get_running_loop().time() < deadline, "no reply in time"
        await asyncio.sleep(0.05)


async def test_question_wav_gives_transcript_answer_audio_and_moving_mouth(engines, config, speech_dir, avatar):
    events: list[dict] = []
    conversation = Conversation("test", engines, config, events.append)
    audio, _ = read_wav(espeak("What are your opening hours?", speech_dir / "hours.wav"))
    await _feed(conversation, audio)
    await _wait_for_reply(conversation)

    user = [e for e in events if e["type"] == "user"]
    assert len(user) == 1
    assert "opening hours" in user[0]["text"].lower()
    reply = conversation.history[-1]
    assert reply.matched_question == "What are your opening hours?"
    assert not reply.handoff

    # Play the answer out the way the audio track does, 20 ms at a time, rendering frames alongside.
    renderer = renderer_for(avatar)
    track = AvatarVideoTrack(conversation.playout, renderer=None, fps=25)  # only its pose logic is used here
    pcm, frames = [], []
    t = 0.0
    while conversation.playout.speaking:
        pcm.append(conversation.playout.next_audio_frame())
        t += 0.02
        if len(pcm) % 2 == 0:  # 25 fps video against 50 audio frames per second
            weights, head = track.current_weights(t)
            frames.append(renderer.render(weights, head))
    renderer.close()
    out = np.concatenate(pcm).astype(np.float32) / 32768
    assert len(out) / 48000 > 2.0, "the answer should take seconds to say"
    assert np.sqrt(np.mean(out**2)) > 0.02, "answer audio is silent"
    captions = [e["text"] for e in events if e["type"] == "avatar"]
    assert captions and captions[0].startswith("We are open")

    mouth = np.stack([f[150:215, 90:166].astype(np.float32) for f in frames])
    change = np.abs(np.diff(mouth, axis=0)).mean(axis=(1, 2, 3))
    assert change.max() > 2.0, "the mouth region should move while speaking"
    await conversation.close()


async def test_silence_and_noise_give_no_turn(engines, config):
    events: list[dict] = []
    conversation = Conversation("quiet", engines, config, events.append)
    rng = np.random.default_rng(0)
    await _feed(conversation, np.zeros(16000 * 2, np.float32))
    await _feed(conversation, (rng.standard_normal(16000 * 2) * 0.05).astype(np.float32))
    await asyncio.sleep(0.1)
    assert conversation._responding is None
    assert not [e for e in events if e["type"] in ("user", "avatar")]
    await conversation.close()


async def test_typed_question_and_out_of_scope_handoff(engines, config):
    events: list[dict] = []
    conversation = Conversation("typed", engines, config, events.append)
    conversation.ask_text("Who won the football world cup in 1966?")
    await _wait_for_reply(conversation)
    assert any(e["type"] == "handoff" for e in events)
    assert conversation.history[-1].handoff
    assert "connect you to a person" in conversation.history[-1].text
    await conversation.close()


def _echo_path(far_end_48k: np.ndarray, delay_s: float = 0.08, gain: float = 0.3) -> np.ndarray:
    """What a laptop microphone hears of its own speakers: later, quieter, duller, with a short room tail."""
    from scipy.signal import lfilter

    from agent.audio import resample

    x = lfilter([0.5], [1, -0.5], resample(far_end_48k, 48000, 16000))
    tail = np.exp(-np.arange(480) / 80.0)
    tail[0] = 1.0
    x = np.convolve(x, tail / tail.sum() * 2.0)[: len(x)]
    return np.concatenate([np.zeros(int(delay_s * 16000)), gain * x])


async def _talk_over_the_avatar(conversation, interruption: np.ndarray | None, onset_s: float = 2.0) -> float | None:
    """Runs the call's clock in 20 ms steps: the avatar speaks, its echo (and then maybe the customer) reach the mic.

    Returns the milliseconds from the customer's first sound to the avatar's output falling silent,
    -1 if its own echo silenced it first, None if it never stopped.
    """
    noise = np.random.default_rng(0).normal(0, 0.002, 16000 * 10).astype(np.float32)
    onset = int(onset_s / 0.02)
    first_sound = int(np.argmax(np.abs(interruption) > 0.02)) if interruption is not None else 0
    far_end = []
    for step in range(onset + 40):
        far_end.append(conversation.playout.next_audio_frame().astype(np.float32) / 32768)  # the audio track's 20 ms
        mic = noise[step * 320 : (step + 1) * 320].copy()
        echo = _echo_path(np.concatenate(far_end))[step * 320 : (step + 1) * 320]
        mic[: len(echo)] += echo
        if interruption is not None and step >= onset:
            part = interruption[(step - onset) * 320 : (step - onset + 1) * 320]
            mic[: len(part)] += part
        conversation.hear(mic)
        await asyncio.sleep(0)
        if not conversation.playout.speaking:
            return -1.0 if interruption is None or step < onset else ((step + 1 - onset) * 320 - first_sound) / 16
    return None


LONG_ANSWER = ("Thanks for waiting. Your refund was approved this morning, and the money should be back on your card "
               "within five working days. Is there anything else I can help you with today?")


async def test_echo_does_not_interrupt_but_the_customer_does_at_once(engines, config, speech_dir):
    events: list[dict] = []
    conversation = Conversation("barge-timing", engines, config, events.append)
    await conversation.say(LONG_ANSWER)
    interruption, _ = read_wav(espeak("Sorry, wait a moment please.", speech_dir / "interrupt.wav", lead_s=0.0, tail_s=0.6))
    speech = np.flatnonzero(np.abs(interruption) > 0.02)
    customer_speaking_ms = (speech[-1] - speech[0]) / 16
    latency_ms = await _talk_over_the_avatar(conversation, 0.8 * interruption)
    assert latency_ms is not None and latency_ms > 0, "two seconds of the avatar's own echo must not stop it"
    # Timed on the call's own audio clock (20 ms steps), so the figure does not depend on the machine's speed.
    print(f"barge-in: avatar output silent {latency_ms:.0f} ms after the customer's first sound, with echo on the line")
    assert latency_ms < customer_speaking_ms / 2, "the avatar must stop while the customer is still starting to speak"
    assert any(e["type"] == "interrupted" for e in events)
    assert not conversation.playout.speaking, "the rest of the answer is dropped, not paused"
    await conversation.close()


async def test_without_echo_cancellation_the_echo_would_interrupt(engines, config):
    cfg = config.model_copy(deep=True)
    cfg.hear.echo_cancellation = False
    conversation = Conversation("echo-off", engines, cfg, lambda event: None)
    await conversation.say(LONG_ANSWER)
    assert await _talk_over_the_avatar(conversation, None) == -1.0, "the simulated echo is loud enough to matter"
    await conversation.close()
