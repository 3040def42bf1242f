"""What the transcriber hears: WER and time per turn on real speech and on the project's short utterances, against
faster-whisper's own `transcribe()` on the same clips and model; then the FAQ's words, with and without the bias.

Real speech: ../shared/data/speech (JFK, TIMIT), ../shared/data/grid-lipsync (11 GRID speakers) and Debian's
pocketsphinx-testdata (real speakers reading card names, "five five", and LibriVox), where present.
Short utterances (`speech_sets.SHORT_UTTERANCES`) are spoken by espeak-ng voices and the agent's shipped voices.
A loop is a phrase repeated more often than a person says it (`hear.transcriber.repeated_phrase`).
"""
from __future__ import annotations

import argparse
import re
import statistics
import time
from pathlib import Path

import numpy as np

from benchmarks.latency import pct
from benchmarks.speech_sets import (CUSTOMER_VOICES, FAQ_WORD_QUESTIONS, SHIPPED_VOICES, SHORT_UTTERANCES, comparable, speaker,
                                    word_errors)
from models.audio import SPEECH_RATE, read_wav, resample

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")


def real_speech() -> list[tuple[str, str, np.ndarray]]:
    """(name, transcript, 16 kHz audio) for every real recording found."""
    found: list[tuple[str, str, Path]] = []
    for folder in (SHARED / "speech", SHARED / "grid-lipsync"):
        table = folder / "transcripts.tsv"
        if table.exists():
            rows = [line.split("\t") for line in table.read_text().splitlines() if line.strip() and not line.startswith("file\t")]
            found += [(row[0], row[2] if len(row) > 3 else row[1], folder / row[0]) for row in rows
                      if len(row) < 4 or row[1] == "en"]
    for folder, listing in (("cards", "cards/cards.transcription"), ("librivox", "librivox/transcription")):
        if (POCKETSPHINX / listing).exists():
            for line in (POCKETSPHINX / listing).read_text().splitlines():
                match = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
                if match:
                    found.append((f"{folder}/{match.group(2)}", match.group(1).strip(), POCKETSPHINX / folder / f"{match.group(2)}.wav"))
    clips = []
    for name, text, path in found:
        if path.exists():
            audio, rate = read_wav(path)
            clips.append((name, text, resample(audio, rate, SPEECH_RATE)))
    return clips


def short_utterances(voices) -> list[tuple[str, str, np.ndarray]]:
    clips = []
    for voice in voices:
        try:
            say = speaker(voice)
        except Exception as exc:  # Kokoro not installed, say
            print(f"  (voice {voice} left out: {exc})")
            continue
        clips += [(voice, text, say(text)) for texts in SHORT_UTTERANCES.values() for text in texts]
    return clips


def is_loop(text: str) -> bool:
    from agent.hear.transcriber import repeated_phrase

    return repeated_phrase(re.sub(r"[^\w' ]", " ", text.lower()).split()) is not None


def score(hear, clips) -> dict:
    errors = words = loops = exact = 0
    times = []
    for _, reference, audio in clips:
        started = time.perf_counter()
        heard = hear(audio)
        times.append(time.perf_counter() - started)
        e, n = word_errors(reference, heard)
        errors, words = errors + e, words + n
        loops += is_loop(heard)
        exact += comparable(heard) == comparable(reference)
    return {"wer": errors / max(words, 1), "loops": loops, "exact": exact, "n": len(clips),
            "ms_median": 1000 * statistics.median(times), "ms_p95": pct([1000 * t for t in times], 95)}


def methods(model: str, threads: int):
    """(name, hear) for our transcriber and faster-whisper's transcribe() on the same model."""
    from faster_whisper import WhisperModel

    from agent.hear.transcriber import WhisperTranscriber
    from models.whisper import load_whisper, resolve_model_dir

    ours = WhisperTranscriber(load_whisper(model, "cpu", threads))
    theirs = WhisperModel(str(resolve_model_dir(model)), device="cpu", compute_type="int8", cpu_threads=threads)
    language = "en" if theirs.model.is_multilingual else None

    def faster_whisper(audio: np.ndarray) -> str:
        segments, _ = theirs.transcribe(audio, language=language)
        return " ".join(s.text.strip() for s in segments)

    return [(f"ours ({model})", ours.transcribe), (f"faster-whisper transcribe() ({model})", faster_whisper)], ours, theirs


def faq_words(ours, theirs) -> None:
    """Per FAQ: how often the FAQ's word is heard in questions that contain it, without the bias, with it, and by
    faster-whisper given the same words as `hotwords`."""
    from agent.hear.vocabulary import faq_vocabulary

    voices = [speaker(v) for v in ("espeak:en-us", "joe")]
    totals = [0, 0, 0, 0]
    for name, (entries, questions) in FAQ_WORD_QUESTIONS.items():
        words = faq_vocabulary((t for e in entries for t in e.texts), ours.whisper.tokenizer)
        biased = ours.with_vocabulary(lambda words=words: words)
        counts = [0, 0, 0, 0]  # questions, heard without, with, faster-whisper hotwords
        for say in voices:
            for question, word in questions:
                audio = say(question)
                heard = [ours.transcribe(audio), biased.transcribe(audio),
                         " ".join(s.text for s in theirs.transcribe(audio, hotwords=", ".join(words))[0])]
                counts[0] += 1
                for i, text in enumerate(heard, 1):
                    counts[i] += word.lower() in text.lower()
        totals = [a + b for a, b in zip(totals, counts)]
        print(f"  {name:<10} ({', '.join(words)}): without bias {counts[1]}/{counts[0]}, with it {counts[2]}/{counts[0]}, "
              f"faster-whisper hotwords {counts[3]}/{counts[0]}")
    print(f"  all: without bias {totals[1]}/{totals[0]}, with it {totals[2]}/{totals[0]}, faster-whisper hotwords {totals[3]}/{totals[0]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avatar-agent benchmark asr", description=__doc__)
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"], help="Whisper models (base needs its two PyPI parts)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads per model (default: %(default)s)")
    parser.add_argument("--quick", action="store_true", help="espeak voices only, no faq words")
    args = parser.parse_args(argv)
    from models.whisper import AsrModelMissing

    real = real_speech()
    short = short_utterances(CUSTOMER_VOICES if args.quick else (*CUSTOMER_VOICES, *SHIPPED_VOICES))
    print(f"real speech: {len(real)} clips; short utterances: {len(short)} clips; {args.threads} thread(s)")
    print(f"{'method':<42} {'real WER':>8} {'short WER':>9} {'exact':>9} {'loops':>6} {'ms/turn median':>15} {'p95':>6}")
    for model in args.models:
        try:
            hearing, ours, theirs = methods(model, args.threads)
        except AsrModelMissing as exc:
            print(f"  {model}: not installed ({exc})")
            continue
        for name, hear in hearing:
            r, s = score(hear, real), score(hear, short)
            print(f"{name:<42} {100 * r['wer']:7.1f}% {100 * s['wer']:8.1f}% {s['exact']:>4}/{s['n']:<4} {r['loops'] + s['loops']:>6} "
                  f"{s['ms_median']:>10.0f} ms {s['ms_p95']:>5.0f}   (real: {r['ms_median']:.0f} ms median)")
        if not args.quick:
            print(f"FAQ words ({model}):")
            faq_words(ours, theirs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
