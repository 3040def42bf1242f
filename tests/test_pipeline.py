"""The whole conversation pipeline without WebRTC: question WAV in, answer audio and frames out."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from agent.conversation import Conversation
from agent.render.renderer import FaceRenderer
from agent.transport.tracks import AvatarVideoTrack

from .conftest import espeak, read_wav


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
    renderer = FaceRenderer(avatar, 256, 256)
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


async def test_customer_interrupting_silences_the_avatar_within_300_ms(engines, config, speech_dir):
    """A recorded interruption fed in real-time steps while the avatar talks: how long until its output is silent."""
    events: list[dict] = []
    conversation = Conversation("barge-timing", engines, config, events.append)
    await conversation.say("Thanks for waiting. Your refund was approved this morning, and the money should be back on your card "
                           "within five working days. Is there anything else I can help you with today?")
    interruption, _ = read_wav(espeak("Sorry, wait a moment please.", speech_dir / "interrupt.wav", lead_s=0.0, tail_s=0.6))
    first_sound = int(np.argmax(np.abs(interruption) > 0.02))
    noise = np.random.default_rng(0).normal(0, 0.002, 16000 * 4).astype(np.float32)
    onset_step, stopped_at = 50, None  # the customer starts talking after a second of the answer
    for step in range(onset_step + 40):
        conversation.playout.next_audio_frame()  # the audio track hands out 20 ms of the answer
        mic = noise[step * 320 : (step + 1) * 320].copy()
        if step >= onset_step:
            part = interruption[(step - onset_step) * 320 : (step - onset_step + 1) * 320]
            mic[: len(part)] += part
        conversation.hear(mic)
        await asyncio.sleep(0)
        if not conversation.playout.speaking:
            stopped_at = step
            break
    assert stopped_at is not None and stopped_at >= onset_step, "the avatar must keep talking until the customer speaks"
    latency_ms = ((stopped_at + 1 - onset_step) * 320 - first_sound) / 16
    print(f"barge-in: avatar output silent {latency_ms:.0f} ms after the customer's first sound")
    assert latency_ms <= 300
    assert any(e["type"] == "interrupted" for e in events)
    await conversation.close()
