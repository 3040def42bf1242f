"""One WebRTC call: the peer connection, its tracks and data channels, and the conversation behind them.

The avatar's face reaches the page one of two ways (`render.where`, per tenant): drawn here into a
video track (`server`), or sent as poses on the page's `poses` data channel for the page to draw
(`browser`); `auto` takes browser when the page says it can (WebGL2, the avatar loaded).
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription

from .. import metrics
from ..config import AgentConfig, TenantSettings
from ..conversation import Conversation
from ..engines import Engines
from ..events import CallEnded, ErrorEvent, PageEvent, to_json
from ..logs import printable
from ..output.poses import clock_message
from ..output.sinks import BrowserPoses, ServerVideo
from ..output.where import SERVER, RenderChoice, choose_render
from ..people.desk import PERSON, PersonDesk, PersonTaken
from ..render.frames import StartedWhenConnected, start_renderer
from .operator_leg import OperatorLeg
from .microphone import CallerVoice, Microphone
from .limits import MessageBudget
from .tracks import AvatarAudioTrack, AvatarVideoTrack

log = logging.getLogger(__name__)
ENDED_MESSAGES = {  # what the page is told when the agent ends a call (the widget has its own words for each reason)
    "not_connected": "The call could not connect.",
    "too_long": "The call reached its time limit.",
    "idle": "The call ended: nothing was said for a while.",
    "draining": "The assistant is restarting and will be back in a moment.",
}
RESTARTING = "I'm sorry, I have to restart in a moment. Please call again in a minute and I'll be right back."


def with_packet_time(sdp: str, ms: int) -> str:
    """The answer's audio section asks the browser for `ms` of Opus a packet (`a=ptime`, which Chrome's encoder
    follows); a page that keeps 20 ms still works."""
    lines = sdp.split("\r\n")
    out, in_audio = [], False
    for line in lines:
        if line.startswith("m="):
            if in_audio:
                out.append(f"a=ptime:{ms}")
            in_audio = line.startswith("m=audio")
        if not (in_audio and line.startswith("a=ptime:")):
            out.append(line)
    if in_audio:
        while out and out[-1] == "":
            out.pop()
        out += [f"a=ptime:{ms}", ""]
    return "\r\n".join(out)


class WebRtcCall:
    def __init__(self, engines: Engines, config: AgentConfig, on_closed, tenant: TenantSettings) -> None:
        self.id = uuid.uuid4().hex  # not a secret (the hang-up token is), but not guessable either
        self.tenant = tenant.id
        self.greeting = tenant.greeting
        self.render_where = tenant.render_where
        self.log = logging.LoggerAdapter(log, {"session": self.id})
        ice = [RTCIceServer(urls=s.urls, username=s.username, credential=s.credential) for s in config.server.ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=ice))
        self._events = None
        self._poses = None
        self._clock: bytes | None = None
        self._pending_events: list[str] = []
        self.conversation = Conversation(self.id, engines.stages_for(tenant), config.hear, self.send_event, config.render.fps,
                                         log_words=tenant.log_transcripts)
        self._limits = config.server.limits
        self._budget = MessageBudget(self._limits.messages_per_s)
        self._told_too_fast = False
        self._connected = asyncio.Event()
        self._frames: StartedWhenConnected | None = None
        self._operator_joining = False
        self.output = self.conversation.output
        self.desk = PersonDesk(self.conversation, tenant.handoff, self.send_event, self.log)
        self.operator: OperatorLeg | None = None
        self._ice_servers = config.server.ice_servers
        self._microphone: Microphone | None = None  # the customer's: heard here, and by an operator who joins
        self._packet_times = config.server.audio_packet_ms
        self.audio_out: AvatarAudioTrack | None = None  # once the answer knows where the face is drawn (its packet size)
        self.video_out: AvatarVideoTrack | None = None
        self.poses_out: BrowserPoses | None = None
        self.render: RenderChoice | None = None
        self._avatar = engines.avatar_for(tenant)
        self._render_settings = config.render.model_copy(update={"backdrop": tenant.backdrop})
        self._tasks: set[asyncio.Task] = set()
        self._on_closed = on_closed
        self._closed = False
        self._greeted = False

        @self.pc.on("track")
        def on_track(track):
            if track.kind == "audio" and self._microphone is None:
                self._microphone = Microphone.of_track(self.pc, track, self.conversation.hear, self.log)

        @self.pc.on("datachannel")
        def on_datachannel(channel):
            if channel.label == "poses":
                self._poses = channel
                channel.on("open", self._send_clock)
                return
            self._events = channel
            channel.on("message", self._on_message)
            if channel.readyState == "open":
                self._on_channel_open()
            else:
                channel.on("open", self._on_channel_open)

        @self.pc.on("connectionstatechange")
        async def on_state():
            self.log.info("connection %s", self.pc.connectionState)
            if self.pc.connectionState == "connected":
                self._connected.set()
                if self._frames is not None:
                    self._frames.start()
            if self.pc.connectionState in ("failed", "closed"):
                await self.close()

    def live(self) -> dict:
        """What the operator console shows of this call (`calls.contract.CallInfo`)."""
        conversation = self.conversation
        latencies = sorted(conversation.response_latencies)
        return {"state": conversation.state.value, "turns": sum(r.ended_at is not None for r in conversation.history),
                "handoffs": sum(r.handoff for r in conversation.history),
                "first_audio_ms": round(1000 * latencies[len(latencies) // 2]) if latencies else None,
                "person": self.desk.status, "waiting_since": self.desk.waiting_since, "transcript": tuple(self.desk.transcript)}

    def replies(self) -> list[tuple[float, bool]]:
        """(when the customer finished, handed off) for each turn answered so far."""
        return [(r.ended_at, r.handoff) for r in self.conversation.history if r.ended_at is not None]

    @property
    def recent_fps(self) -> float | None:
        """Frames per second the call's video sent over its last second; None while none, or without video."""
        return self.video_out.recent_fps if self.video_out is not None else None

    def _spawn(self, coro, name: str) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def answer(self, sdp: str, kind: str, page: dict | None = None) -> RTCSessionDescription:
        """Answers the page's offer; `page` is what the page said of itself (`{"webgl2": bool, "avatar": bool,
        "echo_cancellation": bool}`: what it can draw, whether its microphone is echo-cancelled)."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        self.conversation.microphone_said((page or {}).get("echo_cancellation"))
        offers_video = any(t.kind == "video" for t in self.pc.getTransceivers())
        self.render = choose_render(self.render_where, page, offers_video)
        self.log.info("face drawn in the %s: %s", self.render.where, self.render.reason)
        self.audio_out = AvatarAudioTrack(self.output, on_clock=self._on_clock, packet_ms=self._packet_times.for_render(self.render.where))
        self.audio_out.sender = self.pc.addTrack(self.audio_out)
        if self.render.where == SERVER:
            settings = self._render_settings
            self._frames = StartedWhenConnected(lambda: start_renderer(self._avatar, settings), settings.width, settings.height)
            video = ServerVideo(self.output, self._frames, self.id)
            self.output.attach(video)
            self.video_out = AvatarVideoTrack(video, self._render_settings.fps)
            self.pc.addTrack(self.video_out)
        else:
            self.poses_out = BrowserPoses(self.output, self._send_pose, self._poses_buffered)
            self.output.attach(self.poses_out)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._spawn(self._keep_limits(), "limits")
        answer = self.pc.localDescription
        return RTCSessionDescription(sdp=with_packet_time(answer.sdp, self.audio_out.packet_ms), type=answer.type)

    # ---- poses -------------------------------------------------------------------------------------------------
    def _on_clock(self, offset: int) -> None:
        self._clock = clock_message(offset)
        self._send_clock()

    def _send_clock(self) -> None:
        if self._clock is not None and self._poses is not None and self._poses.readyState == "open":
            self._poses.send(self._clock)

    def _send_pose(self, message: bytes) -> None:
        if self._poses is not None and self._poses.readyState == "open":
            self._poses.send(message)

    def _poses_buffered(self) -> int:
        if self._poses is None or self._poses.readyState != "open":
            return 1 << 30  # nowhere to send yet: dropped, not queued
        return self._poses.bufferedAmount

    # ---- events ------------------------------------------------------------------------------------------------
    def _on_channel_open(self) -> None:
        for message in self._pending_events:
            self._events.send(message)
        self._pending_events.clear()
        if not self._greeted:
            self._greeted = True
            self.conversation.say(self.greeting, "happy")

    def send_event(self, event: PageEvent) -> None:
        message = json.dumps(to_json(event))
        if self._events is not None and self._events.readyState == "open":
            if self._events.bufferedAmount > self._limits.send_buffer_bytes:
                metrics.EVENTS_DROPPED.inc()  # the page stopped reading: its backlog must not grow here
            else:
                self._events.send(message)
        elif len(self._pending_events) < 100:
            self._pending_events.append(message)
        if self.operator is not None:  # the operator sees what the customer sees: captions, state, the person's status
            self.operator.send(message)
        self.desk.seen(event)

    # ---- a person takes over -----------------------------------------------------------------------------------
    async def join_operator(self, sdp: str, who: str) -> RTCSessionDescription:
        """An operator's offer: they hear the customer, and speak or type through the avatar. Raises PersonTaken."""
        if self.desk.status == PERSON or self.operator is not None or self._operator_joining:
            raise PersonTaken("a person is already on this call")
        if self._microphone is None:
            raise PersonTaken("the customer's microphone is not connected yet")
        if self._microphone.codec_name not in (None, "opus"):
            raise PersonTaken(f"the customer's microphone sends {self._microphone.codec_name}: an operator hears Opus only")
        leg = OperatorLeg(CallerVoice(self._microphone), self.conversation.person_speaks,
                          self._operator_says, self._operator_gone, self._ice_servers, self.log)
        self._operator_joining = True  # held across the await below: a second join at the same moment is refused
        try:
            answer = await leg.answer(sdp)
            if self._closed:
                raise PersonTaken("the call ended")
        except BaseException:
            await leg.close()
            raise
        finally:
            self._operator_joining = False
        self.operator = leg
        self.desk.join(who)
        for line in self.desk.transcript:  # what was said before they joined
            leg.send(json.dumps({"type": "transcript", "who": line[0], "text": line[1]}))
        return answer

    async def leave_operator(self) -> bool:
        """The operator hands the call back to the assistant; False when no one was on it."""
        leg, self.operator = self.operator, None
        if leg is None:
            return False
        await leg.close()
        self.desk.leave("handed_back")
        return True

    def _operator_says(self, text: str) -> None:
        self.conversation.say(text)

    def _operator_gone(self, reason: str) -> None:
        if self.operator is not None:
            self.operator = None
            self.desk.leave(reason)

    def _on_message(self, message) -> None:
        if len(message) > self._limits.message_bytes:
            metrics.MESSAGES_DROPPED.labels("too_large").inc()
            self.send_event(ErrorEvent(f"messages are at most {self._limits.message_bytes} bytes"))
            return
        if not self._budget.take():
            metrics.MESSAGES_DROPPED.labels("too_fast").inc()
            if not self._told_too_fast:  # once: an error for each dropped message would be a flood of its own
                self._told_too_fast = True
                self.send_event(ErrorEvent("too many messages: slow down"))
            return
        self._told_too_fast = False
        try:
            event = json.loads(message)
            kind = event.get("type")
        except (TypeError, ValueError, AttributeError):
            self.send_event(ErrorEvent("messages must be JSON objects"))
            return
        if kind == "text" and isinstance(event.get("text"), str) and event["text"].strip():
            self.conversation.ask_text(event["text"])  # the conversation's last_heard: the idle limit's clock
        elif kind == "bye":
            self._spawn(self.close(), "close")
        else:
            self.send_event(ErrorEvent(f"unknown message type {printable(kind, 40)!r}"))

    # ---- limits ------------------------------------------------------------------------------------------------
    async def _keep_limits(self) -> None:
        """Connects within `connect_s`, or the call goes and frees its place; then no longer than `max_call_s`, and no
        longer than `idle_s` without the customer speaking or typing (not while a person is on it)."""
        limits, started = self._limits, time.monotonic()
        try:
            await asyncio.wait_for(self._connected.wait(), limits.connect_s)
        except asyncio.TimeoutError:
            self.log.info("not connected %.0f s after the offer: closing", limits.connect_s)
            self._spawn(self.close("not_connected"), "close")
            return
        while not self._closed:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            if now - started > limits.max_call_s:
                reason = "too_long"
            elif now - self.conversation.last_heard > limits.idle_s and self.operator is None and self.desk.status != PERSON:
                reason = "idle"
            else:
                continue
            self.log.info("ending the call: %s", reason)
            self._spawn(self.close(reason), "close")
            return

    async def restarting(self) -> None:
        """This process is draining: after the answer in progress, the customer hears that the line will be back."""
        self.conversation.say_next(RESTARTING)

    async def close(self, reason: str | None = None) -> None:
        """Ends the call; `reason` (a key of ENDED_MESSAGES): the agent ended it, and the page is told why first."""
        if self._closed:
            return
        self._closed = True
        self.log.info("closing (%d turns answered)%s", len(self.conversation.history), f": {reason}" if reason else "")
        if reason is not None:
            metrics.CALLS_LIMITED.labels(reason).inc()
            self.send_event(CallEnded(reason, ENDED_MESSAGES.get(reason, reason)))
        if self._microphone is not None:
            self._microphone.stop()
        self.desk.close()
        if self.operator is not None:
            leg, self.operator = self.operator, None
            leg.send(json.dumps({"type": "call_ended"}))
            await leg.close()
        await self.conversation.close()
        current = asyncio.current_task()
        for task in list(self._tasks):
            if task is not current:
                task.cancel()
        await asyncio.gather(*(t for t in self._tasks if t is not current), return_exceptions=True)
        if self.audio_out is not None:
            self.audio_out.stop()
        if self.video_out is not None:
            self.video_out.stop()
        await self.pc.close()
        await asyncio.get_running_loop().run_in_executor(None, self.output.close)
        self._on_closed(self)
