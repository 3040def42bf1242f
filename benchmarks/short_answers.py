"""Short answers: how often the transcriber hears yes/no, single digits, digit strings and short phrases right, per kind
and per band, from as many voices as the project can make and the few real recordings a package ships.

Voices: Piper joe, every installed Kokoro English voice, espeak-ng variants and flite's voices (both run as programs).
Real people: the digit of each of the 11 GRID clips in ../shared (cut where pocketsphinx's forced alignment puts it)
and a TIDIGITS speaker reading "two nine three four zero" (Debian's pocketsphinx-testdata), where present.
Bands: 16 kHz as made; the telephone band (down to 8 kHz, 300-3400 Hz, G.711 mu-law, back to 16 kHz); each with and
without noise (pink noise at 12 dB SNR, seeded).

Each clip is heard twice: as an open turn, and as the answer to a question that asked for it (`hear.expect`); the
short phrases also as what a customer says instead of the number the agent asked for. A clip is right when its
words, after Whisper's English normaliser and our number reading, are the reference's (a yes or a no: when it means
the same). Below each table: what the conversation's guard would do with the short turns (ask back those heard
unsure). Synthesised clips are kept in a cache folder, so a second run only transcribes.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmarks.speech_sets import comparable, speaker, with_silence
from models.audio import SPEECH_RATE, read_wav, resample

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT.parent / "shared" / "data" / "grid-lipsync"
TIDIGITS = Path("/usr/share/pocketsphinx/test/data/tidigits/dhd.2934z.raw")  # 16 kHz 16-bit, "two nine three four zero"
CACHE = Path.home() / ".cache" / "avatar-agent" / "short-answers"

# (what is said, what the agent asked for it: hear.expect's kinds)
KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "yes/no": (("yes", "no", "yeah", "nope", "yes please", "no thanks", "yes it is", "no I don't"), "yes_no"),  # by meaning
    "single digit": (("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"), "number"),
    "digit string": (("four seven one nine", "five one eight one", "three zero zero two", "eight six two four", "nine nine one seven",
                      "two five five eight", "six oh three one", "one eight eight five"), "number"),
    "short phrase": (("cancel my order", "a refund", "track my parcel", "talk to a person", "my password", "opening hours",
                      "the blue one", "next week", "hello", "thanks", "refund", "goodbye", "cancel"), "open"),
}
INSTEAD_OF_A_NUMBER = "phrase, not the number asked for"
ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029", "en-us-nyc", "en-gb-x-rp+f2", "en+m3")
FLITE_VOICES = ("slt", "rms", "awb", "kal")
BANDS = ("16k", "16k+noise", "phone", "phone+noise")
NOISE_SNR_DB = 12.0


def all_voices(quick: bool) -> list[str]:
    from agent.speak.kokoro_voice import kokoro_voices

    kokoro = [f"kokoro:{v}" for v in kokoro_voices()]
    if quick:
        return ["joe", *kokoro[::7], *(f"espeak:{v}" for v in ESPEAK_VOICES[:3]), *(f"flite:{v}" for v in FLITE_VOICES[:2])]
    return ["joe", *kokoro, *(f"espeak:{v}" for v in ESPEAK_VOICES), *(f"flite:{v}" for v in FLITE_VOICES)]


def _flite(voice: str):
    def say(text: str) -> np.ndarray:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "said.wav"
            subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(path)], check=True, capture_output=True, timeout=60)
            audio, rate = read_wav(path)
        return with_silence(resample(audio, rate, SPEECH_RATE))
    return say


def synthesised(voice: str) -> dict[str, np.ndarray]:
    """Every text of KINDS said by `voice` (16 kHz), from the cache when it has them."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{voice.replace(':', '_')}.npz"
    texts = [t for said, _ in KINDS.values() for t in said]
    clips = dict(np.load(path)) if path.exists() else {}
    missing = [t for t in texts if t not in clips]
    if missing:
        say = _flite(voice.split(":", 1)[1]) if voice.startswith("flite:") else speaker(voice)
        clips.update({t: np.asarray(say(t), np.float32) for t in missing})
        np.savez(path, **clips)
    return {t: clips[t] for t in texts}


def real_clips() -> list[tuple[str, str, str, np.ndarray]]:
    """(speaker, kind, text, 16 kHz audio) of real people saying digits."""
    clips = []
    table = GRID / "transcripts.tsv"
    if table.exists():
        from models.audio2face.data.align import Aligner

        aligner = Aligner()
        for line in table.read_text().splitlines():
            name, text = line.split("\t")
            audio, rate = read_wav(GRID / name)
            audio = resample(audio, rate, SPEECH_RATE)
            words = aligner.words(audio, text)
            _, start, end = words[4]  # GRID: command colour preposition letter DIGIT adverb
            digit = audio[max(0, int((start - 0.02) * SPEECH_RATE)): int(end * SPEECH_RATE)]  # none of the next word
            clips.append((f"grid:{name[5:9]}", "single digit", text.split()[4], with_silence(digit)))
    if TIDIGITS.exists():
        audio = np.frombuffer(TIDIGITS.read_bytes(), "<i2").astype(np.float32) / 32768
        clips.append(("tidigits:dhd", "digit string", "two nine three four zero", with_silence(audio, 0.1, 0.3)))
    return clips


def in_band(audio: np.ndarray, band: str, seed: int) -> np.ndarray:
    """The clip as it reaches the agent through `band`."""
    if band.startswith("phone"):
        audio = telephone(audio)
    if band.endswith("+noise"):
        audio = with_noise(audio, NOISE_SNR_DB, seed)
    return audio.astype(np.float32)


@lru_cache(maxsize=1)
def _telephone_filter():
    from scipy.signal import butter

    return butter(6, (300, 3400), "bandpass", fs=8000, output="sos")


def telephone(audio16k: np.ndarray) -> np.ndarray:
    from scipy.signal import sosfilt

    narrow = sosfilt(_telephone_filter(), resample(audio16k, SPEECH_RATE, 8000))
    mu = 255.0  # G.711 mu-law, 8 bits
    coded = np.sign(narrow) * np.log1p(mu * np.minimum(np.abs(narrow), 1.0)) / np.log1p(mu)
    coded = np.round(coded * 127) / 127
    decoded = np.sign(coded) * np.expm1(np.abs(coded) * np.log1p(mu)) / mu
    return resample(decoded.astype(np.float32), 8000, SPEECH_RATE)


def with_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(len(audio) + 1)
    pink = np.fft.irfft(np.fft.rfft(white) / np.sqrt(np.arange(1, len(white) // 2 + 2)), len(white))[: len(audio)]
    speech = audio[np.abs(audio) > 0.01 * np.abs(audio).max()] if np.any(audio) else audio
    level = np.sqrt(np.mean(speech ** 2)) / (10 ** (snr_db / 20)) if speech.size else 0.0
    return audio + pink / np.sqrt(np.mean(pink ** 2)) * level


def right(kind: str, reference: str, heard: str) -> bool:
    """A yes or a no is right when it means the same ("yeah" heard "Yes."); anything else when its words are the same."""
    if kind == "yes/no":
        from agent.hear.expect import yes_or_no

        return yes_or_no(heard) == yes_or_no(reference)
    return comparable(heard) == comparable(reference)


def run(transcriber, clips, bands, with_expectation: bool) -> dict:
    """Per (kind, band): [right, clips]; and the misses, and the time per clip."""
    from agent.hear.expect import OPEN, Expectation

    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    misses, times, sureness = [], [], []
    for index, (voice, kind, text, audio) in enumerate(clips):
        asked = [(kind, Expectation(KINDS[kind][1]) if with_expectation else OPEN)]
        if with_expectation and kind == "short phrase":  # what a customer says instead of the number the agent asked for
            asked.append((INSTEAD_OF_A_NUMBER, Expectation("number")))
        for band in bands:
            heard_audio = in_band(audio, band, index)
            for row, expecting in asked:
                started = time.perf_counter()
                said = transcriber.hear(heard_audio, expecting)
                heard = said.text
                times.append(time.perf_counter() - started)
                ok = right(kind, text, heard)
                sureness.append((ok, said.sure, len(heard.split())))
                tally[(row, band)][0] += ok
                tally[(row, band)][1] += 1
                if not ok:
                    misses.append((voice, band, text, heard))
    return {"tally": dict(tally), "misses": misses, "ms": 1000 * statistics.median(times), "sureness": sureness}


def asked_back(result: dict) -> str:
    """What the conversation's guard does with these turns: short ones heard unsure are asked back, not acted on."""
    from agent.conversation import SHORT_TURN_WORDS, UNSURE_BELOW

    short = [(ok, sure) for ok, sure, words in result["sureness"] if words <= SHORT_TURN_WORDS]
    wrong = [sure for ok, sure in short if not ok]
    fine = [sure for ok, sure in short if ok]
    caught = sum(s < UNSURE_BELOW for s in wrong)
    bothered = sum(s < UNSURE_BELOW for s in fine)
    acted = len(wrong) - caught
    return (f"  asked back (sure < {UNSURE_BELOW}): {caught} of {len(wrong)} misheard short turns, {bothered} of {len(fine)} heard "
            f"right; acted on wrongly: {acted} of {len(short)} ({100 * acted / max(len(short), 1):.1f}%)")


def print_table(title: str, result: dict, bands) -> None:
    tally = result["tally"]
    print(f"\n{title} (median {result['ms']:.0f} ms a clip)")
    print(f"  {'kind':<14}" + "".join(f"{b:>14}" for b in bands) + f"{'all':>14}")
    for kind in (*KINDS, INSTEAD_OF_A_NUMBER):
        cells = [tally.get((kind, b)) for b in bands]
        if not any(cells):
            continue
        total = [sum(c[0] for c in cells if c), sum(c[1] for c in cells if c)]
        print(f"  {kind[:14]:<14}" + "".join(f"{100 * c[0] / c[1]:>8.1f}% {c[1]:>4}" if c else f"{'-':>14}" for c in cells)
              + f"{100 * total[0] / total[1]:>8.1f}% {total[1]:>4}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="avatar-agent benchmark short", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en", help="Whisper model (default: %(default)s)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="a voice in seven, 16 kHz and telephone band only")
    parser.add_argument("--misses", type=int, default=15, help="how many misses to print per table (default: %(default)s)")
    args = parser.parse_args(argv)
    from agent.hear.transcriber import WhisperTranscriber
    from models.whisper import load_whisper

    bands = BANDS[::2] if args.quick else BANDS
    voices = all_voices(args.quick)
    started = time.perf_counter()
    made = []
    for voice in voices:
        try:
            said = synthesised(voice)
        except Exception as exc:  # a voice that is not installed here
            print(f"  (voice {voice} left out: {exc})")
            continue
        made += [(voice, kind, text, said[text]) for kind, (texts, _) in KINDS.items() for text in texts]
    real = real_clips()
    print(f"{len(made)} clips from {len(made) // sum(len(t) for t, _ in KINDS.values())} voices and {len(real)} real recordings "
          f"({time.perf_counter() - started:.0f} s to make); bands: {', '.join(bands)}; {args.model}, {args.threads} thread(s)")
    transcriber = WhisperTranscriber(load_whisper(args.model, "cpu", args.threads))
    for clips, who in ((made, "made voices"), (real, "real people")):
        for expecting in (False, True):
            result = run(transcriber, clips, bands, expecting)
            print_table(f"{who}, {'the agent asked for it' if expecting else 'an open turn'}", result, bands)
            print(asked_back(result))
            for voice, band, text, heard in result["misses"][: args.misses]:
                print(f"    miss: {voice:<18} {band:<12} {text!r} -> {heard!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
