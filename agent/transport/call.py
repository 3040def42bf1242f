"""One WebRTC call: peer connection, media tracks, data channel and the conversation behind them."""
from __future__ import annotations

import asyncio
import json
import logging
import uuid

import av
import numpy as np
from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from .. import metrics
from ..config import AgentConfig, TenantSettings
from ..conversation import Conversation
from ..engines import Engines
from ..events import ErrorEvent, PageEvent, to_json
from ..render.renderer import start_renderer
from .tracks import AvatarAudioTrack, AvatarVideoTrack

log = logging.getLogger(__name__)


class CallSession:
    def __init__(self, engines: Engines, config: AgentConfig, on_closed, tenant: TenantSettings) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.tenant = tenant.id
        self.greeting = tenant.greeting
        self.log = logging.LoggerAdapter(log, {"session": self.id})
        ice = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in config.server.ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
        self._channel = None
        self._pending_events: list[str] = []
        self.conversation = Conversation(self.id, engines.stages_for(tenant), config.hear, self.send_event)
        self.renderer = start_renderer(engines.avatar_for(tenant), config.render)
        self.audio_out = AvatarAudioTrack(self.conversation.playout)
        self.video_out = AvatarVideoTrack(self.conversation.playout, self.renderer, config.render.fps, session=self.id)
        self._tasks: set[asyncio.Task] = set()
        self._on_closed = on_closed
        self._closed = False
        self._greeted = False

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                self._spawn(self._read_microphone(track), "mic")

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            self._channel = channel
            channel.on("message", self._on_message)
            if channel.readyState == "open":
                self._on_channel_open()
            else:
                channel.on("open", self._on_channel_open)

        @self.pc.on("connectionstatechange")
        async def on_state():
            self.log.info("connection %s", self.pc.connectionState)
            if self.pc.connectionState in ("failed", "closed"):
                await self.close()

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def answer(self, sdp: str, kind: str) -> RTCSessionDescription:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        self.pc.addTrack(self.audio_out)
        self.pc.addTrack(self.video_out)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    def _on_channel_open(self) -> None:
        for message in self._pending_events:
            self._channel.send(message)
        self._pending_events.clear()
        if not self._greeted:
            self._greeted = True
            self.conversation.say(self.greeting, "happy")

    def send_event(self, event: PageEvent) -> None:
        message = json.dumps(to_json(event))
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(message)
        elif len(self._pending_events) < 100:
            self._pending_events.append(message)

    def _on_message(self, message) -> None:
        try:
            event = json.loads(message)
            kind = event.get("type")
        except (TypeError, ValueError, AttributeError):
            self.send_event(ErrorEvent("messages must be JSON objects"))
            return
        if kind == "text" and isinstance(event.get("text"), str) and event["text"].strip():
            self.conversation.ask_text(event["text"])
        elif kind == "bye":
            self._spawn(self.close(), "close")
        else:
            self.send_event(ErrorEvent(f"unknown message type {kind!r}"))

    async def _read_microphone(self, track) -> None:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            for out in resampler.resample(frame):
                pcm = out.to_ndarray().reshape(-1).astype(np.float32) / 32768.0
                self.conversation.hear(pcm)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.log.info("closing (%d turns answered)", len(self.conversation.history))
        await self.conversation.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        self.audio_out.stop()
        self.video_out.stop()
        try:
            metrics.VIDEO_FPS.remove(self.id)
        except KeyError:
            pass  # no full second of video was sent
        await self.pc.close()
        await asyncio.get_running_loop().run_in_executor(None, self.renderer.close)
        self._on_closed(self)
