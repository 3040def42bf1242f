"""Real-time factor of each voice on this machine: synthesis time / audio duration, one thread, whole sentences.

Below 1 a voice keeps up with speech on one core; a call needs it well below 1,
since the first sentence's synthesis adds to the answer's latency and the
face model, renderer and encoder share the cores.
"""
from __future__ import annotations

import argparse
import statistics
import time

SENTENCES = (
    "Hi, I'm your support assistant.",
    "Standard shipping costs four ninety-nine, and it is free on orders over fifty dollars.",
    "You can return any unused item within thirty days of delivery for a full refund.",
    "Is there anything else I can help with?",
)


def main(argv: list[str] | None = None) -> int:
    from agent.speak.voices import make_voice
    from agent.speak.kokoro_voice import kokoro_voices

    parser = argparse.ArgumentParser(prog="benchmarks.voices", description=__doc__)
    parser.add_argument("--voice", action="append", help="joe or kokoro:<name>; repeatable (default: joe and four Kokoro voices)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    installed = kokoro_voices()
    names = args.voice or ["joe", *(f"kokoro:{v}" for v in ("af_heart", "am_michael", "bf_emma", "bm_george") if v in installed)]
    print(f"{'voice':<20} {'RTF median':>10} {'RTF worst':>10} {'first sentence ms':>18}")
    for name in names:
        voice = make_voice(name, args.threads, 1.0)
        voice.synthesize("Warm up.")
        ratios, first = [], 0.0
        for i, sentence in enumerate(SENTENCES):
            t0 = time.perf_counter()
            audio = voice.synthesize(sentence)
            took = time.perf_counter() - t0
            first = first or 1000 * took
            ratios.append(took / (len(audio) / voice.sample_rate))
        print(f"{name:<20} {statistics.median(ratios):>10.2f} {max(ratios):>10.2f} {first:>18.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
