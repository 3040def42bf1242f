"""Server-side echo cancellation: the avatar's own voice, coming back through the customer's speakers, is removed
from their microphone audio before voice activity detection, so it cannot barge in on itself.

The browser's echo canceller does this first. This is WebRTC's AEC3 again (through the `livekit` package's
AudioProcessingModule) for a microphone that is not echo-cancelled: a client that does not say, a browser or
device without echo cancellation. Both directions are fed in 10 ms frames at 16 kHz. A microphone the page says
its browser cancels (`trust_microphone`) skips it, which is most of a speaking call's own CPU on the event loop
(measured: 14 ms a second of the avatar's speech); the residue gate stays for what leaks through either.
"""
from __future__ import annotations

import numpy as np

from models.audio import SPEECH_RATE, from_pcm16, stream_resampler, to_pcm16

FRAME = 160  # 10 ms
# While the avatar talks, cleaned frames quieter than this (-42 dBFS) are taken as echo residue, not
# the customer: a voice close to a microphone with automatic gain is far louder. Measured: weak echo
# after a pause between sentences leaked at about -50 dBFS and could barge in.
RESIDUE_GATE_RMS = 0.008
FAR_ACTIVE_FRAMES = 50  # the gate stays up for 0.5 s after the avatar's last sound (echo tail and delay)
# After this long with the avatar silent there is no echo to remove: both streams skip the canceller, which
# is most of a quiet call's CPU (measured: 13 ms of CPU a second of audio), until the avatar speaks again.
QUIET_FRAMES = 200
FAR_FRAME = 480  # 10 ms of the far end as played (48 kHz)


class EchoCanceller:
    def __init__(self) -> None:
        from livekit import rtc

        self._rtc = rtc
        # Noise suppression also removes the echo residue AEC3 leaves early in a call (measured:
        # 2 of 8 simulated answers barged in on themselves with AEC alone, none with both).
        self._apm = rtc.AudioProcessingModule(echo_cancellation=True, noise_suppression=True, high_pass_filter=True)
        self._apm.set_stream_delay_ms(0)  # unknown network + device delay: AEC3 estimates it
        self._to_16k = stream_resampler(48_000, SPEECH_RATE)  # the far end is what the audio track played
        self._far = np.zeros(0, np.float32)
        self._near = np.zeros(0, np.float32)
        self._far_active = 0  # 10 ms frames the residue gate stays up
        self._far_quiet = QUIET_FRAMES  # 10 ms frames since the avatar last made a sound

    def trust_microphone(self) -> None:
        """The microphone is echo-cancelled already (its browser said so): from now on only the residue gate."""
        self._apm = None

    @property
    def cancelling(self) -> bool:
        return self._apm is not None

    def _frame(self, audio: np.ndarray):
        pcm = to_pcm16(audio)
        return self._rtc.AudioFrame(pcm.tobytes(), SPEECH_RATE, 1, FRAME)

    def far_end(self, audio48k: np.ndarray) -> None:
        """What the avatar just played: 48 kHz float in -1..1."""
        if self._far_quiet >= QUIET_FRAMES and not np.any(audio48k):
            self._far_quiet += len(audio48k) // FAR_FRAME  # long silent, still silent: nothing to learn
            return
        if self._apm is None:  # the gate needs only whether the avatar sounded, 10 ms at a time
            for chunk in np.asarray(audio48k, np.float32)[: len(audio48k) // FAR_FRAME * FAR_FRAME].reshape(-1, FAR_FRAME):
                self._hear_far(chunk)
            return
        self._far = np.concatenate([self._far, self._to_16k.resample_chunk(np.asarray(audio48k, np.float32))])
        while len(self._far) >= FRAME:
            chunk = self._far[:FRAME]
            self._far = self._far[FRAME:]
            self._hear_far(chunk)
            if self._far_quiet < QUIET_FRAMES:
                self._apm.process_reverse_stream(self._frame(chunk))

    def _hear_far(self, chunk: np.ndarray) -> None:
        if np.sqrt(np.mean(chunk**2)) > 1e-3:
            self._far_active, self._far_quiet = FAR_ACTIVE_FRAMES, 0
        else:
            self._far_quiet += 1

    def near_end(self, audio16k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(cleaned, original) microphone audio of equal length; up to 10 ms is held back for the next call.

        The cleaned audio decides when the customer speaks; the original (already
        echo-cancelled by the browser) is what gets transcribed, because the
        canceller also dulls the customer's voice while the avatar talks.
        """
        self._near = np.concatenate([self._near, np.asarray(audio16k, np.float32)])
        n = len(self._near) // FRAME * FRAME
        original = self._near[:n].copy()
        self._near = self._near[n:]
        if self._far_quiet >= QUIET_FRAMES or (self._apm is None and self._far_active == 0):
            return original, original
        cleaned = np.empty(n, np.float32)
        for i in range(0, n, FRAME):
            out = original[i : i + FRAME]
            if self._apm is not None:
                frame = self._frame(out)
                self._apm.process_stream(frame)
                out = from_pcm16(np.frombuffer(bytes(frame.data), np.int16))
            if self._far_active > 0:
                self._far_active -= 1
                if np.sqrt(np.mean(out**2)) < RESIDUE_GATE_RMS:
                    out = np.zeros(FRAME)
            cleaned[i : i + FRAME] = out
        return cleaned, original
