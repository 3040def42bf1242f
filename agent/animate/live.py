"""A person's voice, live, through the avatar's face: their microphone audio -> AnimatedSpeech in short blocks.

The face model hears each block with the audio before it (left context) and LOOKAHEAD_S after it, so a block is
animated as it would be inside a sentence; holding LOOKAHEAD_S of audio back is what keeps lips and sound together
(the block and its poses go to the playout together). A person's words reach the customer about BLOCK_S +
LOOKAHEAD_S + the model's time later (`avatar-agent benchmark takeover`). Blocks with no voice in them are not
played: the avatar rests there, as it does between sentences.
"""
from __future__ import annotations

import numpy as np

from models.audio import SPEECH_RATE
from .speech import animate_sentence
from ..messages import AnimatedSpeech

BLOCK_S = 0.32
LOOKAHEAD_S = 0.32
CONTEXT_S = 0.64
VOICE_RMS = 0.01  # about -40 dBFS: below this a block is taken as silence


class LiveSpeech:
    def __init__(self, face_model, turn_id: int, lookahead_s: float = LOOKAHEAD_S) -> None:
        self.face_model, self.turn_id = face_model, turn_id
        self._block = int(BLOCK_S * SPEECH_RATE)
        self._ahead = int(lookahead_s * SPEECH_RATE)
        self._context = int(CONTEXT_S * SPEECH_RATE)
        self._audio = np.zeros(self._context, np.float32)  # context, then blocks not yet animated
        self.voiced_blocks = 0

    def feed(self, audio_16k: np.ndarray) -> list[np.ndarray]:
        """Adds the person's audio; returns the windows (context + block + look-ahead) now ready to animate."""
        self._audio = np.concatenate([self._audio, np.asarray(audio_16k, np.float32)])
        ready = []
        while len(self._audio) >= self._context + self._block + self._ahead:
            ready.append(self._audio[: self._context + self._block + self._ahead].copy())
            self._audio = self._audio[self._block :]
        return ready

    def animate(self, window: np.ndarray) -> AnimatedSpeech | None:
        """The block in the middle of `window`, with its poses; None when nobody spoke in it (runs off the event loop)."""
        block = window[self._context : self._context + self._block]
        if float(np.sqrt(np.mean(block ** 2))) < VOICE_RMS:
            return None
        self.voiced_blocks += 1
        whole = animate_sentence(self.face_model, self.turn_id, "", window, SPEECH_RATE, "neutral", False)
        first = int(round(CONTEXT_S * self.face_model.fps))
        frames = int(round(BLOCK_S * self.face_model.fps))
        start = int(round(CONTEXT_S * whole.sample_rate))
        audio = whole.audio[start : start + int(round(BLOCK_S * whole.sample_rate))]
        # Each block is its own last: if the next is late or silent, the mouth rests instead of freezing open.
        return AnimatedSpeech(self.turn_id, "", audio, whole.sample_rate, whole.weights[first : first + frames], whole.fps,
                              "neutral", True)
