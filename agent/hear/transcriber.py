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
"""
from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from models.audio import SPEECH_RATE
from models.whisper import Whisper
from ..messages import Heard
from ..numbers import numbers_as_digits

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
        self._prompts: dict[tuple[str, ...], list[int]] = {}

    def with_vocabulary(self, vocabulary: Callable[[], Sequence[str]]) -> "WhisperTranscriber":
        """The same model, biased towards other words (another tenant's FAQ)."""
        return WhisperTranscriber(self.whisper, self.language, vocabulary)

    def prompt(self) -> list[int]:
        words = tuple(self._vocabulary())
        if not words:
            return self._prompt
        if words not in self._prompts:
            context = self._tokenizer.encode(" " + ", ".join(words))[:VOCABULARY_TOKENS]
            self._prompts = {words: [self._tokenizer.sot_prev, *context, *self._prompt]}  # one FAQ version at a time
        return self._prompts[words]

    def transcribe(self, audio: np.ndarray) -> str:
        """16 kHz mono float32 -> text, numbers as digits; '' when nothing was said."""
        return self._heard(audio, with_ending=False).text

    def hear_so_far(self, audio: np.ndarray) -> Heard:
        """The turn up to a pause: its text, and how sure Whisper is that the words end there (`Heard.ending`)."""
        return self._heard(audio, with_ending=True)

    def _heard(self, audio: np.ndarray, with_ending: bool) -> Heard:
        audio = np.asarray(audio, np.float32)
        if audio.size == 0:
            return Heard("", 0.0)
        prompt = self.prompt()
        budget = len(prompt) + min(MAX_TOKENS, MIN_TOKENS + int(TOKENS_PER_SECOND * len(audio) / SPEECH_RATE))
        window = max(WINDOW_S, len(audio) / SPEECH_RATE + TRAILING_SILENCE_S)
        decoded = self._decode(audio, window, prompt, budget)
        if decoded.text and (decoded.spent or looks_looped(decoded.text)):
            log.info("decoder %s on %.1f s of audio (%r); decoding again on the full window",
                     "ran out of tokens" if decoded.spent else "repeated itself", len(audio) / SPEECH_RATE, decoded.text[:60])
            decoded = self._decode(audio, max(FULL_WINDOW_S, window), prompt, budget)
        if not decoded.text:
            return Heard("", 0.0)
        return Heard(numbers_as_digits(cut_repeats(decoded.text)), self._ending(decoded) if with_ending else 1.0)

    def _decode(self, audio: np.ndarray, window_s: float, prompt: list[int], budget: int) -> "_Decoded":
        """The text (empty when nothing was said) for the audio padded to window_s, with what scoring its words needs."""
        total = min(int(window_s * SPEECH_RATE), 30 * SPEECH_RATE)
        padded = np.zeros(max(total, len(audio)), np.float32)
        padded[: len(audio)] = audio
        mel = self.whisper.mel(padded[: 30 * SPEECH_RATE])
        mel = mel[:, : min(mel.shape[1] - mel.shape[1] % 2, 3000)]  # the encoder halves the frames; 30 s at most
        encoded = self.whisper.encode(mel)
        [result] = self.whisper.model.generate(encoded, [prompt], beam_size=BEAM_SIZE, repetition_penalty=REPETITION_PENALTY,
                                               max_length=budget, return_scores=True, return_no_speech_prob=True)
        tokens = [t for t in result.sequences_ids[0] if t < self._tokenizer.eot]
        spent = len(prompt) + len(result.sequences_ids[0]) >= budget
        if result.no_speech_prob > NO_SPEECH_PROB and result.scores[0] < MIN_AVG_LOGPROB:
            return _Decoded("", spent, encoded, [], mel.shape[1])
        return _Decoded(self._tokenizer.decode(tokens).strip(), spent, encoded, tokens, mel.shape[1])

    def _ending(self, decoded: "_Decoded") -> float:
        """The lower of the probabilities of the last word and of the stop that closes it (0 without one), each a word's
        mean token probability as faster-whisper's word timestamps give it; one pass of the decoder over the words."""
        words, word_tokens = self._tokenizer.split_to_word_tokens([*decoded.tokens, self._tokenizer.eot])
        words, word_tokens = words[:-1], word_tokens[:-1]  # the end-of-text marker
        if len(words) < 2 or words[-1].strip() not in SENTENCE_STOPS:
            return 0.0
        [aligned] = self.whisper.model.align(decoded.encoded, self._tokenizer.sot_sequence, [decoded.tokens], decoded.frames)
        probabilities = np.asarray(aligned.text_token_probs, np.float64)
        ends = np.cumsum([len(t) for t in word_tokens])
        last_word = probabilities[ends[-3] if len(ends) > 2 else 0 : ends[-2]].mean()
        return float(min(last_word, probabilities[ends[-2] : ends[-1]].mean()))


@dataclass(frozen=True)
class _Decoded:
    text: str
    spent: bool  # the token budget ran out
    encoded: object  # the encoder's output (a CTranslate2 StorageView)
    tokens: list[int]
    frames: int
