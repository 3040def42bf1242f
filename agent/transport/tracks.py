"""aiortc media tracks: the avatar's voice and face, each paced by a real-time clock; they pace and wrap, nothing else."""
from __future__ import annotations

import asyncio
import fractions
import functools
import time
from typing import Callable

import av
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from .. import metrics
from ..messages import FRAME_SAMPLES, OUTPUT_RATE
from ..output.port import AvatarOutput
from ..output.sinks import ServerVideo

VIDEO_CLOCK = 90_000
LATE_S = 0.1  # a voice packet this much later than its time after the one before: what a page hears as a gap
AUDIO_TIME_BASE = fractions.Fraction(1, OUTPUT_RATE)
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK)


def use_video_bitrate(kbps: int) -> None:
    """The video encoders' starting and highest bitrate for this process (aiortc keeps them as module settings; the
    receiver's bandwidth estimate can still lower it). aiortc's own 500 kbps start softened a 512x512 face."""
    from aiortc.codecs import h264, vpx

    for codec in (vpx, h264):
        codec.DEFAULT_BITRATE = kbps * 1000
        codec.MAX_BITRATE = max(codec.MAX_BITRATE, kbps * 1000)
        codec.MIN_BITRATE = min(codec.MIN_BITRATE, kbps * 1000)


class _Pacer:
    """Hands out presentation timestamps no faster than real time."""

    def __init__(self, clock_rate: int) -> None:
        self.clock_rate = clock_rate
        self.start: float | None = None
        self.pts = 0

    async def next(self, step: int) -> int:
        if self.start is None:
            self.start = time.time()
            return 0
        self.pts += step
        wait = self.start + self.pts / self.clock_rate - time.time()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.5:  # fell far behind (busy machine): skip ahead rather than burst
            self.pts = int((time.time() - self.start) * self.clock_rate)
        return self.pts


def last_rtp_timestamp(sender) -> int | None:
    """The RTP timestamp of the last packet aiortc's sender sent (it keeps it for its sender reports; no public API)."""
    value = getattr(sender, "_RTCRtpSender__rtp_timestamp", None)
    return value if getattr(sender, "_RTCRtpSender__packet_count", 0) else None


class VoicePackets:
    """The avatar's voice as Opus packets, encoded here rather than by aiortc (its encoder is stereo at 96 kbps, and
    takes a thread hop a frame). Mono at 32 kbps is a voice's usual rate in WebRTC; the packets carry the port's
    clock as their timestamps. While the avatar is silent (most of a call), every frame is the same packet: encoded
    once, sent as it is, after a few zero frames have flushed what the encoder held of the last sound."""

    BITRATE = 32_000
    COMPLEXITY = 5  # of libopus's 0-10: 180 us a frame against 290 at 10, for a voice the ear cannot tell apart
    FLUSH_PACKETS = 3

    def __init__(self, packet_ms: int = 20) -> None:
        self.samples = OUTPUT_RATE * packet_ms // 1000
        self._codec = self._encoder(packet_ms)
        self._silence = self._silent_packet(packet_ms)
        self._quiet = self.FLUSH_PACKETS  # zero packets encoded since the last sound

    @classmethod
    def _encoder(cls, packet_ms: int) -> av.CodecContext:
        codec = av.CodecContext.create("libopus", "w")
        codec.bit_rate, codec.format, codec.layout, codec.sample_rate = cls.BITRATE, "s16", "mono", OUTPUT_RATE
        codec.time_base = AUDIO_TIME_BASE
        codec.options = {"application": "voip", "compression_level": str(cls.COMPLEXITY), "frame_duration": str(packet_ms)}
        return codec

    @classmethod
    @functools.cache
    def _silent_packet(cls, packet_ms: int) -> bytes:
        """Encoded once per process and packet size, not once per call."""
        codec, packets, samples = cls._encoder(packet_ms), [], OUTPUT_RATE * packet_ms // 1000
        for i in range(5):  # past the encoder's start-up
            packets += codec.encode(cls._frame(np.zeros(samples, np.int16), i * samples))
        return bytes(packets[-1])

    @staticmethod
    def _frame(pcm: np.ndarray, pts: int) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = OUTPUT_RATE, pts, AUDIO_TIME_BASE
        return frame

    def packet(self, pcm: np.ndarray, pts: int) -> av.Packet:
        """The packet for `samples` of int16 audio that start at `pts` on the port's clock."""
        silent = not pcm.any()
        self._quiet = self._quiet + 1 if silent else 0
        if silent and self._quiet > self.FLUSH_PACKETS:
            data = self._silence
        else:
            encoded = self._codec.encode(self._frame(pcm, pts))
            data = bytes(encoded[0]) if encoded else self._silence  # libopus gives one packet a packet's worth
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts, AUDIO_TIME_BASE
        return packet


class AvatarAudioTrack(MediaStreamTrack):
    """The port's voice, `packet_ms` a packet (the port's 20 ms frames, a few to a packet: each packet costs the
    event loop the same Python, whatever it holds). With `on_clock`, it also says which RTP timestamp clock 0
    became, once known and whenever it changes, so the page can map the audio it plays back onto the port's clock."""

    kind = "audio"

    def __init__(self, port: AvatarOutput, on_clock: Callable[[int], None] | None = None, packet_ms: int = 20) -> None:
        super().__init__()
        if packet_ms % (FRAME_SAMPLES * 1000 // OUTPUT_RATE):
            raise ValueError(f"packet_ms must be a whole number of {FRAME_SAMPLES * 1000 // OUTPUT_RATE} ms frames, not {packet_ms}")
        self.port = port
        self.sender = None  # set once added to a peer connection
        self._pacer = _Pacer(OUTPUT_RATE)
        self._on_clock = on_clock
        self._clock_offset: int | None = None
        self._last_clock = 0  # the port clock at the end of the last frame handed to the sender
        self._voice = VoicePackets(packet_ms)
        self.packet_ms = packet_ms
        self._last_sent: float | None = None

    def _check_clock(self) -> None:
        # The sender asks for this frame only once the last one is sent, so its timestamp is that frame's.
        rtp = last_rtp_timestamp(self.sender)
        if rtp is None or self._on_clock is None:
            return
        offset = (rtp - (self._last_clock - self._voice.samples)) % 2**32
        if offset != self._clock_offset:
            self._clock_offset = offset
            self._on_clock(offset)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError()
        await self._pacer.next(self._voice.samples)
        now = time.monotonic()
        if self._last_sent is not None and now - self._last_sent > self.packet_ms / 1000 + LATE_S:
            metrics.AUDIO_LATE.inc()
        self._last_sent = now
        self._check_clock()
        pcm = np.concatenate([self.port.next_audio_frame() for _ in range(self._voice.samples // FRAME_SAMPLES)])
        self._last_clock = self.port.playout.samples_out
        return self._voice.packet(pcm, self._last_clock - len(pcm))  # stamped with the port's clock


class AvatarVideoTrack(MediaStreamTrack):
    """The server-video sink's pictures, one per frame at `fps`; counts what it sends for /metrics and admission."""

    kind = "video"

    def __init__(self, video: ServerVideo, fps: int = 25) -> None:
        super().__init__()
        self.video = video
        self.fps = fps
        self._pacer = _Pacer(VIDEO_CLOCK)
        self.frames_sent = 0
        self._fps_window = (time.perf_counter(), 0)  # start of the current one-second window, frames sent before it
        self.recent_fps: float | None = None  # frames sent per second over the last full window

    def stop(self) -> None:
        self.video.cancel_pending()
        super().stop()

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError()
        pts = await self._pacer.next(VIDEO_CLOCK // self.fps)
        image = await self.video.next_image()
        if self.readyState != "live":  # the call ended while this frame was awaited: its per-call series are gone
            raise MediaStreamError()
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        started, before = self._fps_window
        now = time.perf_counter()
        if now - started >= 1.0:
            self.recent_fps = (self.frames_sent - before) / (now - started)
            self._fps_window = (now, self.frames_sent)
        metrics.VIDEO_FRAMES.inc()
        return frame
