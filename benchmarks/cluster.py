"""Scale-out numbers for the README's capacity model.

front:   signalling requests per second the HTTP front holds on its own, on loopback
         (its calls backend answers every offer at once, so only the front's work is timed:
         parsing, origin and size checks, placement bookkeeping, JSON).
cluster: a real two-node Ray cluster on loopback (in a network namespace) behind the real
         front; browser-like callers join one by one, each asking a question, until the
         front says busy. Prints each call's frame rate as its node reports it, and how
         many calls the nodes held at >= 24 fps. The callers' own decoding runs on the
         same cores.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from aiortc import RTCPeerConnection, RTCSessionDescription

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ["How do I reset my password?", "What are your opening hours?", "How can I track my order?", "What is your return policy?"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Caller:
    """A browser-like caller (aiortc) that types its questions in the data channel."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection()
        self.pc.addTransceiver("audio", direction="sendrecv")
        self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("events")
        self.events: list[dict] = []
        self.channel.on("message", lambda m: self.events.append(json.loads(m)))
        self.session: str | None = None
        self.hangup_token: str | None = None
        self.node: str | None = None

    async def offer_sdp(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def call(self, http: aiohttp.ClientSession) -> aiohttp.ClientResponse:
        response = await http.post("/api/offer", json={"sdp": await self.offer_sdp(), "type": "offer"})
        if response.status == 200:
            body = await response.json()
            self.session, self.hangup_token, self.node = body["session"], body["hangup_token"], body["node"]
            await self.pc.setRemoteDescription(RTCSessionDescription(body["sdp"], body["type"]))
        return response

    async def ask(self, text: str, expect: str = "", timeout: float = 90) -> dict:
        """Sends a question and waits for the avatar's answer containing `expect`."""
        for _ in range(int(timeout * 10)):
            if self.channel.readyState == "open":
                break
            await asyncio.sleep(0.1)
        before = len(self.events)
        self.channel.send(json.dumps({"type": "text", "text": text}))
        for _ in range(int(timeout * 10)):
            replies = [e for e in self.events[before:] if e["type"] == "avatar" and expect in e["text"]]
            if replies:
                return replies[0]
            await asyncio.sleep(0.1)
        raise AssertionError(f"no answer with {expect!r} to {text!r}: {self.events[before:]}")

    def hangup_headers(self) -> dict:
        return {"X-Hangup-Token": self.hangup_token or ""}

    async def close(self) -> None:
        await self.pc.close()


def loopback_config(folder: Path, ray_address: str, **sections) -> Path:
    """The shipped config, made self-contained in `folder`, for a front joining `ray_address`; `sections` update it."""
    raw = yaml.safe_load((ROOT / "configs" / "agent.yaml").read_text())
    raw["answer"]["faq_path"] = str(ROOT / "configs" / raw["answer"]["faq_path"])
    raw["answer"]["versions_dir"] = str(folder / "versions")
    raw["cluster"].update(engine="ray", address=ray_address)
    for section, values in sections.items():
        raw[section].update(values) if isinstance(raw.get(section), dict) else raw.__setitem__(section, values)
    path = folder / "cluster.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


class Front:
    """`avatar-agent serve` as a child process, its output in a log file."""

    def __init__(self, config: Path, log_path: Path, env: dict | None = None) -> None:
        self.config, self.env = config, {**os.environ, **(env or {})}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = open(log_path, "ab")
        self._start()

    def _start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "agent.cli", "serve", "--config", str(self.config), "--port", str(self.port)],
                                        cwd=ROOT, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)

    def restart(self) -> None:
        """Stops the front as Ctrl-C does and starts it again on the same port."""
        self._stop_process()
        self._start()

    async def until_nodes(self, http: aiohttp.ClientSession, nodes: int, timeout: float) -> dict:
        deadline, health = time.monotonic() + timeout, {}
        while time.monotonic() < deadline and len(health.get("nodes", {})) < nodes:
            if self.process.poll() is not None:
                raise RuntimeError(f"the front exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                health = await (await http.get("/healthz")).json()
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(1)
        if len(health.get("nodes", {})) < nodes:
            raise RuntimeError(f"{nodes} nodes not ready in {timeout:.0f} s: {health}\n{self.log_path.read_text()[-3000:]}")
        return health

    async def until_quiet(self, http: aiohttp.ClientSession, health: dict, cpu_percent: float, timeout: float = 300) -> dict:
        """Waits while any node is busier than `cpu_percent` (at start-up each speaks its FAQ's answers ahead), so
        what follows measures calls, not that; returns the last health report."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and max(info["cpu_percent"] for info in health["nodes"].values()) >= cpu_percent:
            await asyncio.sleep(1)
            health = await (await http.get("/healthz")).json()
        return health

    def _stop_process(self) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()

    def stop(self) -> None:
        self._stop_process()
        self._log.close()


# ---- front alone --------------------------------------------------------------------------------------------------

class InstantCalls:
    """Answers every offer at once with a fixed SDP: the benchmark times the front, not the calls."""

    def __init__(self, answer_sdp: str) -> None:
        self.answer_sdp, self.opened = answer_sdp, 0

    async def open(self, sdp, tenant, caller, page=None):
        from agent.calls.contract import OpenedCall

        self.opened += 1
        return OpenedCall(f"s{self.opened}", self.answer_sdp, "answer", "local")

    async def hang_up(self, session, tenant):
        return True

    async def health(self):
        return {"status": "ok", "sessions": 0}

    async def active_faq_version(self, tenant):
        return "base"

    async def activate_faq(self, tenant, version):
        return "base"

    async def node_metrics(self, node):
        return None

    async def close(self):
        pass


def _serve_front(port: int, answer_sdp: str) -> None:
    import logging

    from aiohttp import web

    from agent.config import load_config
    from agent.transport.server import create_app

    logging.disable(logging.INFO)  # per-request logs would time the terminal, not the front
    web.run_app(create_app(load_config(), InstantCalls(answer_sdp)), host="127.0.0.1", port=port, print=None, access_log=None)


async def _load(url: str, path: str, body: dict | None, seconds: float, concurrency: int) -> tuple[int, list[float]]:
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds
    async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=concurrency)) as http:
        async def worker() -> None:
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                async with (http.post(path, json=body) if body is not None else http.get(path)) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies


async def bench_front(seconds: float, concurrency: int) -> None:
    caller = Caller()
    offer = await caller.offer_sdp()
    await caller.close()
    port = free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve_front, args=(port, offer), daemon=True)
    server.start()
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(url) as http:
        for _ in range(200):
            try:
                await http.get("/healthz")
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    print(f"front alone on loopback: {concurrency} concurrent clients, {seconds:.0f} s per route, offer SDP {len(offer)} bytes "
          f"(the load generator shares the machine's {os.cpu_count()} cores)")
    for name, path, body in [("POST /api/offer", "/api/offer", {"sdp": offer, "type": "offer"}), ("GET /healthz", "/healthz", None)]:
        count, latencies = await _load(url, path, body, seconds, concurrency)
        latencies.sort()
        print(f"  {name:16s} {count / seconds:7.0f} requests/s   p50 {1000 * latencies[len(latencies) // 2]:.1f} ms   "
              f"p99 {1000 * latencies[int(len(latencies) * 0.99)]:.1f} ms")
    server.terminate()
    server.join(10)


# ---- a real two-node cluster ---------------------------------------------------------------------------------------

def _slowest_fps(metrics_text: str) -> float:
    found = re.search(r"^avatar_video_fps_min ([0-9.e+-]+)$", metrics_text, re.M)
    return float(found.group(1)) if found else 0.0


async def bench_cluster(max_calls: int, settle_s: float, nodes: int, max_cpu: float | None) -> None:
    from agent.cluster import loopback

    folder = Path(tempfile.mkdtemp(prefix="cluster-bench-"))
    address = loopback.start(nodes=nodes, port=free_port())
    admission = {"max_cpu_percent": max_cpu} if max_cpu is not None else {}
    config = loopback_config(folder, address, server={"max_sessions": max_calls, "limits": {"calls_per_address": 1000}},
                             cluster={"admission": admission})
    front = Front(config, folder / "front.log")
    callers: list[Caller] = []
    rows = []
    try:
        async with aiohttp.ClientSession(front.url) as http:
            health = await front.until_quiet(http, await front.until_nodes(http, nodes, timeout=400), 50, timeout=120)
            from agent.config import load_config

            admission = load_config(config).cluster.admission.model_dump()
            print(f"{nodes} nodes on loopback, one machine of {os.cpu_count()} cores; admission: {admission}; "
                  f"a call joins every {settle_s:.0f} s and asks a question")
            for n in range(1, max_calls + 1):
                caller = Caller()
                started = time.perf_counter()
                response = await caller.call(http)
                signalling_ms = 1000 * (time.perf_counter() - started)
                if response.status != 200:
                    print(f"  call {n}: {response.status} {(await response.json())['error']!r} after {signalling_ms:.0f} ms")
                    await caller.close()
                    break
                callers.append(caller)
                await caller.ask(QUESTIONS[n % len(QUESTIONS)])
                await asyncio.sleep(settle_s)
                health = await (await http.get("/healthz")).json()
                slowest = {node: _slowest_fps(await (await http.get(f"/metrics/nodes/{node}")).text()) for node in health["nodes"]}
                rates = [slowest.get(c.node, 0.0) for c in callers]  # each call at its node's slowest: no per-call series
                per_node = {name: info["calls"] for name, info in health["nodes"].items()}
                cpu = statistics.mean(info["cpu_percent"] for info in health["nodes"].values())
                rows.append((n, min(rates)))
                print(f"  {n} calls: placed {per_node}, offer->answer {signalling_ms:.0f} ms, fps per call "
                      f"{' '.join(f'{r:.1f}' for r in rates)} (min {min(rates):.1f}), machine CPU {cpu:.0f}%")
    finally:
        for caller in callers:
            await caller.close()
        front.stop()
        loopback.stop()
    held = max((n for n, low in rows if low >= 24.0), default=0)
    print(f"held at >= 24 fps: {held} calls on {nodes} local nodes (front log: {front.log_path})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avatar-agent benchmark front|cluster", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("suite", choices=["front", "cluster"])
    parser.add_argument("--seconds", type=float, default=10, help="front: seconds of load per route (default: %(default)s)")
    parser.add_argument("--concurrency", type=int, default=16, help="front: concurrent clients (default: %(default)s)")
    parser.add_argument("--max-calls", type=int, default=8, help="cluster: stop after this many calls (default: %(default)s)")
    parser.add_argument("--settle", type=float, default=10, help="cluster: seconds between calls (default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=2, help="cluster: nodes (default: %(default)s)")
    parser.add_argument("--max-cpu", type=float, help="cluster: cluster.admission.max_cpu_percent (default: the config's; 100 = frame rate only)")
    args = parser.parse_args(argv)
    if args.suite == "front":
        asyncio.run(bench_front(args.seconds, args.concurrency))
        return 0
    from agent.cluster.loopback import in_private_network, private_network_command

    if not in_private_network():  # Ray binds to the machine's address otherwise: run in a namespace with loopback only
        return subprocess.call([*private_network_command(), sys.executable, "-m", "benchmarks.cluster", *(argv if argv is not None else sys.argv[1:])], cwd=ROOT)
    asyncio.run(bench_cluster(args.max_calls, args.settle, args.nodes, args.max_cpu))
    return 0


if __name__ == "__main__":
    sys.exit(main())
