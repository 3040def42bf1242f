"""What the conversation needs from each pipeline stage, and nothing more.

hear (VAD, end of turn) -> Transcriber -> Answerer -> Voice -> FaceModel -> avatar output port -> Renderer or the page

A stage is any object with these methods: the real models (`hear/transcriber.py`,
`answer/answerer.py`, `speak/piper_voice.py` behind `speak/cache.py`,
`animate/lipsync.py`, `render/lean.py` / `render/pbr.py`) or the fakes in
`tests/fakes.py`. `Engines.stages_for(tenant)` builds one call's set from the
config. Model calls block, so the conversation runs them on `CallStages.executor`.
"""
from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .messages import Answer, Expectation, Heard


class Transcriber(Protocol):
    def hear(self, audio: np.ndarray, expecting: Expectation = Expectation()) -> Heard:
        """A turn (16 kHz mono float32 speech) -> its text ('' when nothing was said) and how sure the transcriber is
        of it; `expecting`: what the agent just asked for (a number, a yes or no)."""

    def hear_so_far(self, audio: np.ndarray, expecting: Expectation = Expectation()) -> Heard:
        """The turn up to a pause -> the same, and how sure the transcriber is that the words end there."""


class EndOfTurn(Protocol):
    def complete(self, audio: np.ndarray) -> float:
        """The turn so far (16 kHz mono float32, ending in a short pause) -> the probability the customer is done."""


class Answerer(Protocol):
    def answer(self, text: str, previous: str | None = None) -> Answer:
        """The reply to what the customer said; `previous` is their last question, for follow-ups."""


class Voice(Protocol):
    sample_rate: int

    def synthesize(self, text: str) -> np.ndarray:
        """One sentence -> mono float32 audio at `sample_rate`; empty when there is nothing to say."""


class FaceModel(Protocol):
    fps: int

    def animate(self, audio: np.ndarray, sample_rate: int, emotion: str = "neutral") -> np.ndarray:
        """Speech audio -> ARKit weights [frames, 52], frame i at i / fps seconds."""


class Renderer(Protocol):
    width: int
    height: int

    def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        """ARKit weights [52] and head (pitch, yaw, roll) -> RGB uint8 [height, width, 3]. One thread only."""

    def close(self) -> None: ...


class FrameSource(Protocol):
    """A renderer the event loop can await: a worker process (`render/worker.py`) or a thread (`render/renderer.py`);
    `render/frames.py` starts one per call for the server-video sink (`output/sinks.py`)."""

    width: int
    height: int

    async def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray: ...

    def close(self) -> None: ...


class QuestionLog(Protocol):
    """Keeps the turns the avatar missed, for the operator (`answer/questions.py`); only for tenants that opted in."""

    def keep(self, text: str, answer: Answer) -> object: ...


@dataclass(frozen=True)
class CallStages:
    """One call's stages. The answerer is looked up per turn, so a swapped FAQ version applies from the next turn."""

    transcriber: Transcriber
    answerer: Answerer
    voice: Voice
    face_model: FaceModel
    executor: Executor  # model work runs here, off the event loop
    end_of_turn: EndOfTurn | None = None  # None: a fixed silence ends each turn (hear.end_of_turn_ms)
    questions: QuestionLog | None = None  # None: nothing of the customer's words is kept
