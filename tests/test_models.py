"""The conversation with the real models: Whisper, the FAQ matcher, the Piper voice and our face model.

`test_conversation.py` covers the behaviour with fakes; these check that the real stages keep the same promises.
"""
from __future__ import annotations

import numpy as np

from agent.conversation import Conversation

from .conftest import espeak, read_wav, renderer_for
from .test_conversation import LONG_ANSWER, feed, mouth_motion, play_out, talk_over_the_avatar


async def test_question_wav_gives_transcript_answer_audio_and_moving_mouth(engines, config, speech_dir, avatar):
    events = []
    conversation = Conversation("test", engines.stages_for(config.tenant("demo")), config.hear, events.append)
    audio, _ = read_wav(espeak("What are your opening hours?", speech_dir / "hours.wav"))
    await feed(conversation, audio)
    await conversation.settled()

    user = [e for e in events if e.type == "user"]
    assert len(user) == 1 and "opening hours" in user[0].text.lower()
    reply = conversation.history[-1]
    assert reply.matched_question == "What are your opening hours?" and not reply.handoff

    renderer = renderer_for(avatar)
    try:
        audio_out, frames = play_out(conversation, renderer)
    finally:
        renderer.close()
    assert len(audio_out) / 48000 > 2.0, "the answer should take seconds to say"
    assert np.sqrt(np.mean(audio_out**2)) > 0.02, "answer audio is silent"
    captions = [e.text for e in events if e.type == "avatar"]
    assert captions and captions[0].startswith("We are open")
    assert mouth_motion(frames, slice(150, 215), slice(90, 166)) > 2.0, "the mouth region should move while speaking"
    await conversation.close()


async def test_the_real_voice_echo_does_not_interrupt_but_the_customer_does(engines, config, speech_dir):
    events = []
    conversation = Conversation("barge-real", engines.stages_for(config.tenant("demo")), config.hear, events.append)
    await conversation.say(LONG_ANSWER)
    interruption, _ = read_wav(espeak("Sorry, wait a moment please.", speech_dir / "interrupt.wav", lead_s=0.0, tail_s=0.6))
    latency_ms = await talk_over_the_avatar(conversation, 0.8 * interruption)
    assert latency_ms is not None and latency_ms > 0, "two seconds of the avatar's own echo must not stop it"
    print(f"barge-in (Piper voice): avatar output silent {latency_ms:.0f} ms after the customer's first sound")
    assert any(e.type == "interrupted" for e in events)
    await conversation.close()
