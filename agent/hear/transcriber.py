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

import numpy as np

from models.audio import SPEECH_RATE
from models.whisper import Whisper
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
        audio = np.asarray(audio, np.float32)
        if audio.size == 0:
            return ""
        prompt = self.prompt()
        budget = len(prompt) + min(MAX_TOKENS, MIN_TOKENS + int(TOKENS_PER_SECOND * len(audio) / SPEECH_RATE))
        window = max(WINDOW_S, len(audio) / SPEECH_RATE + TRAILING_SILENCE_S)
        text, spent, heard = self._decode(audio, window, prompt, budget)
        if heard and (spent or looks_looped(text)):
            log.info("decoder %s on %.1f s of audio (%r); decoding again on the full window",
                     "ran out of tokens" if spent else "repeated itself", len(audio) / SPEECH_RATE, text[:60])
            text, spent, heard = self._decode(audio, max(FULL_WINDOW_S, window), prompt, budget)
        if not heard:
            return ""
        return numbers_as_digits(cut_repeats(text))

    def _decode(self, audio: np.ndarray, window_s: float, prompt: list[int], budget: int) -> tuple[str, bool, bool]:
        """(text, whether the token budget ran out, whether anything was said) for the audio padded to window_s."""
        total = min(int(window_s * SPEECH_RATE), 30 * SPEECH_RATE)
        padded = np.zeros(max(total, len(audio)), np.float32)
        padded[: len(audio)] = audio
        mel = self.whisper.mel(padded[: 30 * SPEECH_RATE])
        mel = mel[:, : min(mel.shape[1] - mel.shape[1] % 2, 3000)]  # the encoder halves the frames; 30 s at most
        encoded = self.whisper.encode(mel)
        [result] = self.whisper.model.generate(encoded, [prompt], beam_size=BEAM_SIZE, repetition_penalty=REPETITION_PENALTY,
                                               max_length=budget, return_scores=True, return_no_speech_prob=True)
        tokens = result.sequences_ids[0]
        if result.no_speech_prob > NO_SPEECH_PROB and result.scores[0] < MIN_AVG_LOGPROB:
            return "", False, False
        text = self._tokenizer.decode([t for t in tokens if t < self._tokenizer.eot]).strip()
        return text, len(prompt) + len(tokens) >= budget, bool(text)
