"""A stranger with curl and a scripted WebRTC client, tried against the real server: they must not end, block, fill
or overhear anyone's call. Each test is an attack that worked before these limits, driven as an attacker would."""
from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription

from agent import metrics
from agent.calls.local import LocalCalls
from agent.cluster.front import ray_authenticates
from agent.config import ConfigError, TenantConfig, TurnConfig
from agent.events import UserSaid
from agent.output.where import choose_render
from agent.transport.server import CALLS, DRAIN, create_app
from agent.transport.webrtc import WebRtcCall

from .conftest import espeak, until
from .fakes import FakeEngines, FakeTranscriber
from .test_server import _browser_like_offer, _render_processes
from .test_takeover import DEMO, _customer, _operator_offer
from .test_takeover import server as takeover_server  # noqa: F401  (fixture)

TOKENS = {"TEST_TOKEN_DEMO": "demo-secret-0123456789abcdef", "TEST_TOKEN_SHOP": "shop-secret-0123456789abcdef"}


def _config(config, **limits):
    cfg = config.model_copy(deep=True)
    cfg.server.max_sessions = 2
    cfg.server.limits = cfg.server.limits.model_copy(update=limits)
    return cfg


@pytest.fixture
def served(config):
    """A server factory: `await served(cfg)` gives a test client on the real app with fake stages."""
    opened: list[tuple[TestClient, FakeEngines]] = []

    async def start(cfg, heard: str = "How do I reset my password?") -> TestClient:
        engines = FakeEngines(FakeTranscriber(heard))
        client = TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall))))
        await client.start_server()
        opened.append((client, engines))
        return client

    yield start  # each test closes its clients (in its own event loop); the models' threads go here
    for _, engines in opened:
        engines.close()


async def _call(client, headers=None):
    """A browser-like caller: (peer, its events, the offer's answer body)."""
    pc, channel, _ = await _browser_like_offer()
    events: list[dict] = []
    channel.on("message", lambda m: events.append(json.loads(m)))
    r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"}, headers=headers or {})
    body = await r.json()
    if r.status == 200:
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
    return pc, channel, events, r.status, body


async def test_a_stranger_can_neither_read_call_ids_nor_hang_up_a_call(served, config):
    client = await served(_config(config))
    pc, channel, events, status, body = await _call(client)
    try:
        assert status == 200 and len(body["hangup_token"]) >= 24
        session = body["session"]
        assert await until(lambda: pc.connectionState == "connected", 20)
        await until(lambda: any(e["type"] == "avatar" for e in events), 30)
        for path in ("/metrics", "/healthz", "/metrics/nodes/local"):
            assert session not in await (await client.get(path)).text(), f"{path} names no call"
        for headers in ({}, {"X-Hangup-Token": "guess"}, {"X-Hangup-Token": body["hangup_token"][:-1] + "x"}):
            r = await client.delete(f"/api/sessions/{session}", headers=headers)  # curl: no Origin header at all
            assert r.status == 404, (headers, r.status)
        assert len(client.server.app[CALLS].directory) == 1 and pc.connectionState == "connected", "the call goes on"
        r = await client.delete(f"/api/sessions/{session}", headers={"X-Hangup-Token": body["hangup_token"]})
        assert r.status == 200
        assert await until(lambda: not len(client.server.app[CALLS].directory), 10)
    finally:
        await pc.close()
        await client.close()


async def test_an_offer_that_never_connects_starts_no_renderer_and_frees_its_place(served, config):
    client = await served(_config(config, connect_s=2))
    client.server.app[CALLS].config.server.max_sessions = 1
    pc, _, _ = await _browser_like_offer()
    r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
    assert r.status == 200  # ... and the attacker never answers it: no ICE, no DTLS
    try:
        assert len(client.server.app[CALLS].directory) == 1
        await asyncio.sleep(0.5)
        assert _render_processes() == [], "no render process for a call whose media has not connected"
        assert await until(lambda: not len(client.server.app[CALLS].directory), 15), "the place is freed"
        customer, _, events, status, _ = await _call(client)
        assert status == 200, "a real customer gets the place"
        assert await until(lambda: customer.connectionState == "connected", 20)
        await customer.close()
    finally:
        await pc.close()
        await client.close()


@pytest.mark.slow
async def test_a_silent_call_ends_when_idle_and_a_long_one_at_its_limit(served, config):
    client = await served(_config(config, idle_s=10, max_call_s=3600))
    pc, channel, events, status, _ = await _call(client)
    try:
        assert status == 200
        assert await until(lambda: any(e["type"] == "ended" for e in events), 40)
        ended = next(e for e in events if e["type"] == "ended")
        assert ended["reason"] == "idle" and ended["message"]
        assert await until(lambda: not len(client.server.app[CALLS].directory), 10)
    finally:
        await pc.close()
        await client.close()
    client = await served(_config(config, idle_s=3600, max_call_s=10))
    pc, channel, events, status, _ = await _call(client)
    try:
        assert await until(lambda: channel.readyState == "open", 20)
        for _ in range(14):  # a customer who keeps typing is still held to the longest call
            channel.send(json.dumps({"type": "text", "text": "What are your opening hours?"}))
            await asyncio.sleep(1)
            if any(e["type"] == "ended" for e in events):
                break
        assert await until(lambda: any(e["type"] == "ended" for e in events), 20)
        assert next(e for e in events if e["type"] == "ended")["reason"] == "too_long"
    finally:
        await pc.close()
        await client.close()


async def test_calls_and_offers_per_address_are_capped_and_read_through_trusted_proxies_only(served, config):
    cfg = _config(config, calls_per_address=1, offers_per_minute=3)
    cfg.server.trusted_proxies = ["127.0.0.1"]
    client = await served(cfg)
    opened = []
    try:
        first = await _call(client, {"X-Forwarded-For": "203.0.113.7"})
        opened.append(first[0])
        assert first[3] == 200
        second = await _call(client, {"X-Forwarded-For": "203.0.113.7"})
        opened.append(second[0])
        assert second[3] == 429 and "calls" in second[4]["error"], second[4]
        other = await _call(client, {"X-Forwarded-For": "198.51.100.9"})
        opened.append(other[0])
        assert other[3] == 200, "another customer behind the same proxy is not refused"
        third = await _call(client, {"X-Forwarded-For": "203.0.113.7"})
        fourth = await _call(client, {"X-Forwarded-For": "203.0.113.7"})
        opened += [third[0], fourth[0]]
        assert fourth[3] == 429 and "a minute" in fourth[4]["error"], fourth[4]
    finally:
        for pc in opened:
            await pc.close()
        await client.close()
    # Without the proxy listed, a forged X-Forwarded-For does not give a stranger a fresh address.
    client = await served(_config(config, calls_per_address=1))
    opened = []
    try:
        for forged in ("192.0.2.1", "192.0.2.2"):
            pc, _, _, status, _ = await _call(client, {"X-Forwarded-For": forged})
            opened.append((pc, status))
        assert [s for _, s in opened] == [200, 429]
    finally:
        for pc, _ in opened:
            await pc.close()
        await client.close()


async def test_an_offer_with_hundreds_of_media_sections_is_refused_before_any_socket(served, config):
    client = await served(_config(config))
    pc = RTCPeerConnection()
    for _ in range(12):
        pc.addTransceiver("audio", direction="sendrecv")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
        assert r.status == 400 and "media sections" in (await r.json())["error"]
        assert not len(client.server.app[CALLS].directory)
    finally:
        await pc.close()
        await client.close()


async def test_data_channel_messages_are_bounded_in_size_and_rate(served, config):
    client = await served(_config(config, message_bytes=1024, messages_per_s=2))
    pc, channel, events, status, _ = await _call(client)
    try:
        assert await until(lambda: channel.readyState == "open", 20)
        channel.send(json.dumps({"type": "text", "text": "x" * 5000}))
        channel.send(json.dumps({"type": "x" * 900}))
        assert await until(lambda: len([e for e in events if e["type"] == "error"]) >= 2, 10)
        errors = [e["message"] for e in events if e["type"] == "error"]
        assert "at most 1024 bytes" in errors[0]
        assert len(errors[1]) < 120, "an unknown type is not echoed back at full size"
        await asyncio.sleep(2.5)  # the bucket refills
        before = len(events)
        for n in range(40):
            channel.send(json.dumps({"type": "text", "text": f"What are your opening hours? {n}"}))
        await asyncio.sleep(3)
        asked = [e for e in events[before:] if e["type"] == "user"]
        told = [e for e in events[before:] if e["type"] == "error" and "too many" in e["message"]]
        assert 1 <= len(asked) <= 10, f"{len(asked)} of 40 typed questions were answered"
        assert len(told) == 1, "the page is told once, not once a message"
        assert pc.connectionState == "connected"
    finally:
        await pc.close()
        await client.close()


async def test_events_for_a_page_that_stops_reading_are_dropped_not_queued(served, config):
    client = await served(_config(config, send_buffer_bytes=16384))
    pc, channel, events, status, body = await _call(client)
    try:
        assert await until(lambda: channel.readyState == "open", 20)
        call = client.server.app[CALLS].call(body["session"])

        class Backlogged:  # what the server's channel looks like when the page has stopped reading
            readyState, bufferedAmount, sent = "open", 10_000_000, []

            def send(self, message):
                self.sent.append(message)

        call._events = Backlogged()
        dropped = metrics.EVENTS_DROPPED._value.get()
        for n in range(50):
            call.send_event(UserSaid("x" * 1000, n))
        assert Backlogged.sent == [] and metrics.EVENTS_DROPPED._value.get() == dropped + 50
    finally:
        await pc.close()
        await client.close()


async def test_two_operators_taking_the_same_call_at_once_one_wins_and_nothing_is_orphaned(takeover_server, speech_dir):  # noqa: F811
    wav = espeak("Can you explain the clause in my contract about liability?", speech_dir / "liability-twice.wav", rate=48000)
    customer, player, _, _, _, session = await _customer(takeover_server, wav)
    legs = [await _operator_offer(), await _operator_offer()]
    try:
        call = takeover_server.server.app[CALLS].call(session)
        assert await until(lambda: call._microphone is not None, 20)
        responses = await asyncio.gather(*(takeover_server.post(
            f"/operator/demo/calls/{session}/join", json={"sdp": leg[0].localDescription.sdp, "type": "offer"}, headers=DEMO)
            for leg in legs))
        assert sorted(r.status for r in responses) == [200, 409], [r.status for r in responses]
        winner = legs[[r.status for r in responses].index(200)]
        await winner[0].setRemoteDescription(RTCSessionDescription(**{k: v for k, v in (await responses[[r.status for r in responses].index(200)].json()).items()}))
        assert call.operator is not None
        assert await until(lambda: call.operator is not None and call.operator.pc.connectionState == "connected", 20)
    finally:
        for leg in legs:
            await leg[0].close()
        player.audio.stop()
        await customer.close()


async def test_operator_tokens_weak_shared_or_not_ascii(config, monkeypatch):
    cfg = config.model_copy(deep=True)
    cfg.tenants = {"demo": TenantConfig(operator_token_env="TEST_TOKEN_DEMO"), "shop": TenantConfig(operator_token_env="TEST_TOKEN_SHOP")}
    engines = FakeEngines(FakeTranscriber(""))
    try:
        for demo, shop, said in (("change-me", TOKENS["TEST_TOKEN_SHOP"], "at least 24"),
                                 (TOKENS["TEST_TOKEN_DEMO"], TOKENS["TEST_TOKEN_DEMO"], "same operator token")):
            monkeypatch.setenv("TEST_TOKEN_DEMO", demo)
            monkeypatch.setenv("TEST_TOKEN_SHOP", shop)
            with pytest.raises(ConfigError, match=said):
                create_app(cfg, LocalCalls(engines, cfg, WebRtcCall))
        for name, value in TOKENS.items():
            monkeypatch.setenv(name, value)
        async with TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall)))) as client:
            r = await client.get("/operator/demo/versions", headers={"Authorization": "Bearer p\u00e4ssw\u00f6rd-\u2603".encode().decode("latin-1")})
            assert r.status == 401, "a token that is not ASCII is a wrong token, not a server error"
    finally:
        engines.close()


async def test_one_bad_actor_behind_the_proxy_does_not_lock_out_other_operators(config, monkeypatch):
    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    cfg = config.model_copy(deep=True)
    cfg.server.trusted_proxies = ["127.0.0.0/8"]
    cfg.tenants = {"demo": TenantConfig(operator_token_env="TEST_TOKEN_DEMO"), "shop": TenantConfig(operator_token_env="TEST_TOKEN_SHOP")}
    engines = FakeEngines(FakeTranscriber(""))
    try:
        async with TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall)))) as client:
            attacker = {"X-Forwarded-For": "203.0.113.66", "Authorization": "Bearer guess"}
            statuses = [(await client.get("/operator/demo/versions", headers=attacker)).status for _ in range(12)]
            assert statuses[-1] == 429
            for who in ("198.51.100.1", "198.51.100.2"):
                r = await client.get("/operator/shop/versions", headers={"X-Forwarded-For": who, "Authorization": f"Bearer {TOKENS['TEST_TOKEN_SHOP']}"})
                assert r.status == 200, who
                r = await client.get("/operator/shop/versions", headers={"X-Forwarded-For": who, "Authorization": "Bearer typo"})
                assert r.status == 401, "another operator's typo is a 401, not the attacker's block"
    finally:
        engines.close()


async def test_transcripts_reach_the_log_only_for_a_tenant_that_opted_in_and_then_masked(served, config, speech_dir, caplog):
    from .test_server import _browser_like_offer as offer_with_voice

    said = "My card number is 4111 1111 1111 1111 and my mail is jo@example.com"
    wav = espeak("My card number is four one one one.", speech_dir / "card-number.wav", rate=48000)
    for opted_in in (False, True):
        cfg = _config(config)
        cfg.tenants["demo"] = cfg.tenants["demo"].model_copy(update={"log_transcripts": opted_in})
        client = await served(cfg, heard=said)
        caplog.clear()
        caplog.set_level(logging.INFO, logger="agent")
        pc, channel, player = await offer_with_voice(wav)
        events: list[dict] = []
        channel.on("message", lambda m, into=events: into.append(json.loads(m)))
        r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
        body = await r.json()
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        try:
            assert await until(lambda: any(e["type"] == "user" for e in events), 60)
            await asyncio.sleep(0.5)
            heard = [rec.getMessage() for rec in caplog.records if " heard " in rec.getMessage()]
            assert heard, "the turn is logged"
            logged = "\n".join(rec.getMessage() for rec in caplog.records)
            assert "4111" not in logged and "jo@example.com" not in logged and "card number" not in logged.replace("[card]", "") or opted_in
            if opted_in:
                assert "card number" in heard[0] and "4111" not in heard[0] and "[email]" in heard[0]
            else:
                assert "card" not in logged and "words" in heard[0]
        finally:
            player.audio.stop()
            await pc.close()
            await client.close()


def test_what_a_page_says_of_itself_cannot_forge_log_lines():
    reason = choose_render("auto", {"webgl2": True, "avatar": False, "error": "x\n2026-01-01 INFO [-] agent: forged" + "y" * 500}, True).reason
    assert "\n" not in reason and len(reason) < 250


async def test_pages_are_framed_only_by_the_tenants_sites_and_the_console_by_none(served, config):
    client = await served(_config(config))
    try:
        for path in ("/operator", "/client/operator.html"):
            r = await client.get(path)
            assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"] and r.headers["X-Frame-Options"] == "DENY", path
        origins = config.tenant("demo").allowed_origins
        for path in ("/?tenant=demo", "/client/index.html?tenant=demo", "/"):
            r = await client.get(path)
            policy = r.headers["Content-Security-Policy"]
            assert policy.startswith("frame-ancestors 'self'") and "*" not in policy and all(o in policy for o in origins), (path, policy)
        r = await client.get("/?tenant=nobody")
        assert r.headers["Content-Security-Policy"] == "frame-ancestors 'self'" and r.headers["X-Frame-Options"] == "SAMEORIGIN"
    finally:
        await client.close()


async def test_turn_credentials_are_per_call_and_expire(served, config, monkeypatch):
    cfg = _config(config)
    cfg.server.turn = TurnConfig(urls=["turn:turn.example.com:3478?transport=udp"], secret_env="TEST_TURN_SECRET", ttl_s=600)
    with pytest.raises(ConfigError, match="TEST_TURN_SECRET"):
        create_app(cfg, LocalCalls(FakeEngines(FakeTranscriber("")), cfg, WebRtcCall))
    secret = "a-secret-shared-with-coturn-0123456789"
    monkeypatch.setenv("TEST_TURN_SECRET", secret)
    client = await served(cfg)
    try:
        users = []
        for _ in range(2):
            servers = (await (await client.get("/api/ice-servers")).json())["iceServers"]
            turn = servers[0]
            assert turn["urls"] == ["turn:turn.example.com:3478?transport=udp"]
            expiry = int(turn["username"].split(":")[0])
            assert time.time() + 590 <= expiry <= time.time() + 610
            assert turn["credential"] == base64.b64encode(hmac.new(secret.encode(), turn["username"].encode(), hashlib.sha1).digest()).decode()
            assert secret not in json.dumps(servers)
            users.append(turn["username"])
        assert users[0] != users[1], "each call its own TURN user"
    finally:
        await client.close()


def test_the_cluster_front_joins_a_remote_ray_only_with_token_authentication(monkeypatch):
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    assert ray_authenticates("auto") and ray_authenticates("127.0.0.1:6379")
    assert not ray_authenticates("10.1.2.3:6379") and not ray_authenticates("ray-head.internal:6379")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", "x" * 32)
    assert ray_authenticates("10.1.2.3:6379")


async def test_operator_uploads_steps_and_assignments_that_would_break_the_faq(config, monkeypatch, tmp_path):
    from .test_operator import DEMO as DEMO_TOKEN

    for name, value in TOKENS.items():
        monkeypatch.setenv(name, value)
    cfg = config.model_copy(deep=True)
    cfg.answer.versions_dir = tmp_path
    cfg.tenants = {"demo": TenantConfig(operator_token_env="TEST_TOKEN_DEMO", keep_questions=True),
                   "shop": TenantConfig(operator_token_env="TEST_TOKEN_SHOP")}
    engines = FakeEngines(FakeTranscriber(""))
    try:
        async with TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall)))) as client:
            r = await client.post("/operator/demo/finetune", data='{"steps": Infinity}', headers={**DEMO_TOKEN, "Content-Type": "application/json"})
            assert r.status == 400, "steps: Infinity is a bad request, not a server error"
            rows = [f"Question number {n}?,Answer number {n}." for n in range(2000)]
            faq = ("question,answer\n" + "\n".join(rows) + "\n").encode()

            async def chunks(body=faq):
                for i in range(0, len(body), 1000):
                    yield body[i:i + 1000]
                    await asyncio.sleep(0)

            r = await client.put("/operator/demo/faq", data=chunks(), headers={**DEMO_TOKEN, "Content-Type": "text/csv"})
            assert r.status == 200 and (await r.json())["entries"] == 2000, "a chunked upload is read whole, never cut short"
            r = await client.put("/operator/demo/faq", data=chunks(faq * 8), headers={**DEMO_TOKEN, "Content-Type": "text/csv"})
            assert r.status == 413
            working = await (await client.get("/operator/demo/faq", headers=DEMO_TOKEN)).json()
            # A new entry whose question differs from one only in case is a duplicate the FAQ refuses: refused before saving.
            cfg.tenant("demo").questions_path.parent.mkdir(parents=True, exist_ok=True)
            r = await client.post("/operator/demo/questions/assign", headers=DEMO_TOKEN,
                                  json={"texts": ["question number one please"], "question": "QUESTION NUMBER 1?", "answer": "x"})
            assert r.status == 400
            after = await (await client.get("/operator/demo/faq", headers=DEMO_TOKEN)).json()
            assert after["file"] == working["file"] and len(after["entries"]) == 2000, "the working FAQ is untouched"
    finally:
        engines.close()


@pytest.mark.slow
async def test_sigterm_drains_new_offers_get_503_and_calls_in_progress_are_told_then_ended(served, config):
    cfg = _config(config)
    cfg.server.drain_s = 10
    client = await served(cfg)
    pc, channel, events, status, _ = await _call(client)
    try:
        assert await until(lambda: any(e["type"] == "avatar" for e in events), 30)
        assert await until(lambda: [e for e in events if e["type"] == "state"][-1]["state"] == "idle", 30), "the greeting is over"
        app = client.server.app
        app[DRAIN].start(app)
        late, _, _, status, body = await _call(client)
        await late.close()
        assert status == 503 and body["reason"] == "draining"
        health = await (await client.get("/healthz")).json()
        assert health["draining"] is True
        assert await until(lambda: any(e["type"] == "avatar" and "restart" in e["text"] for e in events), 20), "told the line will be back"
        assert await until(lambda: any(e["type"] == "ended" and e["reason"] == "draining" for e in events), 20)
        assert await until(lambda: not len(app[CALLS].directory), 10)
    finally:
        await pc.close()
        await client.close()
