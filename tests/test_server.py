"""Signalling, bad input and clean-up, against the real aiohttp + aiortc server (with fake stages)."""
from __future__ import annotations

import asyncio
import json
import re
import os
import threading
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer

from agent.calls.local import LocalCalls
from agent.transport.webrtc import WebRtcCall
from agent.transport.server import CALLS, create_app

from .conftest import espeak, until
from .fakes import FakeEngines, FakeTranscriber


@pytest.fixture
async def client(config):
    """The real server with fake stages: the customer is heard asking how to reset their password."""
    cfg = config.model_copy(deep=True)
    cfg.server.max_sessions = 1
    engines = FakeEngines(FakeTranscriber("How do I reset my password?"))
    app = create_app(cfg, LocalCalls(engines, cfg, WebRtcCall))
    async with TestClient(TestServer(app)) as client:
        yield client
    engines.close()


async def _browser_like_offer(wav_path=None):
    pc = RTCPeerConnection()
    player = None
    if wav_path is not None:
        player = MediaPlayer(str(wav_path))
        pc.addTrack(player.audio)
    else:
        pc.addTransceiver("audio", direction="sendrecv")
    pc.addTransceiver("video", direction="recvonly")
    channel = pc.createDataChannel("events")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, channel, player


def _render_processes() -> list[str]:
    """Command lines of this process's children that are render workers."""
    found = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if "agent.render.worker" in cmdline:
                found.append(cmdline)
    return found


def _session_tasks() -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if any(t.get_name().startswith(p) for p in ("mic-", "respond-", "close-"))]


async def test_bad_requests_get_clear_4xx(client):
    r = await client.post("/api/offer", data="sdp=x", headers={"Content-Type": "text/plain"})
    assert r.status == 415 and "application/json" in (await r.json())["error"]
    r = await client.post("/api/offer", data="{not json", headers={"Content-Type": "application/json"})
    assert r.status == 400 and "JSON" in (await r.json())["error"]
    r = await client.post("/api/offer", json={"sdp": 5, "type": "offer"})
    assert r.status == 400
    r = await client.post("/api/offer", json={"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nm=video garbage\r\n", "type": "offer"})
    assert r.status == 400 and "SDP" in (await r.json())["error"]
    r = await client.post("/api/offer", json={"sdp": "m=audio m=video " + "x" * 100_000, "type": "offer"})
    assert r.status == 413
    for microphone in ("cancelled", {"echoCancellation": "yes"}):
        r = await client.post("/api/offer", json={"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n", "type": "offer", "microphone": microphone})
        assert r.status == 400 and "echoCancellation" in (await r.json())["error"]
    r = await client.get("/no/such/route")
    assert r.status == 404 and "error" in await r.json()
    r = await client.delete("/api/sessions/unknown")
    assert r.status == 404
    assert len(client.server.app[CALLS].directory) == 0
    r = await client.get("/healthz")
    assert (await r.json())["status"] == "ok"
    r = await client.get("/metrics/nodes/local")  # on one box, this process is the only node
    assert r.status == 200 and "avatar_sessions_active" in await r.text()
    assert (await client.get("/metrics/nodes/elsewhere")).status == 404


async def test_call_answers_streams_and_cleans_up(client, speech_dir):
    wav = espeak("How do I reset my password?", speech_dir / "password.wav", rate=48000, lead_s=3.0, tail_s=8.0)
    pc, channel, player = await _browser_like_offer(wav)
    events: list[dict] = []
    channel.on("message", lambda m: events.append(json.loads(m)))
    video = []
    pc.on("track", lambda t: video.append(t) if t.kind == "video" else None)

    r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer"})
    assert r.status == 200, await r.text()
    body = await r.json()
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))

    # A second caller is told the agents are busy, and the first call is not disturbed.
    pc2, _, _ = await _browser_like_offer()
    r2 = await client.post("/api/offer", json={"sdp": pc2.localDescription.sdp, "type": "offer"})
    assert r2.status == 503 and "busy" in (await r2.json())["error"]
    await pc2.close()

    await until(lambda: any(e["type"] == "avatar" and "password" in e["text"] for e in events), 30)
    kinds = [e["type"] for e in events]
    assert "avatar" in kinds, events
    assert any(e["type"] == "user" and "password" in e["text"].lower() for e in events), events
    assert any(e["type"] == "avatar" and "forgot password" in e["text"] for e in events), events
    channel.send("not json at all")
    channel.send(json.dumps({"type": "launch-rockets"}))
    assert await until(lambda: len([e for e in events if e["type"] == "error"]) >= 2, 10)
    assert [e for e in events if e["type"] == "error"][:2] == [
        {"type": "error", "message": "messages must be JSON objects"},
        {"type": "error", "message": "unknown message type 'launch-rockets'"},
    ]
    frame = await asyncio.wait_for(video[0].recv(), 10)
    assert len(_render_processes()) == 1, "the call renders in its own process"
    assert (frame.width, frame.height) == (512, 512)
    for _ in range(40):  # a bit more than a second of video, so the fps gauge has a value
        await asyncio.wait_for(video[0].recv(), 10)

    metrics = await (await client.get("/metrics")).text()
    assert "avatar_sessions_active 1.0" in metrics
    assert "avatar_response_seconds_count" in metrics
    session_id = client.server.app[CALLS].directory.records()[0].session
    assert session_id not in metrics, "no call's id is readable from /metrics"
    slowest = float(re.search(r"^avatar_video_fps_min ([0-9.e+-]+)$", metrics, re.M).group(1))
    assert slowest > 0, "the slowest call's frame rate is there, as one number for all"

    # Hang up mid-answer: the server must tear the whole session down.
    channel.send(json.dumps({"type": "bye"}))
    assert await until(lambda: not len(client.server.app[CALLS].directory), 10), "bye ends the call on the server"
    if player is not None and player.audio:
        player.audio.stop()
    await pc.close()
    await until(lambda: not len(client.server.app[CALLS].directory) and not _session_tasks(), 10)
    assert len(client.server.app[CALLS].directory) == 0
    assert _session_tasks() == []
    assert not [t for t in threading.enumerate() if t.name.startswith("render")], "render thread leaked"
    assert _render_processes() == [], "render process leaked"
    metrics = await (await client.get("/metrics")).text()
    assert "avatar_sessions_active 0.0" in metrics
    assert f'session="{session_id}"' not in metrics, "a finished call leaves no per-session series behind"


async def test_only_allowed_origins_may_signal(client):
    allowed, stranger = "http://localhost:8000", "http://evil.example"
    r = await client.get("/api/ice-servers")  # same origin / not a browser: fine
    assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers
    r = await client.get("/api/ice-servers?tenant=demo", headers={"Origin": allowed})
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == allowed and r.headers["Vary"] == "Origin"
    r = await client.options("/api/offer?tenant=demo", headers={"Origin": allowed, "Access-Control-Request-Method": "POST"})
    assert r.status in (200, 204) and "POST" in r.headers["Access-Control-Allow-Methods"] and r.headers["Access-Control-Allow-Origin"] == allowed
    for method in ("get", "options", "post"):
        r = await getattr(client, method)("/api/offer?tenant=demo" if method != "get" else "/api/ice-servers?tenant=demo", headers={"Origin": stranger})
        assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
        assert "not allowed" in (await r.json())["error"]
    r = await client.get("/api/ice-servers?tenant=nobody", headers={"Origin": allowed})
    assert r.status == 404 and "unknown tenant" in (await r.json())["error"]
    # A refused origin cannot hang up someone else's call either.
    r = await client.delete("/api/sessions/abc?tenant=demo", headers={"Origin": stranger})
    assert r.status == 403
    assert len(client.server.app[CALLS].directory) == 0


def test_tenant_config_is_validated(tmp_path):
    from agent.config import DEFAULT_CONFIG, ConfigError, load_config

    faq = DEFAULT_CONFIG.parent / "faq" / "demo.csv"
    (tmp_path / "a.yaml").write_text(f"answer:\n  faq_path: {faq}\ntenants:\n  shop:\n    allowed_origins: [https://shop.example.com/page]\n")
    with pytest.raises(ConfigError, match="tenants.shop.allowed_origins"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "b.yaml").write_text(f"answer:\n  faq_path: {faq}\ntenants:\n  Bad Name: {{}}\n")
    with pytest.raises(ConfigError, match="tenant id"):
        load_config(tmp_path / "b.yaml")


def test_the_voice_goes_out_as_opus_stamped_with_the_port_clock():
    import av
    import numpy as np

    from agent.transport.tracks import VoicePackets

    voice = VoicePackets()
    tone = (np.sin(np.arange(960 * 10) * 2 * np.pi * 200 / 48000) * 8000).astype(np.int16)
    quiet = np.zeros(960, np.int16)
    packets = [voice.packet(tone[i : i + 960], i) for i in range(0, len(tone), 960)]
    packets += [voice.packet(quiet, len(tone) + 960 * k) for k in range(8)]
    assert [p.pts for p in packets] == list(range(0, 960 * 18, 960)), "each packet carries its place on the clock"
    assert len({bytes(p) for p in packets[-4:]}) == 1, "silence is one packet, encoded once"
    decoder = av.CodecContext.create("libopus", "r")
    per_frame = np.array([np.abs(f.to_ndarray().astype(np.float32)).mean() for p in packets for f in decoder.decode(av.Packet(bytes(p)))])
    assert len(per_frame) == len(packets)
    assert per_frame[2:9].min() > 2000, "the tone is heard"
    assert per_frame[-4:].max() < 50, "and then silence"


async def test_a_voice_packet_sent_late_is_counted_where_an_operator_can_scrape_it():
    import time

    from agent import metrics
    from agent.output.port import AvatarOutput
    from agent.transport.tracks import AvatarAudioTrack

    track = AvatarAudioTrack(AvatarOutput())
    before = metrics.AUDIO_LATE._value.get()
    for _ in range(3):
        await track.recv()
    assert metrics.AUDIO_LATE._value.get() == before, "packets on time are not late"
    time.sleep(0.3)  # the event loop held up, as a busy one is
    await track.recv()
    assert metrics.AUDIO_LATE._value.get() == before + 1
    from prometheus_client import generate_latest

    assert "avatar_audio_late_total" in generate_latest(metrics.REGISTRY).decode()
    track.stop()


async def test_the_microphone_hears_packets_in_order_fills_losses_and_survives_garbage(caplog):
    """The caller's packets are decoded as they arrive: in order, a lost packet as silence of its length, a late
    one dropped, an undecodable one logged and skipped; an operator's listener gets the Opus packets as they came."""
    import numpy as np
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters
    from aiortc.rtp import RtpPacket

    from agent.transport.microphone import Microphone
    from agent.transport.tracks import VoicePackets

    pc = RTCPeerConnection()
    receiver = pc.addTransceiver("audio", direction="recvonly").receiver
    receiver._RTCRtpReceiver__codecs[111] = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
    heard, forwarded = [], []
    microphone = Microphone(receiver, heard.append)
    microphone.listen(lambda payload, timestamp: forwarded.append(timestamp))
    voice = VoicePackets()
    tone = (np.sin(np.arange(960) * 2 * np.pi * 300 / 48000) * 8000).astype(np.int16)
    payloads = [bytes(voice.packet(tone, 960 * i)) for i in range(8)]

    def send(sequence: int, payload: bytes, payload_type: int = 111):
        receiver_packet = RtpPacket(payload_type=payload_type, sequence_number=sequence, timestamp=5000 + 960 * sequence, ssrc=1234)
        receiver_packet.payload = payload
        return receiver._handle_rtp_packet(receiver_packet, arrival_time_ms=0)

    for sequence in (0, 1, 2, 4, 3, 5):  # 3 comes after 4: late
        await send(sequence, payloads[sequence])
    await send(6, b"\xff\xfe not opus at all")
    await send(7, payloads[7])
    await send(8, payloads[0], payload_type=99)  # a payload type the call never agreed: ignored
    lengths = [len(chunk) for chunk in heard]
    assert all(chunk.dtype == np.float32 for chunk in heard)
    assert 300 <= lengths[0] <= 320 and lengths[1:3] == [320, 320], "20 ms at 16 kHz a packet, as it comes"
    assert lengths[3] == 320 and not heard[3].any(), "the packet after a lost one brings the lost one's time as silence first"
    assert np.abs(heard[4]).max() > 0.05, "and then its own sound"
    assert abs(sum(lengths) - 16_000 * 0.02 * 8) <= 20, "8 packets' time heard (3 late and dropped, 6 undecodable: both silence)"
    assert forwarded == [5000 + 960 * s for s in (0, 1, 2, 4, 5, 6, 7)], "the operator gets what came, in order"
    assert "undecodable opus audio" in caplog.text
    await pc.close()


async def test_a_video_frame_awaited_as_the_call_ends_is_neither_sent_nor_counted():
    """A frame that was being drawn as the call ended must not be sent, nor count towards the call's frame rate."""
    import time

    import numpy as np
    from aiortc.mediastreams import MediaStreamError

    from agent.transport.tracks import AvatarVideoTrack

    class SlowVideo:
        def __init__(self):
            self.drawn = asyncio.Event()

        async def next_image(self):
            await self.drawn.wait()
            return np.zeros((16, 16, 3), np.uint8)

        def cancel_pending(self):
            pass

    video = SlowVideo()
    track = AvatarVideoTrack(video)
    track._fps_window = (time.perf_counter() - 2.0, 0)  # the next frame sent would report a second of fps
    frame = asyncio.create_task(track.recv())
    await asyncio.sleep(0.1)
    track.stop()  # the call ends while the frame is drawn
    video.drawn.set()
    with pytest.raises(MediaStreamError):
        await frame
    assert track.frames_sent == 0 and track.recent_fps is None, "a frame of an ended call is neither sent nor counted"
