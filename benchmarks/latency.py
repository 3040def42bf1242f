"""End of customer speech -> first avatar audio, per stage, with a session's video rendering alongside.

Questions are spoken by espeak-ng and fed in real time (20 ms chunks), so the
end-of-turn silence counts as it would in a call. Prints medians and p95.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from agent.audio import read_wav, resample

QUESTIONS = [
    "What are your opening hours?",
    "How do I reset my password?",
    "Where is my order?",
    "Can I return an item?",
    "Do you ship internationally?",
    "Which payment methods do you accept?",
    "How much does shipping cost?",
]


def spoken(text: str, rate: int = 16000) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "q.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
        pcm, src = read_wav(path)
    return resample(pcm, src, rate)


def _current_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class _SessionHarness:
    """One customer's session without WebRTC: the real conversation, playout, renderer and video track, paced in real time."""

    def __init__(self, name: str, engines, config) -> None:
        from agent.animate.arkit import INDEX
        from agent.conversation import Conversation
        from agent.render.renderer import start_renderer
        from agent.transport.tracks import AvatarVideoTrack

        self.conversation = Conversation(name, engines, config, lambda event: None)
        self.renderer = start_renderer(engines.avatar_for("demo"), config.render)
        self.video = AvatarVideoTrack(self.conversation.playout, self.renderer, config.render.fps)
        self.jaw = INDEX["jawOpen"]
        self.frames: list[tuple[float, float]] = []  # (time, jawOpen of the speech pose in that frame)
        self.speech_ends: list[float] = []
        self.stop = asyncio.Event()

    async def play_audio(self) -> None:  # stands in for the WebRTC audio track: 20 ms per 20 ms
        start, n = time.perf_counter(), 0
        while not self.stop.is_set():
            self.conversation.playout.next_audio_frame()
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.perf_counter()))

    async def play_video(self) -> None:
        while not self.stop.is_set():
            await self.video.recv()
            self.frames.append((time.perf_counter(), float(self.conversation.playout.pose()[self.jaw])))

    async def ask(self, questions: list[np.ndarray]) -> None:
        for speech in questions:
            audio = np.concatenate([speech, np.zeros(16000, np.float32)])
            start = time.perf_counter()
            last_sound = int(np.flatnonzero(np.abs(speech) > 0.01)[-1]) if np.any(np.abs(speech) > 0.01) else len(speech)
            self.speech_ends.append(start + last_sound / 16000)  # where the voice stops, as the VAD hears it
            for i in range(0, len(audio), 320):
                self.conversation.hear(audio[i : i + 320])
                await asyncio.sleep(max(0.0, start + (i + 320) / 16000 - time.perf_counter()))
            while self.conversation.playout.speaking or self.conversation.responding:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)

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
        self.video.stop()
        self.renderer.close()


async def run(config_path: str, runs: int, sessions: int = 1) -> dict:
    from agent.config import load_config
    from agent.engines import Engines

    config = load_config(config_path)
    engines = Engines.load(config)
    recorded = [spoken(q) for q in QUESTIONS]
    rss_loaded = _current_rss_mb()
    harnesses = [_SessionHarness(f"bench{i}", engines, config) for i in range(sessions)]
    background = [asyncio.create_task(c) for h in harnesses for c in (h.play_audio(), h.play_video())]
    await asyncio.sleep(2.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()

    async def customer(i: int, h: _SessionHarness) -> None:
        await asyncio.sleep(0.7 * i)  # customers do not all stop talking at the same instant
        await h.ask([recorded[(i + k) % len(recorded)] for k in range(runs)])

    await asyncio.gather(*(customer(i, h) for i, h in enumerate(harnesses)))
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
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
        "latencies": [x for h in harnesses for x in h.conversation.response_latencies],
        "mouth_latencies": [x for h in harnesses for x in h.mouth_latencies()],
        "stages": stages,
        "fps_per_session": [h.fps(wall0) for h in harnesses],
        "cpu_cores": cpu,
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
    args = parser.parse_args(argv)
    r = asyncio.run(run(args.config, args.runs, args.sessions))
    lat = [x * 1000 for x in r["latencies"]]
    mouth = [x * 1000 for x in r["mouth_latencies"]]
    print(f"\n{r['sessions']} concurrent session(s), {len(lat)} questions (end of speech includes the end-of-turn silence):")
    print(f"  end of speech -> first avatar audio:        median {statistics.median(lat):5.0f} ms   p95 {pct(lat, 95):5.0f} ms")
    if mouth:
        print(f"  end of speech -> first moving-mouth frame:  median {statistics.median(mouth):5.0f} ms   p95 {pct(mouth, 95):5.0f} ms")
    print("per stage (ms):")
    for stage, values in r["stages"].items():
        ms = [v * 1000 for v in values]
        print(f"  {stage:<11} median {statistics.median(ms):6.1f}   p95 {pct(ms, 95):6.1f}   n={len(ms)}")
    fps = r["fps_per_session"]
    print(f"video fps per session while answering: {', '.join(f'{f:.1f}' for f in fps)} (lowest {min(fps):.1f}; "
          f"{'all hold' if min(fps) >= 24.5 else 'NOT all hold'} 25 fps)")
    print(f"CPU: {r['cpu_cores']:.2f} cores in all ({r['cpu_cores'] / r['sessions']:.2f} per session, of {os.cpu_count()}); "
          f"RSS {r['rss_mb']:.0f} MB ({r['rss_per_session_mb']:.0f} MB per session on top of the shared models)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
