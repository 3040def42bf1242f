"""A hand-off waits for a person, an operator takes the call over through the avatar and hands it back (aiortc on both
ends, fake models); who may join, and what happens when a side goes away."""
from __future__ import annotations

import asyncio
import json
import logging

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from agent.calls.local import LocalCalls
from models.arkit import INDEX
from agent.config import HandoffConfig, TenantConfig
from agent.transport.server import CALLS, create_app
from agent.transport.webrtc import WebRtcCall

from .conftest import espeak, until
from .fakes import FakeEngines, FakeTranscriber

DEMO = {"Authorization": "Bearer demo-secret-0123456789abcdef"}
SHOP = {"Authorization": "Bearer shop-secret-0123456789abcdef"}


@pytest.fixture
async def server(config, monkeypatch):
    """The customer asks something no FAQ entry answers: the fake answerer hands off."""
    monkeypatch.setenv("TEST_TOKEN_DEMO", "demo-secret-0123456789abcdef")
    monkeypatch.setenv("TEST_TOKEN_SHOP", "shop-secret-0123456789abcdef")
    cfg = config.model_copy(deep=True)
    cfg.tenants = {"demo": TenantConfig(operator_token_env="TEST_TOKEN_DEMO"), "shop": TenantConfig(operator_token_env="TEST_TOKEN_SHOP")}
    cfg.handoff = HandoffConfig(wait_s=600)
    engines = FakeEngines(FakeTranscriber("Can you explain the clause in my contract about liability?"))
    async with TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall)))) as client:
        yield client
    engines.close()


async def _collect(track, into: list[np.ndarray]) -> None:
    """Every audio frame the track brings, as float samples, until it ends."""
    while True:
        try:
            frame = await track.recv()
        except Exception:
            return
        into.append(frame.to_ndarray().reshape(-1).astype(np.float32) / 32768)


async def _customer(client, wav):
    pc = RTCPeerConnection()
    player = MediaPlayer(str(wav))
    pc.addTrack(player.audio)
    pc.addTransceiver("video", direction="recvonly")
    channel = pc.createDataChannel("events")
    events: list[dict] = []
    channel.on("message", lambda m: events.append(json.loads(m)))
    heard: list[np.ndarray] = []
    pc.on("track", lambda t: asyncio.ensure_future(_collect(t, heard)) if t.kind == "audio" else None)
    await pc.setLocalDescription(await pc.createOffer())
    r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
    assert r.status == 200, await r.text()
    body = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
    return pc, player, channel, events, heard, body["session"]


async def _operator_offer(wav=None, ping: bool = True):
    pc = RTCPeerConnection()
    player = MediaPlayer(str(wav)) if wav is not None else None
    if player is not None:
        pc.addTrack(player.audio)
    else:
        pc.addTransceiver("audio", direction="sendrecv")
    channel = pc.createDataChannel("operator")
    events: list[dict] = []
    channel.on("message", lambda m: events.append(json.loads(m)))
    customer_audio: list[np.ndarray] = []
    pc.on("track", lambda t: asyncio.ensure_future(_collect(t, customer_audio)))

    async def keep_alive():  # as the console does: the server takes a silent page for a lost one
        while pc.connectionState != "closed":
            if channel.readyState == "open":
                channel.send(json.dumps({"type": "ping"}))
            await asyncio.sleep(1.0)

    if ping:
        asyncio.ensure_future(keep_alive())
    await pc.setLocalDescription(await pc.createOffer())
    return pc, player, channel, events, customer_audio


def _loud(chunks: list[np.ndarray], since: int) -> int:
    return sum(float(np.abs(c).max()) > 0.05 for c in chunks[since:])


@pytest.mark.slow
async def test_a_hand_off_waits_a_person_takes_over_through_the_avatar_and_hands_back(server, speech_dir):
    question = espeak("Can you explain the clause in my contract about liability?", speech_dir / "liability.wav", rate=48000,
                      lead_s=2.5, tail_s=30.0)
    customer, player, channel, events, heard, session = await _customer(server, question)
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "waiting" for e in events), 60), events
    assert await until(lambda: any(e["type"] == "avatar" and "find a person" in e["text"] for e in events), 30), events

    live = await (await server.get("/operator/demo/live", headers=DEMO)).json()
    [call] = live["calls"]
    assert call["session"] == session and call["person"] == "waiting" and live["waiting"] == [session]
    assert call["turns"] == 1 and call["handoffs"] == 1 and live["last_hour"]["handoffs"] == 1
    assert any(who == "customer" and "contract" in words for who, words in call["transcript"]), call["transcript"]
    assert (await (await server.get("/operator/shop/live", headers=SHOP)).json())["calls"] == [], "another tenant sees none of it"

    # Who may join: a signed-in operator of the call's tenant only, and only a call in progress.
    pc, op_player, op_channel, op_events, customer_audio = await _operator_offer(espeak(
        "Hello, this is Sam from the legal team. I can explain that clause.", speech_dir / "operator.wav", rate=48000, lead_s=0.5, tail_s=1.0))
    offer = {"sdp": pc.localDescription.sdp, "type": "offer"}
    assert (await server.post(f"/operator/demo/calls/{session}/join", json=offer)).status == 401
    assert (await server.post(f"/operator/demo/calls/{session}/join", json=offer, headers=SHOP)).status == 403
    assert (await server.post(f"/operator/shop/calls/{session}/join", json=offer, headers=SHOP)).status == 404, "not shop's call"
    assert (await server.post("/operator/demo/calls/0123456789ab/join", json=offer, headers=DEMO)).status == 404
    assert (await server.post(f"/operator/demo/calls/{session}/join", json={"sdp": 5}, headers=DEMO)).status == 400

    before = len(heard)
    r = await server.post(f"/operator/demo/calls/{session}/join", json=offer, headers=DEMO)
    assert r.status == 200, await r.text()
    answer = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "joined" for e in events), 20), events
    assert await until(lambda: any(e["type"] == "transcript" and e["who"] == "customer" for e in op_events), 20), op_events
    second, _, _, _, _ = await _operator_offer()
    r = await server.post(f"/operator/demo/calls/{session}/join", json={"sdp": second.localDescription.sdp, "type": "offer"}, headers=DEMO)
    assert r.status == 409, "one person at a time"
    await second.close()

    # The operator's voice reaches the customer through the avatar, with the mouth moving; the operator hears the customer.
    the_call = server.server.app[CALLS].call(session)
    mouth: list[float] = []
    original = the_call.output.capture
    the_call.output.capture = lambda speech: (mouth.append(float(speech.weights[:, INDEX['jawOpen']].max())), original(speech))[1]
    assert await until(lambda: _loud(heard, before) >= 25, 60), "the operator's voice was not heard by the customer"
    assert mouth and max(mouth) > 0.1, mouth
    assert await until(lambda: len(customer_audio) > 50, 20), "the operator hears the customer's microphone"
    assert not any(e["type"] == "avatar" and "liability" in e["text"].lower() for e in events), "the assistant stays silent"

    op_channel.send(json.dumps({"type": "say", "text": "I will send you the details by e-mail."}))
    assert await until(lambda: any(e["type"] == "avatar" and "details by e-mail" in e["text"] for e in events), 30), events
    live = await (await server.get("/operator/demo/live", headers=DEMO)).json()
    assert live["calls"][0]["person"] == "person" and live["waiting"] == []

    op_channel.send(json.dumps({"type": "leave"}))
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "left" and e["reason"] == "handed_back" for e in events), 20)
    assert await until(lambda: any(e["type"] == "avatar" and "back with the assistant" in e["text"] for e in events), 30), events
    channel.send(json.dumps({"type": "text", "text": "How do I reset my password?"}))
    assert await until(lambda: any(e["type"] == "avatar" and "forgot password" in e["text"] for e in events), 30), "the assistant answers again"

    for p in (player, op_player):
        p.audio.stop()
    await pc.close()
    await customer.close()
    assert await until(lambda: not len(server.server.app[CALLS].directory), 20)


@pytest.mark.slow
async def test_an_operator_who_drops_gives_the_call_back_and_a_customer_who_hangs_up_leaves_the_queue(server, speech_dir):
    question = espeak("Can you explain the clause in my contract about liability?", speech_dir / "liability.wav", rate=48000,
                      lead_s=2.5, tail_s=30.0)
    customer, player, channel, events, _, session = await _customer(server, question)
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "waiting" for e in events), 60), events
    pc, _, _, _, _ = await _operator_offer()
    answer = await (await server.post(f"/operator/demo/calls/{session}/join", json={"sdp": pc.localDescription.sdp, "type": "offer"},
                                      headers=DEMO)).json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "joined" for e in events), 20)
    await pc.close()  # the operator's page is gone
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "left" and e["reason"] == "lost" for e in events), 30), events
    assert await until(lambda: any(e["type"] == "avatar" and "connection dropped" in e["text"] for e in events), 30), events

    # Waiting again, then the customer hangs up: the queue forgets the call at once.
    channel.send(json.dumps({"type": "text", "text": "Something about my contract please"}))
    assert await until(lambda: (server.server.app[CALLS].call(session).desk.status == "waiting"), 30)
    channel.send(json.dumps({"type": "bye"}))
    assert await until(lambda: not len(server.server.app[CALLS].directory), 10)
    live = await (await server.get("/operator/demo/live", headers=DEMO)).json()
    assert live["calls"] == [] and live["waiting"] == []
    player.audio.stop()
    await customer.close()
    assert (await server.post(f"/operator/demo/calls/{session}/join", json={"sdp": "v=0", "type": "offer"}, headers=DEMO)).status == 404


@pytest.mark.slow
async def test_an_operator_page_that_falls_silent_is_taken_for_gone(server, speech_dir, monkeypatch):
    """Its network lost without a goodbye: no ping within HEARTBEAT_S, and the assistant takes the call back."""
    from agent.transport import operator_leg

    monkeypatch.setattr(operator_leg, "HEARTBEAT_S", 2.0)
    question = espeak("Can you explain the clause in my contract about liability?", speech_dir / "liability.wav", rate=48000,
                      lead_s=2.5, tail_s=30.0)
    customer, player, _, events, _, session = await _customer(server, question)
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "waiting" for e in events), 60), events
    pc, _, _, _, _ = await _operator_offer(ping=False)
    answer = await (await server.post(f"/operator/demo/calls/{session}/join", json={"sdp": pc.localDescription.sdp, "type": "offer"},
                                      headers=DEMO)).json()
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "joined" for e in events), 20)
    assert await until(lambda: any(e["type"] == "person" and e["status"] == "left" and e["reason"] == "lost" for e in events), 30), events
    player.audio.stop()
    await pc.close()
    await customer.close()


async def test_nobody_free_in_time_tells_the_customer_how_to_be_contacted(config, monkeypatch):
    from agent.conversation import Conversation
    from agent.events import HandedOff
    from agent.people.desk import PersonDesk

    from .fakes import fake_stages

    sent = []
    conversation = Conversation("t", fake_stages(), config.hear, sent.append)
    settings = HandoffConfig(wait_s=1, none_free_message="Nobody is free: write to help@example.com.")
    desk = PersonDesk(conversation, settings, sent.append, logging.LoggerAdapter(logging.getLogger("t"), {}))
    desk.seen(HandedOff(1, "low_confidence"))
    assert desk.status == "waiting"
    await asyncio.sleep(1.5)
    assert desk.status == "assistant"
    assert any(getattr(e, "status", "") == "none_free" and "help@example.com" in e.message for e in sent), sent
    await conversation.settled()
    assert any("help@example.com" in r.text for r in conversation.history), "the customer hears it too"
    await conversation.close()


async def test_a_persons_voice_moves_the_face_in_both_sinks(config):
    """The same output port serves a person's voice: the browser-poses sink sends poses whose mouth moves with it
    (the server-video sink is the call test above)."""
    from agent.conversation import Conversation
    from agent.output.poses import read_message
    from agent.output.sinks import BrowserPoses
    from benchmarks.speech_sets import spoken

    from .fakes import fake_stages

    conversation = Conversation("t", fake_stages(), config.hear, lambda event: None)
    sent: list[bytes] = []
    conversation.output.attach(BrowserPoses(conversation.output, sent.append, lambda: 0))
    conversation.person_joins()
    voice = spoken("Hello, this is Sam from the support team, how can I help?", 16000)
    for start in range(0, len(voice) + 16000, 320):
        conversation.person_speaks(voice[start : start + 320] if start < len(voice) else np.zeros(320, np.float32))
        await asyncio.sleep(0)
    assert await until(lambda: conversation.person.voiced_blocks >= 3 and conversation.output.speaking, 30)  # off the event loop
    for _ in range(200):
        conversation.output.next_audio_frame()
    jaw = [weights[INDEX["jawOpen"]] for m in sent for kind, _, weights, _ in read_message(m) if kind == "pose"]
    assert conversation.person.voiced_blocks >= 3 and max(jaw) > 0.1, (conversation.person.voiced_blocks, max(jaw, default=0))
    await conversation.close()
