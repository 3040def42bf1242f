"""Speech to text with Whisper (CTranslate2, the model loaded once in `models/whisper.py`), on a window sized to the turn.

faster-whisper pads every clip to Whisper's 30 s window; the encoder takes shorter input, and a turn
padded to 8 s (or its length + 1 s) encodes about 4x faster. Decoding ourselves loses faster-whisper's
guards against runaway decoding, so they are here, measured on the project's short-utterance set
(`avatar-agent benchmark asr`), where the bare greedy decoder looped on 15 of 228 clips ("5, 5, 5, ...",
"password password ..."):
- a budget of tokens sized to the turn (a second of speech holds a few words, never dozens);
- beam search (3) with a slight repetition penalty, which looped on none and made fewer errors than greedy;
- a loop, a text that compresses too well (faster-whisper's 2.4) or a spent budget is decoded again on the
  full 30 s window Whisper was trained on, and any repeat that is left is cut to what a person says.
The tenant's FAQ words (`vocabulary.py`) go in the prompt, as faster-whisper's `hotwords` do.

Short answers ("five", "yes", "four seven one nine") are too little sound for the open decoder: "five" comes out
"Bye!". Measured on the project's short-answer set (`avatar-agent benchmark short`), two things help:
- a short turn's prompt carries a few short answers as the text before it (`SHORT_PRIOR`), so digits and yes/no
  are what the decoder expects of a word or two; the prompt of a longer turn stays as it was;
- when the agent just asked for a number (`expect.py`), a second pass over the same encoded audio may write
  digits only (one a token, so "nine nine" is not "99" plus a guess), and is taken unless the open pass heard
  words the model finds far likelier (a customer who says "I don't have one").
`Heard.sure` is the decoder's mean token probability of what it wrote: the conversation asks again rather
than act on a short turn it is unsure of.
"""
from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from models.audio import SPEECH_RATE
from models.whisper import Whisper
from ..messages import Heard
from ..numbers import numbers_as_digits
from .expect import OPEN, Expectation, yes_or_no

log = logging.getLogger(__name__)

WINDOW_S = 8.0
TRAILING_SILENCE_S = 1.0
FULL_WINDOW_S = 30.0
BEAM_SIZE = 3
REPETITION_PENALTY = 1.1
TOKENS_PER_SECOND = 6  # fast speech is about 4 tokens a second, digits and punctuation included
MIN_TOKENS = 12
MAX_TOKENS = 220
COMPRESSION_RATIO_LIMIT = 2.4  # faster-whisper's compression_ratio_threshold
# faster-whisper's rule for a window with nothing said: likely no speech, and what was decoded is unsure.
# (Unsure alone is not enough: a single short word, right, often scores below -1.)
NO_SPEECH_PROB = 0.6
MIN_AVG_LOGPROB = -1.0
VOCABULARY_TOKENS = 60  # at most this much of the prompt is the FAQ's words
# A phrase said again and again: one word 5+ times ("5, 5, 5, 5, 5"), two words 3+ times, three or more words twice.
MAX_REPEATS = {1: 4, 2: 2}
LONG_PHRASE_REPEATS = 1
SENTENCE_STOPS = {".", "?", "!"}
SHORT_TURN_S = 2.5  # this much speech, from its first loud 20 ms to its last, holds a word or a few
_ANY_SHORT_ANSWER = " Cancel my order. 4 7 1 9. No. 5. Yes."  # a prior that ends in a digit leaks it: "two" -> "2 9"
SHORT_PRIOR = {"open": _ANY_SHORT_ANSWER, "number": _ANY_SHORT_ANSWER, "yes_no": " Yes. No. Yes, please. No, thanks."}
PROMPTS_KEPT = 16  # prompts for one FAQ version: the priors times the options the agent's questions offered
# How much likelier (mean log-probability a token, without the prompt) the open pass's words must be than the
# digits-only pass's to win after a question that asked for a number (a yes or a no always stays as heard): the
# digits of a single digit misheard as a word ("Bye!") score within 3.5 of it in 95 of 100 of the set's, a short
# phrase mostly further off.
NUMBER_WINS_WITHIN = 3.5
# Longer than a word: a digit string the open pass wrote in digits is better as it is (90% of the set's strings
# against 84% read digits-only, which drops or doubles a digit more often); a single digit is better read again.
ONE_WORD_S = 1.0


def repeated_phrase(words: Sequence[str]) -> tuple[int, int, int] | None:
    """(start, phrase length, times) of the first phrase repeated more often than a person would, or None."""
    for n in range(1, min(8, len(words) // 2) + 1):
        allowed = MAX_REPEATS.get(n, LONG_PHRASE_REPEATS)
        for start in range(len(words) - n * (allowed + 1) + 1):
            unit = words[start : start + n]
            times = 1
            while words[start + times * n : start + (times + 1) * n] == unit:
                times += 1
            if times > allowed:
                return start, n, times
    return None


def _words(text: str) -> list[str]:
    return re.sub(r"[^\w' ]", " ", text.lower()).split()


def looks_looped(text: str) -> bool:
    raw = text.encode()
    return repeated_phrase(_words(text)) is not None or (len(raw) > 40 and len(raw) / len(zlib.compress(raw)) > COMPRESSION_RATIO_LIMIT)


def speech_seconds(audio: np.ndarray, frame: int = SPEECH_RATE // 50) -> float:
    """From the first 20 ms within 30 dB of the loudest to the last: the turn without its lead and tail silence."""
    frames = len(audio) // frame
    if frames == 0:
        return 0.0
    power = np.mean(audio[: frames * frame].reshape(frames, frame) ** 2, axis=1)
    loud = np.flatnonzero(power > power.max() * 1e-3)
    return (loud[-1] - loud[0] + 1) * frame / SPEECH_RATE if power.max() > 0 else 0.0


def cut_repeats(text: str) -> str:
    """The text with every over-repeated phrase said as often as a person would say it."""
    tokens = text.split()
    while True:
        found = repeated_phrase([re.sub(r"[^\w']", "", t.lower()) for t in tokens])
        if found is None:
            return " ".join(tokens).rstrip(",")
        start, n, times = found
        keep = MAX_REPEATS.get(n, LONG_PHRASE_REPEATS)
        tokens = tokens[: start + keep * n] + tokens[start + times * n :]


class WhisperTranscriber:
    """The Transcriber stage: one call's view of the shared Whisper, biased towards `vocabulary()` (the tenant's FAQ words)."""

    def __init__(self, whisper: Whisper, language: str = "en", vocabulary: Callable[[], Sequence[str]] = tuple) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self.whisper = whisper
        self.language = language
        self._vocabulary = vocabulary
        multilingual = whisper.multilingual
        self._tokenizer = Tokenizer(whisper.tokenizer, multilingual, task="transcribe", language=language if multilingual else None)
        self._prompt = [*self._tokenizer.sot_sequence, self._tokenizer.no_timestamps]
        self._prompts: dict[tuple, list[int]] = {}
        self._not_digits: list[int] | None = None

    def with_vocabulary(self, vocabulary: Callable[[], Sequence[str]]) -> "WhisperTranscriber":
        """The same model, biased towards other words (another tenant's FAQ)."""
        return WhisperTranscriber(self.whisper, self.language, vocabulary)

    def prompt(self, prior: str = "", options: Sequence[str] = ()) -> list[int]:
        """The decoder's prompt: the FAQ's words, then the words of the options just offered and `prior` (what a
        short answer looks like) as the text that came before."""
        words = tuple(self._vocabulary())
        if not words and not prior and not options:
            return self._prompt
        key = (words, prior, tuple(options))
        if key not in self._prompts:
            if len(self._prompts) >= PROMPTS_KEPT or (self._prompts and next(iter(self._prompts))[0] != words):
                self._prompts = {}  # one FAQ version at a time, and a bounded number of options
            context = self._tokenizer.encode(" " + ", ".join(words))[:VOCABULARY_TOKENS] if words else []
            if options:
                context += self._tokenizer.encode(" " + " or ".join(options) + "?")
            if prior:
                context += self._tokenizer.encode(prior)
            self._prompts[key] = [self._tokenizer.sot_prev, *context, *self._prompt]
        return self._prompts[key]

    def transcribe(self, audio: np.ndarray, expecting: Expectation = OPEN) -> str:
        """16 kHz mono float32 -> text, numbers as digits; '' when nothing was said."""
        return self.hear(audio, expecting).text

    def hear(self, audio: np.ndarray, expecting: Expectation = OPEN) -> Heard:
        """A whole turn: its text and how sure the decoder is of it; `expecting`: what the agent just asked for."""
        return self._heard(audio, expecting, with_ending=False)

    def hear_so_far(self, audio: np.ndarray, expecting: Expectation = OPEN) -> Heard:
        """The turn up to a pause: its text, and how sure Whisper is that the words end there (`Heard.ending`)."""
        return self._heard(audio, expecting, with_ending=True)

    def _heard(self, audio: np.ndarray, expecting: Expectation, with_ending: bool) -> Heard:
        audio = np.asarray(audio, np.float32)
        if audio.size == 0:
            return Heard("", 0.0, 0.0)
        speech_s = speech_seconds(audio)
        short = speech_s <= SHORT_TURN_S
        prompt = self.prompt(SHORT_PRIOR[expecting.kind] if short else "", expecting.options)
        budget = len(prompt) + min(MAX_TOKENS, MIN_TOKENS + int(TOKENS_PER_SECOND * len(audio) / SPEECH_RATE))
        window = max(WINDOW_S, len(audio) / SPEECH_RATE + TRAILING_SILENCE_S)
        encoded = self._encoded(audio, window)
        decoded = self._decode(encoded, prompt, budget)
        if decoded.text and (decoded.spent or looks_looped(decoded.text)):
            log.info("decoder %s on %.1f s of audio (%r); decoding again on the full window",
                     "ran out of tokens" if decoded.spent else "repeated itself", len(audio) / SPEECH_RATE, decoded.text[:60])
            encoded = self._encoded(audio, max(FULL_WINDOW_S, window))
            decoded = self._decode(encoded, prompt, budget)
        if expecting.kind == "number" and short and not decoded.silent and not (speech_s > ONE_WORD_S and re.search(r"\d", decoded.text)):
            decoded = self._likelier_digits(encoded, decoded)  # a string the open pass wrote in digits stays
        if not decoded.text:
            return Heard("", 0.0, 0.0)
        text = decoded.text if decoded.digits_only else numbers_as_digits(cut_repeats(decoded.text))
        return Heard(text, self._ending(decoded) if with_ending else 1.0, decoded.sure)

    def _encoded(self, audio: np.ndarray, window_s: float) -> "_Encoded":
        """The audio padded to window_s (30 s at most), through the encoder."""
        total = min(int(window_s * SPEECH_RATE), 30 * SPEECH_RATE)
        padded = np.zeros(max(total, len(audio)), np.float32)
        padded[: len(audio)] = audio
        mel = self.whisper.mel(padded[: 30 * SPEECH_RATE])
        mel = mel[:, : min(mel.shape[1] - mel.shape[1] % 2, 3000)]  # the encoder halves the frames; 30 s at most
        return _Encoded(self.whisper.encode(mel), mel.shape[1])

    def _decode(self, encoded: "_Encoded", prompt: list[int], budget: int, suppress: list[int] | None = None) -> "_Decoded":
        """The text (empty when nothing was said), with what scoring its words needs; `suppress`: tokens it may not
        write (default: Whisper's own list)."""
        [result] = self.whisper.model.generate(encoded.features, [prompt], beam_size=BEAM_SIZE, repetition_penalty=REPETITION_PENALTY,
                                               max_length=budget, return_scores=True, return_no_speech_prob=True,
                                               suppress_tokens=suppress or [-1])
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        spent = len(prompt) + len(result.sequences_ids[0]) >= budget
        sure = float(np.exp(result.scores[0]))
        if result.no_speech_prob > NO_SPEECH_PROB and result.scores[0] < MIN_AVG_LOGPROB:
            return _Decoded("", spent, encoded, [], sure, silent=True)
        return _Decoded(self._tokenizer.decode(tokens).strip(), spent, encoded, tokens, sure)

    def _likelier_digits(self, encoded: "_Encoded", heard: "_Decoded") -> "_Decoded":
        """The digits-only reading of the turn, unless the open pass heard a yes or no, or words the decoder finds
        far likelier (both scored on the same audio, without a prompt)."""
        if yes_or_no(heard.text) is not None:
            return heard
        digits = self._decode(encoded, self._prompt, len(self._prompt) + MIN_TOKENS + 2 * len(heard.tokens), suppress=self._all_but_digits())
        said = re.sub(r"\D", "", digits.text)
        if not said:
            return heard
        open_score, digits_score = (self._mean_log_probability(encoded, d.tokens) for d in (heard, digits))
        if open_score - digits_score > NUMBER_WINS_WITHIN:
            return heard
        return replace(digits, text=said, digits_only=True)  # how sure among digits: whether the customer said one is decided

    def _mean_log_probability(self, encoded: "_Encoded", tokens: list[int]) -> float:
        if not tokens:
            return -np.inf
        [aligned] = self.whisper.model.align(encoded.features, self._tokenizer.sot_sequence, [tokens], encoded.frames)
        return float(np.mean(np.log(np.maximum(aligned.text_token_probs, 1e-9))))

    def _all_but_digits(self) -> list[int]:
        """Every text token but " 0" to " 9", "," and "." (one digit a token: "nine nine one" cannot become "99" and a
        guess); built once, as it is some 50,000 long."""
        if self._not_digits is None:
            keep = {*(self._tokenizer.encode(f" {d}")[0] for d in range(10)), *self._tokenizer.encode(","), *self._tokenizer.encode(".")}
            self._not_digits = [t for t in range(self._tokenizer.eot) if t not in keep]
        return self._not_digits

    def _ending(self, decoded: "_Decoded") -> float:
        """The lower of the probabilities of the last word and of the stop that closes it (0 without one), each a word's
        mean token probability as faster-whisper's word timestamps give it; one pass of the decoder over the words."""
        words, word_tokens = self._tokenizer.split_to_word_tokens([*decoded.tokens, self._tokenizer.eot])
        words, word_tokens = words[:-1], word_tokens[:-1]  # the end-of-text marker
        if len(words) < 2 or words[-1].strip() not in SENTENCE_STOPS:
            return 0.0
        [aligned] = self.whisper.model.align(decoded.encoded.features, self._tokenizer.sot_sequence, [decoded.tokens], decoded.encoded.frames)
        probabilities = np.asarray(aligned.text_token_probs, np.float64)
        ends = np.cumsum([len(t) for t in word_tokens])
        last_word = probabilities[ends[-3] if len(ends) > 2 else 0 : ends[-2]].mean()
        return float(min(last_word, probabilities[ends[-2] : ends[-1]].mean()))


@dataclass(frozen=True)
class _Encoded:
    features: object  # the encoder's output (a CTranslate2 StorageView)
    frames: int  # mel frames of the window


@dataclass(frozen=True)
class _Decoded:
    text: str
    spent: bool  # the token budget ran out
    encoded: _Encoded
    tokens: list[int]
    sure: float  # the decoder's mean token probability
    silent: bool = False  # no speech, by faster-whisper's rule
    digits_only: bool = False
