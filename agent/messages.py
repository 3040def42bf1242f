"""Typed messages that flow between the pipeline stages of one session.

hear -> UserTurn -> (transcribe) -> Transcript   (at a pause: Heard, for the end of turn) -> answer (Answer) -> Reply
     -> speak + animate -> AnimatedSpeech -> playout
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class UserTurn:
    """One stretch of customer speech, ended by silence (16 kHz mono float32)."""

    turn_id: int
    audio: np.ndarray
    ended_at: float  # time.monotonic() when the end of speech was heard


@dataclass(frozen=True)
class Expectation:
    """What the agent expects to hear next, from what it just asked (`hear/expect.py`)."""

    kind: Literal["open", "yes_no", "number"] = "open"
    options: tuple[str, ...] = ()  # the words of "X or Y?"


@dataclass(frozen=True)
class Heard:
    """The words of a turn (so far, at a pause), how sure the transcriber is of them, and that they end there."""

    text: str
    # The lower of the probabilities Whisper gave the last word and the full stop or question mark after it
    # (0 when it wrote none): a clipped "to" comes out as "I want to kill." with both unsure.
    ending: float = 1.0
    # The decoder's mean probability of the words' tokens (the geometric mean): "Bye!" for a faint "five" is unsure.
    sure: float = 1.0


@dataclass(frozen=True)
class Transcript:
    turn_id: int
    text: str
    ended_at: float
    sure: float = 1.0  # Heard.sure; 1 for typed words


@dataclass(frozen=True)
class Answer:
    """What the answerer chose for what the customer said."""

    text: str
    emotion: str
    confidence: float
    handoff: bool
    matched_question: str | None  # None when it is unsure (and hands off) or asks which of two entries is meant
    matched: tuple[str, ...] = ()  # every entry answered: two when the turn held two questions
    options: tuple[str, ...] = ()  # the entries a clarifying question offers


@dataclass(frozen=True)
class Reply:
    turn_id: int
    text: str
    emotion: str = "neutral"
    handoff: bool = False
    confidence: float = 1.0
    matched_question: str | None = None
    ended_at: float | None = None


OUTPUT_RATE = 48_000  # what the avatar's voice plays at (WebRTC's Opus clock)
FRAME_SAMPLES = 960  # 20 ms at OUTPUT_RATE: one audio frame of the call


@dataclass(frozen=True)
class AnimatedSpeech:
    """A sentence ready to play: audio at the output rate and one pose per video frame."""

    turn_id: int
    text: str
    audio: np.ndarray  # float32 mono at the playout sample rate
    sample_rate: int
    weights: np.ndarray  # [frames, 52] ARKit blendshape weights at `fps`
    fps: int
    emotion: str = "neutral"
    is_last: bool = False
