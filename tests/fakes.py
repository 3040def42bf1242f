"""Deterministic stand-ins behind the stage contracts (`agent/stages.py`): the pipeline without loading a model.

The voice activity detector and echo canceller in front of them stay real (they
are small and fast), so these tests still start turns from real speech.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from pathlib import Path

import numpy as np

from models.arkit import COUNT, INDEX
from agent.messages import Answer, Heard
from agent.stages import CallStages

HANDOFF = "I'm not sure about that one. Let me connect you to a person who can help."
FAQ = {  # keyword -> answer, in the spirit of configs/faq/demo.csv
    "hours": Answer("We are open Monday to Friday from nine to six. On Saturdays we open from ten to four.", "happy", 0.9, False,
                    "What are your opening hours?"),
    "password": Answer("Click on forgot password on the sign in page, and we will email you a link to set a new one.", "neutral", 0.9,
                       False, "How do I reset my password?"),
    "person": Answer("Of course. Let me connect you to a person.", "neutral", 0.9, True, "Can I talk to a person?"),
}


class FakeTranscriber:
    """Hears what the test says the customer said, whenever there is sound in the turn."""

    def __init__(self, text: str = "", sure: float = 0.9) -> None:
        self.text = text
        self.sure = sure  # how sure of `text` the decoder would be
        self.calls = 0
        self.expected: list = []  # what the conversation said it expected, turn by turn

    def hear(self, audio: np.ndarray, expecting=None) -> Heard:
        self.calls += 1
        self.expected.append(expecting)
        text = self.text if audio.size and np.abs(audio).max() > 0.02 else ""
        return Heard(text, 1.0 if text else 0.0, self.sure if text else 0.0)

    def hear_so_far(self, audio: np.ndarray, expecting=None) -> Heard:
        return self.hear(audio, expecting)


class FakeAnswerer:
    """The first FAQ keyword found in the text answers; anything else is handed off."""

    def __init__(self, faq: dict[str, Answer] | None = None) -> None:
        self.faq = FAQ if faq is None else faq

    def answer(self, text: str, previous: str | None = None) -> Answer:
        for keyword, answer in self.faq.items():
            if keyword in text.lower():
                return answer
        return Answer(HANDOFF, "apologetic", 0.1, True, None)


class FakeVoice:
    """espeak-ng speaking (the program, as the test speech does): real speech to the VAD and the echo canceller, no model."""

    sample_rate = 16_000

    def synthesize(self, text: str) -> np.ndarray:
        from benchmarks.speech_sets import spoken

        if not any(ch.isalnum() for ch in text):
            return np.zeros(0, np.float32)
        return spoken(text, self.sample_rate)


class FakeFaceModel:
    """Opens the jaw with the loudness of each frame's audio."""

    fps = 25

    def animate(self, audio: np.ndarray, sample_rate: int, emotion: str = "neutral") -> np.ndarray:
        step = sample_rate // self.fps
        n = max(1, int(np.ceil(len(audio) / step)))
        weights = np.zeros((n, COUNT), np.float32)
        for i in range(n):
            chunk = audio[i * step : (i + 1) * step]
            weights[i, INDEX["jawOpen"]] = min(1.0, 4 * float(np.sqrt(np.mean(chunk**2)))) if chunk.size else 0.0
        return weights


class FakeRenderer:
    """A grey face whose dark mouth opens with jawOpen and whose eyes close with the blinks."""

    def __init__(self, width: int = 64, height: int = 64) -> None:
        self.width, self.height = width, height
        self.closed = False

    def render(self, weights: np.ndarray, head_rotation=(0.0, 0.0, 0.0)) -> np.ndarray:
        h, w = self.height, self.width
        image = np.full((h, w, 3), 200, np.uint8)
        mouth = int(round(weights[INDEX["jawOpen"]] * h * 0.2))
        image[int(h * 0.7) : int(h * 0.7) + 1 + mouth, int(w * 0.35) : int(w * 0.65)] = 40
        if weights[INDEX["eyeBlinkLeft"]] < 0.5:
            image[int(h * 0.35) : int(h * 0.4), int(w * 0.3) : int(w * 0.4)] = 20
            image[int(h * 0.35) : int(h * 0.4), int(w * 0.6) : int(w * 0.7)] = 20
        return image

    def close(self) -> None:
        self.closed = True


def fake_stages(transcriber: FakeTranscriber | None = None, **overrides) -> CallStages:
    stages = dict(transcriber=transcriber or FakeTranscriber(), answerer=FakeAnswerer(), voice=FakeVoice(),
                  face_model=FakeFaceModel(), executor=ThreadPoolExecutor(max_workers=2, thread_name_prefix="fake-models"))
    stages.update(overrides)
    return CallStages(**stages)


class FakeEngines:
    """What the server asks of `Engines`, with fake stages; avatars are the project's own head (built in a blink)."""

    def __init__(self, transcriber: FakeTranscriber | None = None, answerers=None) -> None:
        from agent.answer.registry import AnswererRegistry
        from agent.avatars.stylised import build_stylised_head

        self.transcriber = transcriber or FakeTranscriber()
        # An AnswererRegistry: the operator tests hand in one with saved versions; else every tenant gets FakeAnswerer.
        self.answerers = answerers or AnswererRegistry(FakeAnswerer(), Path("/nonexistent/faq-versions"))
        self.executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fake-models")
        self.avatar = build_stylised_head()

    def stages_for(self, tenant) -> CallStages:
        from agent.answer.questions import QuestionStore
        from agent.engines import TenantQuestions

        questions = None
        if tenant.questions_path is not None:  # as Engines.questions_for, with a fixed hand-off line (the fakes have none)
            questions = TenantQuestions(QuestionStore(tenant.questions_path, tenant.keep_questions_days), lambda: 0.5)
        return fake_stages(self.transcriber, answerer=self.answerers.for_tenant(tenant.id), executor=self.executor, questions=questions)

    def avatar_for(self, tenant):
        return self.avatar

    def warm_speech_in_background(self, tenants) -> None:
        pass

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)


class PhrasingAnswerer:
    """An FAQ version without a model: answers a question that is one of an entry's phrasings, word for word."""

    def __init__(self, entries, handoff_text: str = HANDOFF) -> None:
        self.entries, self.handoff_text = list(entries), handoff_text

    def answer(self, text: str, previous: str | None = None) -> Answer:
        said = text.strip().lower()
        for entry in self.entries:
            if said in (p.lower() for p in entry.phrasings):
                return Answer(entry.answer, entry.emotion, 1.0, False, entry.question)
        return Answer(self.handoff_text, "apologetic", 0.0, True, None)


def load_fake_version(entries, folder, manifest, handoff_text) -> PhrasingAnswerer:
    return PhrasingAnswerer(entries, handoff_text)


def fake_version(root, tenant: str, version: str, faq_text: str) -> None:
    """A saved FAQ version laid out as `avatar-agent finetune-faq` writes one (its model folder left empty)."""
    import json

    folder = root / tenant / version
    (folder / "model").mkdir(parents=True)
    (folder / "faq.csv").write_text(faq_text)
    (folder / "manifest.json").write_text(json.dumps({"version": version, "base_model": "fake", "faq_sha256": "-",
                                                      "created": "-", "threshold": 0.5, "metrics": {}}))
