"""Calls a box holds: N real WebRTC calls on loopback to `avatar-agent serve`, from aiortc clients (no Chromium).

Each client is a customer with a microphone that never stops (quiet room noise), asking espeak-ng questions
in turn and waiting for the answers. With `--where browser` the server draws nothing: the clients receive
the avatar's audio and its poses (as a page that draws the avatar would); with `--where server` they receive
audio and video (VP8), which aiortc decodes on the clients' side (use `avatar-agent benchmark --sessions N`,
which encodes in-process and decodes nothing, for the server-video capacity). Measured per call: end of customer speech -> first answer
audio received, audio underruns (more than 100 ms without an audio frame), gaps in the pose stream, and the
server's CPU (its process and its render workers). The clients run on the same cores: their CPU is printed too.
"""
from __future__ import annotations

import argparse
import asyncio
import fractions
import json
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
POSE_GAP_S = 0.2


class Microphone:
    """A customer's microphone: 20 ms frames of room noise, and a question when `say` is called."""

    def __init__(self, seed: int) -> None:
        from aiortc import MediaStreamTrack

        outer = self

        class Track(MediaStreamTrack):
            kind = "audio"

            async def recv(self):
                return await outer._next()

        self.track = Track()
        self._noise = np.random.default_rng(seed).normal(0, 0.001, RATE * 30).astype(np.float32)
        self._queue = np.zeros(0, np.float32)
        self._pts = 0
        self._start: float | None = None
        self.speech_ends: list[float] = []

    def say(self, speech: np.ndarray) -> None:
        loud = np.flatnonzero(np.abs(speech) > 0.01)
        lead = len(self._queue)
        self._queue = np.concatenate([self._queue, speech])
        self._pending_end = (lead + (int(loud[-1]) if loud.size else len(speech))) / RATE

    async def _next(self):
        import av

        if self._start is None:
            self._start = time.perf_counter()
        self._pts += FRAME
        wait = self._start + self._pts / RATE - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        chunk = self._noise[self._pts % (len(self._noise) - FRAME):][:FRAME].copy()
        if len(self._queue):
            if getattr(self, "_pending_end", None) is not None:
                self.speech_ends.append(time.perf_counter() + self._pending_end)
                self._pending_end = None
            take = self._queue[:FRAME]
            chunk[: len(take)] += take
            self._queue = self._queue[FRAME:]
        frame = av.AudioFrame.from_ndarray((np.clip(chunk, -1, 1) * 32767).astype(np.int16).reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = RATE, self._pts, fractions.Fraction(1, RATE)
        return frame


class Client:
    def __init__(self, index: int, where: str) -> None:
        self.index, self.where = index, where
        self.mic = Microphone(index)
        self.audio_times: list[tuple[float, float]] = []  # (arrival, level)
        self.pose_times: list[float] = []
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
            poses.on("message", lambda m: self.pose_times.append(time.perf_counter()))
        pc.on("track", self._on_track)
        await pc.setLocalDescription(await pc.createOffer())
        render = {"webgl2": True, "avatar": True} if self.where == "browser" else None
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/offer", json={"sdp": pc.localDescription.sdp, "type": "offer", "render": render}) as r:
                body = await r.json()
                if r.status != 200:
                    raise RuntimeError(f"call {self.index}: {r.status} {body}")
        await pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))

    def _on_event(self, message) -> None:
        event = json.loads(message)
        self.events.append({**event, "at": time.perf_counter()})
        if event.get("type") == "state" and event.get("state") == "idle":
            self.answered.set()

    def _on_track(self, track) -> None:
        async def read() -> None:
            from aiortc.mediastreams import MediaStreamError

            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                if track.kind == "audio":
                    pcm = frame.to_ndarray().reshape(-1).astype(np.float32) / 32768
                    self.audio_times.append((time.perf_counter(), float(np.sqrt(np.mean(pcm**2)))))

        asyncio.ensure_future(read())  # video frames are read and dropped (aiortc decodes them: client CPU)

    async def ask(self, questions: list[np.ndarray], answer_wait_s: float) -> None:
        await asyncio.wait_for(self.answered.wait(), 60)  # the greeting has been said
        for speech in questions:
            self.answered.clear()
            self.mic.say(speech)
            try:
                await asyncio.wait_for(self.answered.wait(), answer_wait_s)
            except asyncio.TimeoutError:
                pass
            await asyncio.sleep(0.5)

    def first_audio(self) -> list[float]:
        out = []
        for end in self.mic.speech_ends:
            first = next((t for t, level in self.audio_times if t > end + 0.05 and level > 0.01), None)
            if first is not None and first - end < 10:
                out.append(first - end)
        return out

    def underruns(self, since: float) -> int:
        times = [t for t, _ in self.audio_times if t >= since]
        return int(np.sum(np.diff(times) > UNDERRUN_S)) if len(times) > 1 else 0

    def pose_gaps(self, since: float) -> int:
        times = [t for t in self.pose_times if t >= since]
        return int(np.sum(np.diff(times) > POSE_GAP_S)) if len(times) > 1 else 0


def _cpu_seconds(process: psutil.Process) -> float:
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


async def measure(url: str, pid: int, sessions: int, runs: int, where: str) -> dict:
    clients = [Client(i, where) for i in range(sessions)]
    for client in clients:  # one at a time, as callers arrive
        await client.connect(url)
        await asyncio.sleep(0.3)
    recorded = [spoken(q, RATE) for q in QUESTIONS]
    server, here = psutil.Process(pid), psutil.Process()
    await asyncio.sleep(2.0)
    since, cpu0, here0 = time.perf_counter(), _cpu_seconds(server), _cpu_seconds(here)

    async def customer(i: int, client: Client) -> None:
        await asyncio.sleep(0.7 * i % 6)  # customers do not all stop talking at the same instant
        await client.ask([recorded[(i + k) % len(recorded)] for k in range(runs)], 20.0)

    if runs:
        await asyncio.gather(*(customer(i, c) for i, c in enumerate(clients)))
    else:  # calls that only listen: the fixed cost of a call
        await asyncio.sleep(float(__import__('os').environ.get('CALLS_IDLE_S', '20')))
    wall = time.perf_counter() - since
    server_cores, client_cores = (_cpu_seconds(server) - cpu0) / wall, (_cpu_seconds(here) - here0) / wall
    result = {
        "sessions": sessions, "where": where,
        "first_audio": [x for c in clients for x in c.first_audio()],
        "asked": sessions * runs,
        "underruns": [c.underruns(since) for c in clients],
        "pose_gaps": [c.pose_gaps(since) for c in clients] if where == "browser" else None,
        "pose_rate": [len([t for t in c.pose_times if t >= since]) / wall for c in clients] if where == "browser" else None,
        "server_cores": server_cores, "client_cores": client_cores,
    }
    for client in clients:
        await client.pc.close()
    return result


def run(sessions: int, runs: int, where: str, config: str | None) -> dict:
    import yaml

    from agent.config import DEFAULT_CONFIG
    from benchmarks.browser import agent_server

    raw = yaml.safe_load(Path(config or DEFAULT_CONFIG).read_text())
    folder = Path(config or DEFAULT_CONFIG).resolve().parent
    raw["answer"]["faq_path"] = str((folder / raw["answer"]["faq_path"]).resolve())
    raw["answer"].pop("versions_dir", None)
    raw.setdefault("render", {})["where"] = where
    raw.setdefault("server", {})["max_sessions"] = max(sessions, 1)  # the benchmark finds the limit; admission must not
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "agent.yaml"
        path.write_text(yaml.safe_dump(raw))
        with agent_server(f"benchmark-calls-{where}.log", "--config", str(path)) as served:
            time.sleep(3.0)  # the speech cache warms in the background at start-up
            return asyncio.run(measure(served.url, served.process.pid, sessions, runs, where))


def report(r: dict) -> str:
    audio = [x * 1000 for x in r["first_audio"]]
    lines = [f"{r['sessions']} call(s), face drawn in the {r['where']}: {len(audio)} of {r['asked']} questions answered"]
    if audio:
        lines.append(f"  end of speech -> first answer audio received: p50 {statistics.median(audio):5.0f} ms   p95 {pct(audio, 95):5.0f} ms")
    lines.append(f"  audio underruns (>{UNDERRUN_S * 1000:.0f} ms without audio) per call: {r['underruns']}")
    if r["pose_gaps"] is not None:
        lines.append(f"  pose stream gaps (>{POSE_GAP_S * 1000:.0f} ms) per call: {r['pose_gaps']}; poses a second per call: "
                     f"{min(r['pose_rate']):.1f}-{max(r['pose_rate']):.1f}")
    lines.append(f"  server CPU: {r['server_cores']:.2f} cores ({r['server_cores'] / r['sessions']:.3f} per call); "
                 f"the aiortc clients on the same cores: {r['client_cores']:.2f} cores")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avatar-agent benchmark calls", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, nargs="+", default=[1], help="concurrent calls; several numbers run one after the other")
    parser.add_argument("--runs", type=int, default=3, help="questions per call; 0: 20 s of calls where nobody speaks (default: %(default)s)")
    parser.add_argument("--where", choices=["browser", "server"], default="browser")
    parser.add_argument("--config")
    args = parser.parse_args(argv)
    for sessions in args.sessions:
        print(report(run(sessions, args.runs, args.where, args.config)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
