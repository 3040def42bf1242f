"""End-of-turn detection: groups VAD decisions into customer turns."""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from models.audio import SPEECH_RATE

from .vad import WINDOW, SileroVad


@dataclass(frozen=True)
class SpeechStarted:
    at: float


@dataclass(frozen=True)
class TurnPaused:
    """The customer paused: likely the end of the turn, so transcription can start early."""

    audio: np.ndarray
    speech_windows: int  # equal in the TurnEnded that follows if they did not speak again
    silence_ms: int = 0  # how long the pause has lasted
    judge: bool = False  # a checkpoint for the end-of-turn model (judge_ms, then every recheck_ms)


@dataclass(frozen=True)
class TurnEnded:
    audio: np.ndarray
    at: float  # when the customer stopped speaking (before the end-of-turn silence)
    speech_windows: int = 0


class TurnDetector:
    """Feed 16 kHz mono audio of any length; get SpeechStarted / TurnEnded events back.

    A turn starts after `start_ms` of speech and ends after `end_of_turn_ms` of
    silence. Turns shorter than `min_speech_ms` of speech (a cough, a click)
    are dropped. Some audio before the start is kept so the first syllable is
    not clipped. A pause of `pause_ms` is reported (TurnPaused: the call starts
    hearing and answering the turn so far), and, with `judge_ms`, so is the
    pause at `judge_ms` and every `recheck_ms` after: the end-of-turn model is
    asked then, and `complete()` ends the turn at once.
    """

    def __init__(
        self,
        threshold: float = 0.5,
        end_of_turn_ms: int = 450,
        min_speech_ms: int = 250,
        max_turn_s: float = 20.0,
        start_ms: int = 96,
        pause_ms: int = 160,
        preroll_ms: int = 300,
        vad: SileroVad | None = None,
        judge_ms: int | None = None,
        recheck_ms: int = 300,
    ) -> None:
        self.vad = vad or SileroVad()
        self.threshold = threshold
        self._start_windows = max(1, start_ms * SPEECH_RATE // 1000 // WINDOW)
        self._end_windows = max(1, end_of_turn_ms * SPEECH_RATE // 1000 // WINDOW)
        self._pause_windows = min(max(1, pause_ms * SPEECH_RATE // 1000 // WINDOW), self._end_windows - 1)
        # Checkpoints fall on VAD windows (32 ms): the first at or after judge_ms.
        self._judge_windows = max(self._pause_windows, -(-judge_ms * SPEECH_RATE // 1000 // WINDOW)) if judge_ms else None
        self._recheck_windows = max(1, recheck_ms * SPEECH_RATE // 1000 // WINDOW)
        self._min_speech_windows = max(1, min_speech_ms * SPEECH_RATE // 1000 // WINDOW)
        self._max_windows = int(max_turn_s * SPEECH_RATE / WINDOW)
        self._preroll: deque[np.ndarray] = deque(maxlen=max(1, preroll_ms * SPEECH_RATE // 1000 // WINDOW))
        self._pending = np.zeros(0, np.float32)
        self._pending_listen = np.zeros(0, np.float32)
        self._in_turn = False
        self._turn: list[np.ndarray] = []
        self._speech_run = 0
        self._silence_run = 0
        self._speech_windows = 0

    @property
    def in_turn(self) -> bool:
        return self._in_turn

    def feed(self, audio: np.ndarray, now: float | None = None, listen: np.ndarray | None = None) -> list[SpeechStarted | TurnPaused | TurnEnded]:
        """`listen`, if given, is the same audio as the VAD should hear it (echo removed); `audio` is what turns keep."""
        now = time.monotonic() if now is None else now
        listen = audio if listen is None else listen
        if len(listen) != len(audio):
            raise ValueError("listen and audio must be the same length")
        self._pending = np.concatenate([self._pending, np.asarray(audio, np.float32)])
        self._pending_listen = np.concatenate([self._pending_listen, np.asarray(listen, np.float32)])
        events: list[SpeechStarted | TurnPaused | TurnEnded] = []
        n_windows = len(self._pending) // WINDOW
        for i in range(n_windows):
            part = slice(i * WINDOW, (i + 1) * WINDOW)
            event = self._step(self._pending[part], now, self._pending_listen[part])
            if event is not None:
                events.append(event)
        self._pending = self._pending[n_windows * WINDOW :]
        self._pending_listen = self._pending_listen[n_windows * WINDOW :]
        return events

    def _step(self, window: np.ndarray, now: float, listen: np.ndarray) -> SpeechStarted | TurnPaused | TurnEnded | None:
        is_speech = self.vad(listen) >= self.threshold
        if not self._in_turn:
            self._preroll.append(window)
            self._speech_run = self._speech_run + 1 if is_speech else 0
            if self._speech_run >= self._start_windows:
                self._in_turn = True
                self._turn = list(self._preroll)
                self._speech_windows = self._speech_run
                self._silence_run = 0
                return SpeechStarted(at=now)
            return None
        self._turn.append(window)
        if is_speech:
            self._speech_windows += 1
            self._silence_run = 0
        else:
            self._silence_run += 1
        if self._silence_run >= self._end_windows or len(self._turn) >= self._max_windows:
            return self._close(now)
        judge = self._is_judged(self._silence_run)
        if self._speech_windows >= self._min_speech_windows and (judge or self._silence_run == self._pause_windows):
            return TurnPaused(np.concatenate(self._turn), self._speech_windows, self._silence_run * WINDOW * 1000 // SPEECH_RATE, judge)
        return None

    def _is_judged(self, silence: int) -> bool:
        judge = self._judge_windows
        return judge is not None and silence >= judge and (silence - judge) % self._recheck_windows == 0

    @property
    def speech_windows(self) -> int:
        return self._speech_windows

    def complete(self, speech_windows: int, now: float | None = None) -> TurnEnded | None:
        """The end-of-turn model judged the pause after `speech_windows` of speech the end of the turn: it ends now,
        unless the customer has spoken again since (then it is not that pause any more)."""
        if not self._in_turn or self._speech_windows != speech_windows or self._silence_run == 0:
            return None
        return self._close(time.monotonic() if now is None else now)

    def _close(self, now: float) -> TurnEnded | None:
        audio = np.concatenate(self._turn)
        speech_windows = self._speech_windows
        speech_end = now - self._silence_run * WINDOW / SPEECH_RATE
        long_enough = self._speech_windows >= self._min_speech_windows
        self._in_turn = False
        self._turn = []
        self._speech_run = 0
        self._preroll.clear()
        return TurnEnded(audio=audio, at=speech_end, speech_windows=speech_windows) if long_enough else None
