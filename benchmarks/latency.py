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


async def run(config_path: str, runs: int) -> dict:
    from agent.config import load_config
    from agent.conversation import Conversation
    from agent.engines import Engines
    from agent.render.renderer import RenderThread
    from agent.transport.tracks import AvatarVideoTrack

    config = load_config(config_path)
    engines = Engines.load(config)
    conversation = Conversation("bench", engines, config, lambda event: None)
    renderer = RenderThread(engines.avatar, config.render.width, config.render.height, config.render.backend)
    video = AvatarVideoTrack(conversation.playout, renderer, config.render.fps)
    stop = asyncio.Event()
    frame_times: list[float] = []

    async def play_audio():  # stands in for the WebRTC audio track: 20 ms per 20 ms
        start = time.perf_counter()
        n = 0
        while not stop.is_set():
            conversation.playout.next_audio_frame()
            n += 1
            await asyncio.sleep(max(0.0, start + n * 0.02 - time.perf_counter()))

    async def play_video():
        while not stop.is_set():
            await video.recv()
            frame_times.append(time.perf_counter())

    background = [asyncio.create_task(play_audio()), asyncio.create_task(play_video())]
    await asyncio.sleep(2.0)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for question in (QUESTIONS * ((runs // len(QUESTIONS)) + 1))[:runs]:
        audio = np.concatenate([spoken(question), np.zeros(16000, np.float32)])
        start = time.perf_counter()
        for i in range(0, len(audio), 320):
            conversation.hear(audio[i : i + 320])
            await asyncio.sleep(max(0.0, start + (i + 320) / 16000 - time.perf_counter()))
        while conversation.playout.speaking or conversation.responding:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    stop.set()
    await asyncio.gather(*background, return_exceptions=True)
    video.stop()
    renderer.close()
    engines.close()
    intervals = np.diff(frame_times)
    stages: dict[str, list[float]] = {}
    for stage, seconds in conversation.stage_timings:
        stages.setdefault(stage, []).append(seconds)
    return {
        "latencies": conversation.response_latencies,
        "stages": stages,
        "fps": float(1.0 / np.median(intervals)) if len(intervals) else 0.0,
        "fps_mean": float(len(intervals) / (frame_times[-1] - frame_times[0])) if len(intervals) else 0.0,
        "cpu_cores": cpu,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_mb": _current_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    from agent.config import DEFAULT_CONFIG

    parser = argparse.ArgumentParser(prog="benchmarks.latency", description=__doc__)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.config, args.runs))
    lat = [x * 1000 for x in result["latencies"]]
    print(f"\nend of speech -> first avatar audio over {len(lat)} questions (includes the end-of-turn silence):")
    print(f"  median {statistics.median(lat):.0f} ms   p95 {pct(lat, 95):.0f} ms   all: {', '.join(f'{x:.0f}' for x in lat)}")
    print("per stage (ms):")
    for stage, values in result["stages"].items():
        ms = [v * 1000 for v in values]
        print(f"  {stage:<11} median {statistics.median(ms):6.1f}   p95 {pct(ms, 95):6.1f}   n={len(ms)}")
    print(f"video: {result['fps_mean']:.1f} fps rendered while answering (median frame interval -> {result['fps']:.1f} fps)")
    print(f"CPU: {result['cpu_cores']:.2f} cores for one session (of {os.cpu_count()}), RSS {result['rss_mb']:.0f} MB at the end, peak {result['max_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
