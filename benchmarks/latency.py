"""End of customer speech -> first avatar audio, per stage, with a session's video rendering alongside.

Questions are spoken by one of the voices (Kokoro by default; `--customer` picks another) and fed in real time (20 ms chunks), so the
end-of-turn silence counts as it would in a call. Prints medians and p95.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.speech_sets import spoken

QUESTIONS = [
    "What are your opening hours?",
    "How do I reset my password?",
    "Where is my order?",
    "Can I return an item?",
    "Do you ship internationally?",
    "Which payment methods do you accept?",
    "How much does shipping cost?",
]


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _children_cpu_seconds() -> float:
    """CPU time of this process's live child processes (the render workers), from /proc."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for child in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in child.read_text().split():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
            except (OSError, IndexError):
                pass
    return total


class _SessionHarness:
    """One customer's session without the network: the real conversation, playout, renderer and tracks,
    paced in real time, with every video frame encoded by aiortc's VP8 encoder and the voice by the track, as a call's sender does."""

    def __init__(self, name: str, engines, config) -> None:
        from models.arkit import INDEX
        from agent.conversation import Conversation
        from agent.output.sinks import ServerVideo
        from agent.render.frames import start_renderer
        from agent.transport.tracks import AvatarAudioTrack, AvatarVideoTrack

        tenant = config.tenant(config.default_tenant)
        self.conversation = Conversation(name, engines.stages_for(tenant), config.hear, lambda event: None, config.render.fps)
        self.port = self.conversation.output
        self.port.attach(ServerVideo(self.port, start_renderer(engines.avatar_for(tenant), config.render), name))
        self.video = AvatarVideoTrack(self.port.sinks[0], config.render.fps)
        self.jaw = INDEX["jawOpen"]
        from aiortc.codecs.vpx import Vp8Encoder

        self.audio = AvatarAudioTrack(self.port, packet_ms=config.server.audio_packet_ms.server)
        self.video_encoder = Vp8Encoder()
        self.frames: list[tuple[float, float]] = []  # (time, jawOpen of the speech pose in that frame)
        self.video_bytes = 0
        self.speech_ends: list[float] = []
        self.stop = asyncio.Event()

    async def play_audio(self) -> None:  # as aiortc's sender: pull the next packet (the track encodes its voice)
        while not self.stop.is_set():
            await self.audio.recv()

    async def play_video(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop.is_set():
            frame = await self.video.recv()
            self.frames.append((time.perf_counter(), float(self.port.playout.pose()[self.jaw])))
            packets, _ = await loop.run_in_executor(None, self.video_encoder.encode, frame)
            self.video_bytes += sum(len(p) for p in packets)

    async def ask(self, questions: list[np.ndarray]) -> None:
        """A microphone that never stops, as a browser's: quiet room noise, and each question when its turn comes.

        (Feeding only the questions starved the echo canceller of microphone frames while the avatar spoke,
        and it then muted the start of the next question.)"""
        room = np.random.default_rng(len(questions)).normal(0, 0.001, 16000 * 60).astype(np.float32)
        start, fed = time.perf_counter(), 0

        async def feed(speech: np.ndarray | None = None) -> None:
            nonlocal fed
            offset = fed % (len(room) - 320)
            chunk = room[offset : offset + 320].copy()
            if speech is not None:
                chunk[: len(speech)] += speech
            self.conversation.hear(chunk)
            fed += 320
            await asyncio.sleep(max(0.0, start + fed / 16000 - time.perf_counter()))

        for speech in questions:
            for _ in range(25):  # half a second of quiet before each question
                await feed()
            loud = np.flatnonzero(np.abs(speech) > 0.01)
            self.speech_ends.append(start + (fed + (int(loud[-1]) if loud.size else len(speech))) / 16000)
            for i in range(0, len(speech), 320):
                await feed(speech[i : i + 320])
            while self.port.speaking or self.conversation.responding or time.perf_counter() < self.speech_ends[-1] + 1.0:
                await feed()

    def mouth_latencies(self) -> list[float]:
        """End of the customer's speech -> first video frame whose mouth moves with the answer."""
        out = []
        for end in self.speech_ends:
            moving = [t for t, jaw in self.frames if t > end and jaw > 0.05]
            if moving:
                out.append(moving[0] - end)
        return out

    def fps(self, since: float) -> float:
        times = [t for t, _ in self.frames if t >= since]
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 2 else 0.0

    def close(self) -> None:
        self.stop.set()
        self.audio.stop()
        self.video.stop()
        self.port.close()


CUSTOMER = "kokoro:am_michael"  # a natural voice, unlike the avatar's joe (espeak-ng's robotic prosody leaves end-of-turn models unsure)


async def run(config_path: str, runs: int, sessions: int = 1, warm: bool = True, customer: str = CUSTOMER) -> dict:
    from agent.config import load_config
    from agent.engines import Engines
    from models.devices import use_models_offline

    from agent.transport.tracks import use_video_bitrate

    config = load_config(config_path)
    use_models_offline(config.threads)
    use_video_bitrate(config.render.video_kbps)
    engines = Engines.load(config)
    if warm:  # as a server that has been up for a minute: its answers are spoken ahead (avatar-agent serve does this)
        engines.warm_speech([config.tenant(config.default_tenant)])
    recorded = [spoken(q, voice=customer) for q in QUESTIONS]
    rss_loaded = _current_rss_mb()
    harnesses = [_SessionHarness(f"bench{i}", engines, config) for i in range(sessions)]
    background = [asyncio.create_task(c) for h in harnesses for c in (h.play_audio(), h.play_video())]
    await asyncio.sleep(2.0)
    cpu0, wall0, children0 = time.process_time(), time.perf_counter(), _children_cpu_seconds()
    bytes0 = [h.video_bytes for h in harnesses]

    async def customer(i: int, h: _SessionHarness) -> None:
        await asyncio.sleep(0.7 * i)  # customers do not all stop talking at the same instant
        await h.ask([recorded[(i + k) % len(recorded)] for k in range(runs)])

    await asyncio.gather(*(customer(i, h) for i, h in enumerate(harnesses)))
    wall = time.perf_counter() - wall0
    cpu = (time.process_time() - cpu0) / wall
    render_cpu = (_children_cpu_seconds() - children0) / wall
    rss_busy = _current_rss_mb()
    for h in harnesses:
        h.stop.set()
    await asyncio.gather(*background, return_exceptions=True)  # let the loops finish their frame before the renderers go
    for h in harnesses:
        h.close()
    engines.close()
    stages: dict[str, list[float]] = {}
    for h in harnesses:
        for stage, seconds in h.conversation.stage_timings:
            stages.setdefault(stage, []).append(seconds)
    return {
        "sessions": sessions,
        "warm": warm,
        "latencies": [x for h in harnesses for x in h.conversation.response_latencies],
        "mouth_latencies": [x for h in harnesses for x in h.mouth_latencies()],
        "stages": stages,
        "fps_per_session": [h.fps(wall0) for h in harnesses],
        "video_kbps_per_session": [8 * (h.video_bytes - b) / 1000 / wall for h, b in zip(harnesses, bytes0)],
        "cpu_cores": cpu + render_cpu,
        "render_process_cores": render_cpu,
        "rss_mb": rss_busy,
        "rss_per_session_mb": (rss_busy - rss_loaded) / sessions,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> int:
    from agent.config import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog="benchmarks.latency", description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--runs", type=int, default=5, help="questions per session")
    parser.add_argument("--sessions", type=int, default=1, help="concurrent sessions")
    parser.add_argument("--cold", action="store_true", help="do not speak the FAQ's answers ahead (every sentence is synthesised)")
    parser.add_argument("--customer", default=CUSTOMER, help="the voice that asks: one of the agent's (joe, kokoro:<name>, "
                                                            "espeak:<voice>; default: %(default)s)")
    args = parser.parse_args(argv)
    r = asyncio.run(run(args.config, args.runs, args.sessions, not args.cold, args.customer))
    lat = [x * 1000 for x in r["latencies"]]
    mouth = [x * 1000 for x in r["mouth_latencies"]]
    print(f"\n{r['sessions']} concurrent session(s), {len(lat)} questions asked by {args.customer} (end of speech includes the end of the turn), "
          f"speech cache {'warm' if r['warm'] else 'cold'}:")
    print(f"  end of speech -> first avatar audio:        median {statistics.median(lat):5.0f} ms   p95 {pct(lat, 95):5.0f} ms")
    if mouth:
        print(f"  end of speech -> first moving-mouth frame:  median {statistics.median(mouth):5.0f} ms   p95 {pct(mouth, 95):5.0f} ms")
    print("per stage (ms):")
    for stage, values in r["stages"].items():
        ms = [v * 1000 for v in values]
        print(f"  {stage:<11} median {statistics.median(ms):6.1f}   p95 {pct(ms, 95):6.1f}   n={len(ms)}")
    fps = r["fps_per_session"]
    print(f"video fps per session while answering: {', '.join(f'{f:.1f}' for f in fps)} (lowest {min(fps):.1f}; "
          f"{'all hold' if min(fps) >= 24.5 else 'NOT all hold'} 25 fps); VP8 "
          f"{', '.join(f'{k:.0f}' for k in r['video_kbps_per_session'])} kbit/s per session")
    print(f"CPU: {r['cpu_cores']:.2f} cores in all ({r['cpu_cores'] / r['sessions']:.2f} per session, of {os.cpu_count()}; "
          f"render processes {r['render_process_cores']:.2f} of it, VP8 + Opus encoding included); "
          f"RSS {r['rss_mb']:.0f} MB ({r['rss_per_session_mb']:.0f} MB per session on top of the shared models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
