"""An operator's own WebRTC connection to a customer's call: they hear the customer, see the captions (the call's
events, on the `events` channel), and speak through the avatar with their microphone or by typing.

The page sends on its data channel `{"type": "say", "text": ...}` (said with the tenant's voice),
`{"type": "leave"}` (the call goes back to the assistant) and `{"type": "ping"}` every few seconds. The customer's
audio goes to this connection only, and only while it is open. Closing it, its channel closing, or HEARTBEAT_S
without a word from the page (its network gone: WebRTC itself takes about 30 s to notice) hands the call back
(`on_gone`).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Callable

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from .microphone import Microphone

MAX_SAY_CHARS = 500
HEARTBEAT_S = 6.0  # the page pings every 2 s
CONNECT_S = 20.0  # from the answer to the channel open


class OperatorLeg:
    def __init__(self, customer_audio, on_audio: Callable, on_say: Callable[[str], None], on_gone: Callable[[str], None],
                 ice_servers, log: logging.LoggerAdapter) -> None:
        self.log = log
        self._on_audio, self._on_say, self._on_gone = on_audio, on_say, on_gone
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                                                                 for s in ice_servers]))
        self._customer_audio = customer_audio
        self._microphone: Microphone | None = None  # the operator's own
        self._channel = None
        self._pending: list[str] = []
        self._tasks: set[asyncio.Task] = set()
        self._closed = False
        self._heard_at = asyncio.get_running_loop().time()
        self._spawn(self._watch())

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "audio" and self._microphone is None:
                self._microphone = Microphone.of_track(self.pc, track, self._on_audio, self.log)

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            self._channel = channel
            channel.on("message", self._on_message)
            channel.on("open", self._flush)
            channel.on("close", lambda: self._spawn(self._lost("its channel closed")))
            if channel.readyState == "open":
                self._flush()

        @self.pc.on("connectionstatechange")
        async def on_state():
            self.log.info("operator connection %s", self.pc.connectionState)
            if self.pc.connectionState in ("failed", "closed"):
                await self._lost(f"connection {self.pc.connectionState}")

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            await asyncio.sleep(1.0)
            opened = self._channel is not None and self._channel.readyState == "open"
            if loop.time() - self._heard_at > (HEARTBEAT_S if opened else CONNECT_S):
                await self._lost("no word from the operator's page" if opened else "the operator's page never connected")
                return

    async def _lost(self, why: str) -> None:
        if self._closed:
            return
        self.log.warning("operator gone: %s", why)
        await self.close()
        self._on_gone("lost")

    async def answer(self, sdp: str) -> RTCSessionDescription:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        self.pc.addTrack(self._customer_audio)  # after the offer: it fills the page's own audio transceiver
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription

    def send(self, message: str) -> None:
        if self._channel is not None and self._channel.readyState == "open":
            self._channel.send(message)
        elif len(self._pending) < 100:
            self._pending.append(message)

    def _flush(self) -> None:
        for message in self._pending:
            self._channel.send(message)
        self._pending.clear()

    def _on_message(self, message) -> None:
        self._heard_at = asyncio.get_running_loop().time()
        try:
            event = json.loads(message)
            kind = event.get("type")
        except (TypeError, ValueError, AttributeError):
            return self.send(json.dumps({"type": "error", "message": "messages must be JSON objects"}))
        if kind == "say" and isinstance(event.get("text"), str) and event["text"].strip():
            self._on_say(event["text"].strip()[:MAX_SAY_CHARS])
        elif kind == "leave":
            self._spawn(self._leave())
        elif kind == "ping":
            pass
        else:
            self.send(json.dumps({"type": "error", "message": f"unknown message type {kind!r}"}))

    async def _leave(self) -> None:
        await self.close()
        self._on_gone("handed_back")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        self._customer_audio.stop()  # the customer's packets stop coming here
        if self._microphone is not None:
            self._microphone.stop()
        await self.pc.close()
