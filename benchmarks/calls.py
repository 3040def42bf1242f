"""Calls a box holds: N real WebRTC calls on loopback to `avatar-agent serve`, from aiortc clients (no Chromium).

Each client is a customer with a microphone that never stops (quiet room noise), asking espeak-ng questions
in turn and waiting for the answers. With `--where browser` the server draws nothing: the clients receive
the avatar's audio and its poses (as a page that draws the avatar would); with `--where server` they receive
audio and video (VP8), which aiortc decodes on the clients' side (use `avatar-agent benchmark --sessions N`,
which encodes in-process and decodes nothing, for the server-video capacity). Measured per call: end of customer speech -> first answer
audio received, audio underruns (a packet more than 100 ms later after the last than their RTP timestamps are apart), gaps in the pose stream longer than the
poses' look-ahead covers, and the server's CPU (its process and its render workers).

The clients run on the same cores, so they are kept cheap: each encodes its microphone as the agent encodes its
voice (mono Opus, inline) and decodes the agent's audio packets as they arrive, without aiortc's jitter buffer and
decoder thread (a benchmark client needs levels and arrival times, not playback). Their CPU is printed too.
"""
from __future__ import annotations

import argparse
import asyncio
import fractions
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from benchmarks.latency import QUESTIONS, pct
from benchmarks.speech_sets import spoken

RATE = 48_000
FRAME = 960
UNDERRUN_S = 0.1
LISTEN_ONLY_S = 30.0  # --runs 0: how long the calls only listen (the fixed cost of a call)


def _pose_gap_s() -> float:
    """A gap between pose messages longer than this leaves the page without the pose for the sound it plays."""
    from agent.output.sinks import BrowserPoses

    return BrowserPoses.LEAD_S + BrowserPoses.PER_MESSAGE / 25


def _listen_to_audio_packets() -> None:
    """aiortc's receivers hand each audio packet to `receiver.on_packet(packet)` when a client set one (this process only)."""
    from aiortc.rtcrtpreceiver import RTCRtpReceiver

    if getattr(RTCRtpReceiver, "_benchmark_patched", False):
        return
    original = RTCRtpReceiver._handle_rtp_packet

    async def handle(self, packet, arrival_time_ms):
        listener = getattr(self, "on_packet", None)
        if listener is None:
            return await original(self, packet, arrival_time_ms)
        listener(packet)

    RTCRtpReceiver._handle_rtp_packet = handle
    RTCRtpReceiver._benchmark_patched = True


class Microphone:
    """A customer's microphone: 20 ms packets of room noise, and a question when `say` is called.

    Encoded ahead, once per process (the noise) and once per question, as the agent encodes its voice: the
    clients share the box's cores with the server, so they do little more than send packets."""

    NOISE_S = 20
    _encoded: dict[tuple[int, int], list[bytes]] = {}  # (id of the sound, packet size) -> its packets

    def __init__(self, seed: int) -> None:
        from aiortc import MediaStreamTrack

        outer = self

        class Track(MediaStreamTrack):
            kind = "audio"

            async def recv(self):
                return await outer._next()

        self.track = Track()
        if not hasattr(Microphone, "_room"):
            Microphone._room = np.random.default_rng(0).normal(0, 0.001, RATE * self.NOISE_S).astype(np.float32)
        self.packet = FRAME  # samples a packet: what the agent's answer asks for (a=ptime), as a browser does
        self._phase = seed * 97  # the callers' rooms are not in step
        self._queue: list[bytes] = []
        self._pts = 0
        self._start: float | None = None
        self.speech_ends: list[float] = []

    @classmethod
    def _packets(cls, sound: np.ndarray, packet: int) -> list[bytes]:
        """`sound` in the room (the room alone, or a question in it with a quarter second of the room after it)."""
        if (id(sound), packet) not in cls._encoded:
            from agent.transport.tracks import VoicePackets

            if sound is cls._room:
                heard = sound
            else:
                heard = np.concatenate([sound, np.zeros(RATE // 4, np.float32)])
                heard += cls._room[: len(heard)]
            pcm = (np.clip(heard, -1, 1) * 32767).astype(np.int16)[: len(heard) // packet * packet]
            voice = VoicePackets(packet * 1000 // RATE)
            cls._encoded[id(sound), packet] = [bytes(voice.packet(pcm[i : i + packet], i)) for i in range(0, len(pcm), packet)]
        return cls._encoded[id(sound), packet]

    def say(self, speech: np.ndarray) -> None:
        loud = np.flatnonzero(np.abs(speech) > 0.01)
        lead = len(self._queue) * self.packet
        self._queue += self._packets(speech, self.packet)
        self._pending_end = (lead + (int(loud[-1]) if loud.size else len(speech))) / RATE

    async def _next(self):
        import av

        if self._start is None:
            self._start = time.perf_counter()
        self._pts += self.packet
        wait = self._start + self._pts / RATE - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        if self._queue:
            if getattr(self, "_pending_end", None) is not None:
                self.speech_ends.append(time.perf_counter() + self._pending_end)
                self._pending_end = None
            data = self._queue.pop(0)
        else:
            noise = self._packets(self._room, self.packet)
            data = noise[(self._pts // self.packet + self._phase) % len(noise)]
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._pts, fractions.Fraction(1, RATE)
        return packet


class Client:
    def __init__(self, index: int, where: str, browser_cancels_echo: bool = True) -> None:
        self.index, self.where, self.browser_cancels_echo = index, where, browser_cancels_echo
        self.mic = Microphone(index)
        self.audio_packets: list[tuple[float, int, bytes]] = []  # (arrival, RTP timestamp, Opus payload)
        self.audio_times: list[tuple[float, int, float]] = []  # (arrival, RTP timestamp, level), once decoded
        self.pose_times: list[float] = []  # arrival of each pose message
        self.poses_received = 0
        self.events: list[dict] = []
        self.answered = asyncio.Event()

    async def connect(self, url: str) -> None:
        import aiohttp
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self.pc = pc = RTCPeerConnection()
        pc.addTrack(self.mic.track)
        if self.where == "server":
            pc.addTransceiver("video", direction="recvonly")
        events = pc.createDataChannel("events")
        events.on("message", self._on_event)
        if self.where == "browser":
            poses = pc.createDataChannel("poses", ordered=False, maxRetransmits=0)
            poses.on("message", self._on_poses)
        pc.on("track", self._on_track)
        await pc.setLocalDescription(await pc.createOffer())
        render = {"webgl2": True, "avatar": True} if self.where == "browser" else None
        microphone = {"echoCancellation": self.browser_cancels_echo}  # what the widget's page says of Chromium's microphone
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer", "render": render,
                                                           "microphone": microphone}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"call {self.index}: {r.status} {body}")
        ptime = re.search(r"a=ptime:(\d+)", body["sdp"])
        self.mic.packet = RATE * int(ptime.group(1)) // 1000 if ptime else FRAME
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        for receiver in pc.getReceivers():
            if receiver.track.kind == "audio":
                receiver.on_packet = lambda packet: self.audio_packets.append((time.perf_counter(), packet.timestamp, packet.payload))

    def _on_poses(self, message) -> None:
        from agent.output.poses import read_message

        self.pose_times.append(time.perf_counter())
        self.poses_received += sum(kind == "pose" for kind, *_ in read_message(message))

    def decode_audio(self) -> None:
        """The audio received, decoded after the calls (off the measured time): (arrival, level) per packet."""
        import av

        decoder = av.CodecContext.create("libopus", "r")
        for arrival, timestamp, payload in self.audio_packets:
            level = 0.0
            try:
                frames = decoder.decode(av.Packet(payload))
            except av.FFmpegError as exc:
                raise RuntimeError(f"call {self.index}: the agent sent an undecodable audio packet {payload[:4].hex()}") from exc
            for frame in frames:
                pcm = frame.to_ndarray().astype(np.float32) / 32768
                level = float(np.sqrt(np.mean(pcm**2)))
            self.audio_times.append((arrival, timestamp, level))
        self.audio_packets = []

    def _on_event(self, message) -> None:
        event = json.loads(message)
        self.events.append({**event, "at": time.perf_counter()})
        if event.get("type") == "state" and event.get("state") == "idle":
            self.answered.set()

    def _on_track(self, track) -> None:
        if track.kind == "audio":
            return  # its packets go to audio_packets as they arrive

        async def read() -> None:
            from aiortc.mediastreams import MediaStreamError

            while True:
                try:
                    await track.recv()
                except MediaStreamError:
                    return

        asyncio.ensure_future(read())  # video frames are read and dropped (aiortc decodes them: client CPU)

    async def ask(self, questions: list[np.ndarray], answer_wait_s: float, pause_s: float = 0.5) -> None:
        await asyncio.wait_for(self.answered.wait(), 60)  # the greeting has been said
        for speech in questions:
            self.answered.clear()
            self.mic.say(speech)
            try:
                await asyncio.wait_for(self.answered.wait(), answer_wait_s)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(pause_s)

    def first_audio(self) -> list[float]:
        out = []
        for end in self.mic.speech_ends:
            first = next((t for t, _, level in self.audio_times if t > end + 0.05 and level > 0.01), None)
            if first is not None and first - end < 10:
                out.append(first - end)
        return out

    def underruns(self, since: float) -> int:
        """Packets that came more than UNDERRUN_S later after the one before than their timestamps are apart (a
        jitter buffer of UNDERRUN_S would have run dry; the silence between DTX packets is not late)."""
        packets = [(t, ts) for t, ts, _ in self.audio_times if t >= since]
        if len(packets) < 2:
            return 0
        arrival, timestamp = (np.array(x, np.float64) for x in zip(*packets))
        apart = np.mod(np.diff(timestamp), 2**32) / 48_000  # Opus's RTP clock
        return int(np.sum(np.diff(arrival) - apart > UNDERRUN_S))

    def pose_gaps(self, since: float) -> int:
        times = [t for t in self.pose_times if t >= since]
        return int(np.sum(np.diff(times) > _pose_gap_s())) if len(times) > 1 else 0


def _cpu_seconds(process: psutil.Process, children: bool = True) -> float:
    total = 0.0
    for p in [process, *(process.children(recursive=True) if children else [])]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def _machine_busy_seconds() -> float:
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)


async def measure(url: str, pid: int | None, sessions: int, runs: int, where: str, pause_s: float = 0.5,
                  browser_cancels_echo: bool = True) -> dict:
    """`pid`: the server's process (its CPU and its children's); None: every process on the machine but this one."""
    _listen_to_audio_packets()
    clients = [Client(i, where, browser_cancels_echo) for i in range(sessions)]
    for client in clients:  # one at a time, as callers arrive
        await client.connect(url)
        await asyncio.sleep(0.3)
    recorded = [spoken(q, RATE) for q in QUESTIONS]
    for speech in recorded:
        Microphone._packets(speech, clients[0].mic.packet)  # encoded before the calls are measured
    here = psutil.Process()
    server_cpu = (lambda: _cpu_seconds(psutil.Process(pid))) if pid is not None else \
        (lambda: _machine_busy_seconds() - _cpu_seconds(here, children=False))
    await asyncio.sleep(2.0)
    late0 = await _late_voice_packets(url) if pid is not None else None
    since, cpu0, here0 = time.perf_counter(), server_cpu(), _cpu_seconds(here, children=False)
    poses0 = [c.poses_received for c in clients]

    async def customer(i: int, client: Client) -> None:
        await asyncio.sleep(0.7 * i % 6)  # customers do not all stop talking at the same instant
        await client.ask([recorded[(i + k) % len(recorded)] for k in range(runs)], 20.0, pause_s)

    if runs:
        await asyncio.gather(*(customer(i, c) for i, c in enumerate(clients)))
    else:  # calls that only listen: the fixed cost of a call
        await asyncio.sleep(LISTEN_ONLY_S)
    wall = time.perf_counter() - since
    server_cores, client_cores = (server_cpu() - cpu0) / wall, (_cpu_seconds(here, children=False) - here0) / wall
    late = await _late_voice_packets(url) - late0 if late0 is not None else None
    for client in clients:
        client.decode_audio()
    result = {
        "sessions": sessions, "where": where, "whole_machine": pid is None,
        "first_audio": [x for c in clients for x in c.first_audio()],
        "asked": sessions * runs, "pause_s": pause_s, "packet_ms": clients[0].mic.packet * 1000 // RATE if clients else None,
        "underruns": [c.underruns(since) for c in clients],
        "pose_gaps": [c.pose_gaps(since) for c in clients] if where == "browser" else None,
        "pose_rate": [(c.poses_received - p0) / wall for c, p0 in zip(clients, poses0)] if where == "browser" else None,
        "server_cores": server_cores, "client_cores": client_cores, "server_late": late,
    }
    for client in clients:
        await client.pc.close()
    return result


async def _late_voice_packets(url: str) -> float:
    """The server's own count of voice packets it sent late (`avatar_audio_late_total`): an underrun the clients
    see that the server does not count arose on their side of the socket."""
    import aiohttp
    from prometheus_client.parser import text_string_to_metric_families

    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as r:
        text = await r.text()
    return sum(sample.value for family in text_string_to_metric_families(text) if family.name == "avatar_audio_late"
               for sample in family.samples if sample.name == "avatar_audio_late_total")


def _pin(server_pid: int) -> None:
    """The server (every thread) on the first core, this process's clients on the others: what the server's share
    of a box holds when the pages that stand in for the customers' own devices do not share its cores."""
    import os
    import subprocess

    cores = list(range(psutil.cpu_count()))
    if len(cores) < 2:
        raise SystemExit("--pin needs two cores or more")
    subprocess.run(["taskset", "-apc", str(cores[0]), str(server_pid)], check=True, capture_output=True)
    os.sched_setaffinity(0, set(cores[1:]))


# Every simulated customer calls from 127.0.0.1: the per-address caps that keep a stranger from filling the box would
# refuse them, so the benchmark lifts them (and measures the calls, not the caps).
ONE_ADDRESS_LOAD = {"calls_per_address": 1000, "offers_per_minute": 10000}


def run(sessions: int, runs: int, where: str, config: str | None, pin: bool = False, packet_ms: int | None = None,
        pause_s: float = 0.5, browser_cancels_echo: bool = True) -> dict:
    import yaml

    from agent.config import DEFAULT_CONFIG
    from benchmarks.browser import LOGS, agent_server

    raw = yaml.safe_load(Path(config or DEFAULT_CONFIG).read_text())
    folder = Path(config or DEFAULT_CONFIG).resolve().parent
    raw["answer"]["faq_path"] = str((folder / raw["answer"]["faq_path"]).resolve())
    raw["answer"].pop("versions_dir", None)
    raw.setdefault("render", {})["where"] = where
    raw.setdefault("server", {})["max_sessions"] = max(sessions, 1)  # the benchmark finds the limit; admission must not
    raw["server"]["max_browser_sessions"] = max(sessions, 1)
    raw["server"]["limits"] = {**raw["server"].get("limits", {}), **ONE_ADDRESS_LOAD}
    if packet_ms:
        raw["server"]["audio_packet_ms"] = packet_ms
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agent.yaml"
        path.write_text(yaml.safe_dump(raw))
        log_name = f"benchmark-calls-{where}.log"
        with agent_server(log_name, "--config", str(path)) as served:
            _wait_for_warm_speech(LOGS / log_name)
            if pin:
                _pin(served.process.pid)
            return asyncio.run(measure(served.url, served.process.pid, sessions, runs, where, pause_s, browser_cancels_echo))


def run_on_nodes(sessions: int, runs: int, where: str, nodes: int, packet_ms: int | None = None, pause_s: float = 0.5,
                 browser_cancels_echo: bool = True) -> dict:
    """The same calls through the front to `nodes` agent processes on this machine (a loopback Ray cluster: each node
    is its own process with its own event loop). Run inside a network namespace with loopback only."""
    import aiohttp

    from agent.cluster import loopback
    from benchmarks.cluster import Front, free_port, loopback_config

    folder = Path(tempfile.mkdtemp(prefix="calls-nodes-"))
    address = loopback.start(nodes=nodes, port=free_port())
    config = loopback_config(folder, address, render={"where": where},
                             server={"max_sessions": sessions, "max_browser_sessions": sessions, "limits": ONE_ADDRESS_LOAD,
                                     **({"audio_packet_ms": packet_ms} if packet_ms else {})},
                             cluster={"admission": {"max_cpu_percent": 100}})  # the benchmark finds the limit
    front = Front(config, folder / "front.log")

    async def calls() -> dict:
        async with aiohttp.ClientSession(front.url) as http:
            await front.until_quiet(http, await front.until_nodes(http, nodes, timeout=400), 30)
        return await measure(front.url, None, sessions, runs, where, pause_s, browser_cancels_echo)

    try:
        return asyncio.run(calls())
    finally:
        front.stop()
        loopback.stop()


def _wait_for_warm_speech(log: Path, limit_s: float = 300) -> None:
    """The server speaks its tenants' answers into the speech cache at start-up, in the background: a cost of the
    process, not of its calls, so the calls are measured once it is done (its log says so)."""
    deadline = time.time() + limit_s
    while time.time() < deadline:
        text = log.read_text(errors="replace")
        if "speech cache:" in text or "could not warm the speech cache" in text:
            return
        time.sleep(0.5)


def report(r: dict) -> str:
    audio = [x * 1000 for x in r["first_audio"]]
    lines = [f"{r['sessions']} call(s), face drawn in the {r['where']}: {len(audio)} of {r['asked']} questions answered "
             f"(each customer waits {r['pause_s']:g} s after an answer; {r['packet_ms']} ms Opus packets, as the agent asked)"]
    if audio:
        lines.append(f"  end of speech -> first answer audio received: p50 {statistics.median(audio):5.0f} ms   p95 {pct(audio, 95):5.0f} ms")
    lines.append(f"  audio underruns (a packet >{UNDERRUN_S * 1000:.0f} ms late) per call: {r['underruns']}")
    if r["pose_gaps"] is not None:
        lines.append(f"  pose stream gaps (>{_pose_gap_s() * 1000:.0f} ms) per call: {r['pose_gaps']}; poses a second per call: "
                     f"{min(r['pose_rate']):.1f}-{max(r['pose_rate']):.1f}")
    if r.get("server_late") is not None:
        lines.append(f"  voice packets the server itself sent late (avatar_audio_late_total): {r['server_late']:.0f} in all calls")
    lines.append(f"  {'the machine (front, nodes, Ray)' if r['whole_machine'] else 'server'} CPU: {r['server_cores']:.2f} cores ({r['server_cores'] / r['sessions']:.3f} per call); "
                 f"the aiortc clients on the same cores: {r['client_cores']:.2f} cores")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avatar-agent benchmark calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1], help="concurrent calls; several numbers run one after the other")
    parser.add_argument("--runs", type=int, default=3, help=f"questions per call; 0: {LISTEN_ONLY_S:g} s of calls where nobody speaks (default: %(default)s)")
    parser.add_argument("--where", choices=["browser", "server"], default="browser")
    parser.add_argument("--config")
    parser.add_argument("--pin", action="store_true",
                        help="the server on one core, the clients on the rest (what one core of a server holds)")
    parser.add_argument("--nodes", type=int, default=0,
                        help="through the front to this many agent processes on this machine (a loopback Ray cluster; "
                             "the shipped config otherwise); 0: one `avatar-agent serve` (default)")
    parser.add_argument("--packet-ms", type=int, choices=[20, 40, 60], help="server.audio_packet_ms (default: the config's)")
    parser.add_argument("--pause", type=float, default=0.5, help="seconds a customer waits after an answer before the next "
                        "question (default: %(default)s, customers who never stop)")
    parser.add_argument("--raw-microphone", action="store_true",
                        help="the clients say their microphone is not echo-cancelled (the widget says Chromium's is), so "
                             "the server cancels echo too, as hear.echo_cancellation: auto then does")
    args = parser.parse_args(argv)
    if args.nodes:
        import subprocess
        import sys

        from agent.cluster.loopback import in_private_network, private_network_command

        if not in_private_network():  # Ray binds to the machine's address otherwise: a namespace with loopback only
            return subprocess.call([*private_network_command(), sys.executable, "-m", "benchmarks.calls", *(argv if argv is not None else sys.argv[1:])],
                                   cwd=Path(__file__).resolve().parents[1])
    for sessions in args.sessions:
        cancels = not args.raw_microphone
        result = run_on_nodes(sessions, args.runs, args.where, args.nodes, args.packet_ms, args.pause, cancels) if args.nodes else \
            run(sessions, args.runs, args.where, args.config, args.pin, args.packet_ms, args.pause, cancels)
        print(report(result) + ("\n  (the server on one core, the clients on the other)" if args.pin else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
