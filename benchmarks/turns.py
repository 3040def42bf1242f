"""When does the customer's turn end? The fixed silence rule against the end-of-turn model, on the same clips, in one run.

- Hesitations (`speech_sets.HESITATIONS`): sentences with a pause of 0.4-1.0 s after their opening ("I want to ...
  change my delivery address"), spoken whole so the pause sits inside a sentence's prosody. A turn that ends
  before the customer speaks again is a false cut-off.
- Complete questions (`speech_sets.COMPLETE_QUESTIONS`): the delay from the last sound to the end of the turn.
Each clip is fed in 20 ms chunks on the audio's own clock, through the agent's turn detector and VAD; at each
checkpoint of a pause the model hears the turn so far and Whisper transcribes it, and `turn_model.turn_is_done`
decides, as in a call. The model's time per inference is added to its delays (in a call, transcription runs
beside it). "model alone" leaves the words out, to show what they add.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from benchmarks.latency import pct
from benchmarks.speech_sets import COMPLETE_QUESTIONS, CUSTOMER_VOICES, HESITATION_PAUSES_S, HESITATIONS, SHIPPED_VOICES, hesitating, speaker
from models.audio import SPEECH_RATE

CHUNK = 320


def turn_ends(audio: np.ndarray, hear, model=None, transcriber=None) -> tuple[list[float], list[float]]:
    """(times in s where a turn ended, seconds each model inference took) for one clip followed by 2.5 s of quiet."""
    from agent.conversation import SPECULATE_AFTER_MS
    from agent.hear.turn_model import turn_is_done
    from agent.hear.turns import TurnDetector, TurnEnded, TurnPaused

    judged = model is not None
    detector = TurnDetector(hear.vad_threshold, hear.turn_wait_ms if judged else hear.end_of_turn_ms, hear.min_speech_ms, hear.max_turn_s,
                            pause_ms=SPECULATE_AFTER_MS, judge_ms=hear.turn_pause_ms if judged else None, recheck_ms=hear.turn_recheck_ms)
    audio = np.concatenate([audio, np.zeros(int(2.5 * SPEECH_RATE), np.float32)])
    ends, inference, heard = [], [], {}
    for start in range(0, len(audio), CHUNK):
        now = (start + CHUNK) / SPEECH_RATE
        for event in detector.feed(audio[start : start + CHUNK], now=now):
            if isinstance(event, TurnEnded):
                ends.append(now)
            elif isinstance(event, TurnPaused) and event.judge:
                started = time.perf_counter()
                probability = model.complete(event.audio)
                inference.append(time.perf_counter() - started)
                if transcriber is not None and event.speech_windows not in heard:
                    heard[event.speech_windows] = transcriber.hear_so_far(event.audio)
                done = turn_is_done(probability, heard.get(event.speech_windows), hear.language)
                if done and detector.complete(event.speech_windows, now=now) is not None:
                    ends.append(now)
    return ends, inference


def main(argv: list[str] | None = None) -> int:
    from agent.config import DEFAULT_CONFIG, load_config
    from agent.hear.turn_model import SmartTurn

    parser = argparse.ArgumentParser(prog="avatar-agent benchmark turns", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--voices", nargs="+", default=[*SHIPPED_VOICES[:2], *CUSTOMER_VOICES[:2]])
    args = parser.parse_args(argv)
    from agent.hear.transcriber import WhisperTranscriber
    from models.whisper import load_whisper

    config = load_config(args.config)
    hear = config.hear
    model = SmartTurn()
    transcriber = WhisperTranscriber(load_whisper(hear.asr_model, "cpu", 1), hear.language)
    judged = f"(asked at {hear.turn_pause_ms} ms, again every {hear.turn_recheck_ms} ms, at most {hear.turn_wait_ms} ms)"
    fixed = f"fixed {hear.end_of_turn_ms} ms silence"
    rules = {fixed: (None, None), f"Smart Turn v3.2 alone {judged}": (model, None),
             f"**Smart Turn v3.2 and the words (the default)** {judged}": (model, transcriber)}
    results = {name: {"cut": 0, "hesitations": 0, "delays": [], "missed": 0, "inference": []} for name in rules}
    by_pause = {name: {p: [0, 0] for p in HESITATION_PAUSES_S} for name in rules}
    for voice in args.voices:
        say = speaker(voice)
        for text, words in HESITATIONS:
            for pause in HESITATION_PAUSES_S:
                audio, resume = hesitating(voice, text, words, pause)
                for name, (judge, reader) in rules.items():
                    ends, inference = turn_ends(audio, hear, judge, reader)
                    cut = any(t < resume / SPEECH_RATE for t in ends)
                    r = results[name]
                    r["hesitations"] += 1
                    r["cut"] += cut
                    r["inference"] += inference
                    by_pause[name][pause][0] += cut
                    by_pause[name][pause][1] += 1
        for text in COMPLETE_QUESTIONS:
            audio = say(text)
            last = np.flatnonzero(np.abs(audio) > 0.01)[-1] / SPEECH_RATE
            for name, (judge, reader) in rules.items():
                ends, inference = turn_ends(audio, hear, judge, reader)
                r = results[name]
                r["inference"] += inference
                if ends:
                    r["delays"].append((ends[-1] - last) * 1000 + (1000 * inference[-1] if inference else 0.0))
                else:
                    r["missed"] += 1
    print(f"voices: {', '.join(args.voices)}; {len(HESITATIONS)} hesitations x {len(HESITATION_PAUSES_S)} pauses, "
          f"{len(COMPLETE_QUESTIONS)} complete questions, per voice")
    print("| rule | false cut-offs on hesitations | by pause (" + " / ".join(f"{p:.1f} s" for p in HESITATION_PAUSES_S)
          + ") | last sound -> end of turn on complete questions, p50 (p95) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        delays = r["delays"]
        pauses = " / ".join(f"{100 * c / n:.0f}%" for c, n in by_pause[name].values())
        longest = sum(d >= hear.turn_wait_ms - 50 for d in delays) if name != fixed else 0
        print(f"| {name} | {100 * r['cut'] / r['hesitations']:.1f}% ({r['cut']} of {r['hesitations']}) | {pauses} | "
              f"{statistics.median(delays):.0f} ms ({pct(delays, 95):.0f})" + (f", {r['missed']} not ended" if r["missed"] else "")
              + (f"; {longest} of {len(delays)} waited the longest silence" if longest else "") + " |")
    inference = results[list(rules)[1]]["inference"]
    print(f"end-of-turn model: {1000 * statistics.median(inference):.0f} ms an inference (p95 {1000 * pct(inference, 95):.0f}), one thread")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
