"""The face drawn in the page: the offer says what the page can draw, the agent sends poses tied to its audio.

Against the real aiohttp + aiortc server with fake stages (an aiortc client plays the page); the Chromium
tests of the same mode are in `test_browser_e2e.py`.
"""
from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from aiohttp.test_utils import TestClient, TestServer
from aiortc import RTCPeerConnection, RTCSessionDescription

from agent.calls.local import LocalCalls
from agent.messages import OUTPUT_RATE
from agent.output.port import AvatarOutput
from agent.output.poses import POSE_BYTES, read_message
from agent.output.sinks import BrowserPoses
from agent.transport.server import create_app
from agent.output.where import BROWSER, SERVER, choose_render
from agent.transport.webrtc import WebRtcCall
from models.arkit import INDEX
from models.audio import from_pcm16

from .conftest import until
from .fakes import FakeEngines, FakeTranscriber

CAN_DRAW = {"webgl2": True, "avatar": True}


@pytest.fixture
async def client(config):
    cfg = config.model_copy(deep=True)
    cfg.tenants["demo"] = cfg.tenants["demo"].model_copy(update={"render_where": "auto"})
    engines = FakeEngines(FakeTranscriber(""))
    async with TestClient(TestServer(create_app(cfg, LocalCalls(engines, cfg, WebRtcCall)))) as client:
        yield client
    engines.close()


def test_where_the_face_is_drawn():
    assert choose_render("server", CAN_DRAW, True).where == SERVER
    assert choose_render("auto", CAN_DRAW, True).where == BROWSER
    assert choose_render("browser", CAN_DRAW, False).where == BROWSER
    fallback = choose_render("auto", {"webgl2": True, "avatar": False, "error": "could not load the 3D avatar: 404"}, True)
    assert fallback.where == SERVER and "could not load the 3D avatar" in fallback.reason
    assert choose_render("browser", {"webgl2": False}, True).where == SERVER, "a page that cannot draw gets video"
    assert choose_render("auto", "nonsense", True).where == SERVER
    with pytest.raises(ValueError, match="no WebGL2"):
        choose_render("browser", None, False)


def test_a_page_that_reads_nothing_costs_a_bounded_queue():
    port = AvatarOutput()
    sent = []
    sink = BrowserPoses(port, sent.append, buffered=lambda: 10**6)  # the page's channel is full and stays full
    port.attach(sink)
    for _ in range(250):  # five seconds of audio
        port.next_audio_frame()
    assert sent == [] and sink.dropped > 100, "old poses are dropped, never queued"
    port = AvatarOutput()
    port.attach(BrowserPoses(port, sent.append, buffered=lambda: 0))
    for _ in range(50):
        port.next_audio_frame()
    ahead = int(BrowserPoses.LEAD_S * OUTPUT_RATE)
    poses = [record for m in sent for record in read_message(m)]
    assert all(kind == "pose" for kind, *_ in poses)
    clock = [pts for _, pts, *_ in poses]
    assert clock[1:] == list(range(1920, len(poses) * 1920, 1920)) and clock[0] < 1920, "one pose per video frame, in clock order"
    assert (960 * 50 + ahead) // 1920 + 1 <= len(poses) < (960 * 50 + ahead) // 1920 + 1 + BrowserPoses.PER_MESSAGE, \
        "sent LEAD_S ahead of their audio"
    assert all(len(m) == POSE_BYTES * BrowserPoses.PER_MESSAGE for m in sent), "a few poses a message"


async def test_the_avatar_glb_is_cacheable(client):
    info = await (await client.get("/api/avatar")).json()
    assert info["where"] == "auto" and len(info["channels"]) == 52 and info["view"]["width"] == 512
    first = await client.get(info["glb"])
    assert first.status == 200 and first.headers["Content-Type"] == "model/gltf-binary"
    body = await first.read()
    assert body[:4] == b"glTF" and first.headers["ETag"] == f'"{info["etag"]}"'
    again = await client.get(info["glb"], headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304 and await again.read() == b""
    assert (await client.get("/api/avatar.glb?tenant=nobody")).status == 404


async def test_a_page_can_light_the_avatar_as_the_server_does_on_software_gl(client):
    from agent.avatars.library import load_avatar
    from agent.render.lean import SHADERS

    info = await (await client.get("/api/avatar")).json()
    surfaces = {s["name"]: s for s in info["view"]["surfaces"]}
    avatar = load_avatar("default")
    skin = next(s for s in avatar.surfaces if s.wrap > 0)
    assert surfaces[skin.name]["wrap"] == skin.wrap and 0 < surfaces[skin.name]["roughness"] <= 1, surfaces
    assert any(s.blend for s in avatar.surfaces), "the default head has blended hair cards"
    for surface in avatar.surfaces:  # the page cuts texels away where, and as, the server's shaders do
        served = surfaces[surface.name]
        assert (served["cutout"], served["alpha_cut"]) == (surface.cutout, surface.alpha_cut), (surface.name, served)
    for name in ("face_vertex.vert", "face_vertex.frag"):
        served = await client.get(f"/client/shaders/{name}")
        assert served.status == 200 and await served.text() == (SHADERS / name).read_text()
        assert served.headers.get("Access-Control-Allow-Origin") == "*", "embedding sites load it too"
    assert (await client.get("/client/shaders/../lean.py")).status in (403, 404)


async def _call(client, render: dict | None):
    pc = RTCPeerConnection()
    pc.addTransceiver("audio", direction="sendrecv")
    pc.addTransceiver("video", direction="recvonly")
    events = pc.createDataChannel("events")
    poses = pc.createDataChannel("poses", ordered=False, maxRetransmits=0)
    await pc.setLocalDescription(await pc.createOffer())
    r = await client.post("/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer", "render": render})
    assert r.status == 200, await r.text()
    body = await r.json()
    tracks = []
    pc.on("track", tracks.append)
    await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
    return pc, events, poses, body, tracks


async def test_a_page_that_can_draw_gets_poses_tied_to_its_audio(client):
    pc, events, poses, body, tracks = await _call(client, CAN_DRAW)
    assert body["render"]["where"] == BROWSER
    audio_section = body["sdp"].split("m=audio")[1].split("m=")[0]
    assert "a=ptime:60" in audio_section, "the answer asks a drawing page for 60 ms packets (server.audio_packet_ms.browser)"
    received, heard, said = [], [], []
    poses.on("message", lambda m: received.extend(read_message(m)))
    events.on("message", lambda m: said.append(json.loads(m)))
    assert await until(lambda: any(kind == "clock" for kind, *_ in received) and tracks, 10)
    assert [t.kind for t in tracks] == ["audio"], "no video is sent to a page that draws"

    async def listen():
        while True:
            frame = await tracks[0].recv()
            heard.append((frame.pts, float(np.abs(from_pcm16(frame.to_ndarray().reshape(-1))).mean())))

    listening = asyncio.create_task(listen())
    assert await until(lambda: any(e["type"] == "state" and e["state"] == "idle" for e in said), 30), "the greeting ends"
    events.send(json.dumps({"type": "text", "text": "How do I reset my password?"}))
    assert await until(lambda: any(e["type"] == "avatar" and "forgot password" in e["text"] for e in said), 30)
    assert await until(lambda: sum(loud > 0.02 for _, loud in heard) > 50, 30), "the answer is heard"
    events.send(json.dumps({"type": "text", "text": "What are your opening hours?"}))  # cuts the answer short
    assert await until(lambda: any(kind == "clear" for kind, *_ in received), 10), "barge-in clears what the page holds"
    enough = len(heard) + 25
    assert await until(lambda: len(heard) > enough, 10)
    listening.cancel()
    await pc.close()

    assert len({value for kind, value, *_ in received if kind == "clock"}) == 1, "one clock: the audio's timestamps never jump"
    jaw = {pts: weights[INDEX["jawOpen"]] for kind, pts, weights, _ in received if kind == "pose"}
    assert max(jaw.values()) > 0.2, "the mouth opens"
    # Sync by construction: the pose for a moment of the clock matches the loudness of the audio heard at that moment.
    # (aiortc's receiver counts its frames' pts from its first packet, which carried clock 0; the page maps RTP
    # timestamps with the clock message instead, checked in the Chromium test.)
    step = OUTPUT_RATE // 25
    pairs = [(loud, jaw[pts // step * step]) for pts, loud in heard if pts // step * step in jaw]
    assert len(pairs) > 100
    loud, mouth = np.array(pairs).T
    assert np.corrcoef(loud, mouth)[0, 1] > 0.5, "poses line up with the sound they belong to"


async def test_a_page_that_cannot_draw_gets_video(client):
    pc, _, _, body, _ = await _call(client, {"webgl2": True, "avatar": False, "error": "could not load the 3D avatar: 404"})
    assert body["render"]["where"] == SERVER and "could not load the 3D avatar" in body["render"]["reason"]
    audio_section = body["sdp"].split("m=audio")[1].split("m=")[0]
    assert "a=ptime:20" in audio_section, "a video call keeps 20 ms packets (server.audio_packet_ms.server)"
    await pc.close()


def test_one_packet_time_in_the_config_is_both_kinds_of_call(config):
    from agent.config import ServerConfig

    assert ServerConfig(audio_packet_ms=40).audio_packet_ms.for_render(BROWSER) == 40
    assert ServerConfig(audio_packet_ms=40).audio_packet_ms.for_render(SERVER) == 40
    both = ServerConfig(audio_packet_ms={"browser": 20})
    assert (both.audio_packet_ms.server, both.audio_packet_ms.browser) == (20, 20)
    with pytest.raises(ValueError, match="audio_packet_ms"):
        ServerConfig(audio_packet_ms=30)
