"""A caller's microphone, heard straight from its RTP packets.

aiortc's own receive path holds four packets in a jitter buffer before it decodes the first (80 ms of every
turn's end and every barge-in at 20 ms packets, 240 ms at 60 ms), and hands each packet to a decoder thread of
the call's own and back (two thread hops a packet, and one thread a call). The models that hear speech need the
audio in order, not smoothed for playback, so each packet is decoded here, on the event loop, as it arrives:
a lost or late packet becomes silence of its length, a late one is dropped. An operator who joins hears the
caller's own Opus packets, forwarded as they came (`CallerVoice`): nothing is decoded or encoded again.

The seam is the one aiortc's DTLS transport routes RTP through: `receiver._handle_rtp_packet(packet,
arrival_time_ms)` (its `RtpReceiver` protocol). The receiver's RTCP reports keep their statistics.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
from collections import deque
from typing import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpreceiver import StreamStatistics

from .. import metrics
from models.audio import SPEECH_RATE, from_pcm16

log = logging.getLogger(__name__)
MAX_GAP_S = 1.0  # a longer jump in the RTP clock is a new stream (or a sender's reset), not lost packets
OPERATOR_QUEUE = 50  # packets (1-3 s) an operator's connection may fall behind before the oldest are dropped


def _later(a: int, b: int, bits: int) -> int:
    """How far `a` is after `b` on a wrapping counter (negative: before)."""
    half, full = 1 << (bits - 1), 1 << bits
    return (a - b + half) % full - half


class _OpusMono:
    """Opus at 48 kHz mono (a voice; libopus decodes any packet to it), as aiortc's decoders are called."""

    def __init__(self) -> None:
        self.codec = av.CodecContext.create("libopus", "r")
        self.codec.format, self.codec.layout, self.codec.sample_rate = "s16", "mono", 48_000

    def decode(self, encoded: JitterFrame) -> list[av.AudioFrame]:
        return self.codec.decode(av.Packet(encoded.data))


class Microphone:
    """Takes over `receiver`'s RTP packets and gives `on_audio` 16 kHz mono float32, one packet's worth at a time.

    `listen(callback)` also hands each Opus packet on as it came (an operator's connection), until `unlisten`."""

    def __init__(self, receiver, on_audio: Callable[[np.ndarray], None], log: logging.LoggerAdapter | logging.Logger = log) -> None:
        try:
            self._codecs = receiver._RTCRtpReceiver__codecs  # filled when the call's descriptions are set
            self._streams = receiver._RTCRtpReceiver__remote_streams  # what its RTCP receiver reports say
        except AttributeError as exc:  # a different aiortc: fail the call loudly, not deafly
            raise RuntimeError(f"this aiortc has no receiver internals the microphone needs ({exc}); use aiortc 1.9-1.x") from exc
        self._on_audio = on_audio
        self.log = log
        self._decoder = None
        self._codec_name: str | None = None
        self._resampler: av.AudioResampler | None = None
        self._next_timestamp: int | None = None  # RTP clock of the sample after the last one heard
        self._last_sequence: int | None = None
        self._bad_packets = 0
        self._listeners: set[Callable[[bytes, int], None]] = set()
        receiver._handle_rtp_packet = self._handle_rtp_packet  # what the transport calls, instead of aiortc's own

    @classmethod
    def of_track(cls, pc, track, on_audio: Callable[[np.ndarray], None], log: logging.LoggerAdapter | logging.Logger = log) -> "Microphone":
        """The microphone behind `track`, a remote audio track of `pc` (what its "track" event gives)."""
        return cls(next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track), on_audio, log)

    def listen(self, callback: Callable[[bytes, int], None]) -> None:
        self._listeners.add(callback)

    def unlisten(self, callback: Callable[[bytes, int], None]) -> None:
        self._listeners.discard(callback)

    def stop(self) -> None:
        """Hears no more (the call is closing: its conversation must not be fed while it closes)."""
        self._on_audio = lambda audio: None
        self._listeners.clear()

    @property
    def codec_name(self) -> str | None:
        return self._codec_name

    async def _handle_rtp_packet(self, packet, arrival_time_ms: int) -> None:
        self._hear_packet(packet)

    def _hear_packet(self, packet) -> None:
        codec = self._codecs.get(packet.payload_type)
        if codec is None or codec.name in ("rtx", "telephone-event", "CN", "red"):
            return
        if packet.ssrc not in self._streams:
            self._streams[packet.ssrc] = StreamStatistics(codec.clockRate)
        self._streams[packet.ssrc].add(packet)
        if self._last_sequence is not None and _later(packet.sequence_number, self._last_sequence, 16) <= 0:
            return  # late or repeated: its place was already filled
        self._last_sequence = packet.sequence_number
        if codec.name != self._codec_name:
            self._decoder, self._codec_name = (_OpusMono() if codec.name == "opus" else get_decoder(codec)), codec.name
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SPEECH_RATE)
            self._next_timestamp = None
        if codec.name == "opus":  # forwarded as they came; other codecs would need encoding again
            for listener in list(self._listeners):
                listener(packet.payload, packet.timestamp)
        self._decode(packet, codec.clockRate)

    def _decode(self, packet, clock_rate: int) -> None:
        try:
            frames = self._decoder.decode(JitterFrame(packet.payload, packet.timestamp))
        except (av.FFmpegError, ValueError) as exc:
            self._bad_packets += 1
            metrics.ERRORS.labels("bad_audio_packet").inc()
            if self._bad_packets in (1, 100, 10_000):
                self.log.warning("undecodable %s audio from the caller (%d packets so far): %s", self._codec_name, self._bad_packets, exc)
            return
        gap = 0 if self._next_timestamp is None else _later(packet.timestamp, self._next_timestamp, 32)
        for frame in frames:
            self._next_timestamp = (packet.timestamp + frame.samples * clock_rate // frame.sample_rate) % 2**32
            if 0 < gap <= MAX_GAP_S * clock_rate:  # lost packets (or the sender paused): their time, as silence
                self._on_audio(np.zeros(gap * SPEECH_RATE // clock_rate, np.float32))
            gap = 0
            for out in self._resampler.resample(frame):  # libswresample: holds back 1 ms (soxr's HQ stream: 20, in bursts)
                self._on_audio(from_pcm16(out.to_ndarray().reshape(-1)))


class CallerVoice(MediaStreamTrack):
    """The caller's Opus packets, as they came, for an operator's connection to send on: a bounded queue (a slow
    operator loses the oldest packets, not the server's memory); ends when `stop` is called."""

    kind = "audio"
    TIME_BASE = fractions.Fraction(1, 48_000)  # Opus's RTP clock

    def __init__(self, microphone: Microphone) -> None:
        super().__init__()
        self._microphone = microphone
        self._packets: deque[tuple[bytes, int]] = deque(maxlen=OPERATOR_QUEUE)
        self._arrived = asyncio.Event()
        self._start: int | None = None
        microphone.listen(self._on_packet)

    def _on_packet(self, payload: bytes, timestamp: int) -> None:
        self._packets.append((payload, timestamp))
        self._arrived.set()

    def stop(self) -> None:
        self._microphone.unlisten(self._on_packet)
        self._arrived.set()
        super().stop()

    async def recv(self) -> av.Packet:
        while not self._packets:
            if self.readyState != "live":
                raise MediaStreamError()
            self._arrived.clear()
            await self._arrived.wait()
        if self.readyState != "live":
            raise MediaStreamError()
        payload, timestamp = self._packets.popleft()
        self._start = timestamp if self._start is None else self._start
        packet = av.Packet(payload)
        packet.pts, packet.time_base = (timestamp - self._start) % 2**32, self.TIME_BASE
        return packet
