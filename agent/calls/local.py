"""The calls of this process, with the models every one of them shares: admission, load, FAQ activation.

How a call talks to its browser is not known here: `open_call` makes one (on one box and on each cluster
node, `transport.webrtc.WebRtcCall`), and this hosts whatever it makes.
"""
from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import time
from collections import Counter, deque
from typing import Callable, Protocol

import psutil
from prometheus_client import generate_latest

from .. import metrics
from ..config import AgentConfig, LoadLimit, TenantSettings
from ..engines import Engines
from ..output.where import choose_render
from .contract import BUSY_MESSAGE, CallInfo, CallsBusy, NodeLoad, NoSuchCall, OfferRefused, OpenedCall, TurnTally, check_caps, live_view
from .directory import CallDirectory

log = logging.getLogger(__name__)


class Call(Protocol):
    """One call as this process hosts it."""

    id: str
    tenant: str
    log: logging.LoggerAdapter

    @property
    def recent_fps(self) -> float | None: ...

    async def answer(self, sdp: str, kind: str, page: dict | None = None): ...  # -> the answer (.sdp, .type); sets .render

    def live(self) -> dict: ...  # CallInfo's fields about the conversation, waiting_since as time.monotonic()

    def replies(self) -> list[tuple[float, bool]]: ...  # (when, handed off) per answered turn

    async def join_operator(self, sdp: str, who: str): ...  # -> the answer (.sdp, .type); raises people.desk.PersonTaken

    async def leave_operator(self) -> bool: ...

    async def restarting(self) -> None: ...  # after the answer in progress, tells the customer the line will be back

    async def close(self, reason: str | None = None) -> None: ...  # reason: why the agent ended it, told to the page


CallFactory = Callable[[Engines, AgentConfig, Callable[[Call], None], TenantSettings], Call]


class LocalCalls:
    ESTABLISHED_S = 2.0  # a call's frame rate counts for admission once it has streamed this long
    HOUR_S = 3600.0

    def __init__(self, engines: Engines, config: AgentConfig, open_call: CallFactory, load_limit: LoadLimit | None = None,
                 node: str = "local") -> None:
        self.engines, self.config, self.load_limit, self.node = engines, config, load_limit, node
        self._open_call = open_call
        self.directory = CallDirectory()
        self._ended_turns: deque[tuple[float, str, bool]] = deque(maxlen=200_000)  # (when, tenant, handed off) of ended calls
        self.draining = False
        psutil.cpu_percent(interval=None)  # the first reading starts the interval the next one reports on
        metrics.VIDEO_FPS_MIN.set_function(self._slowest_video)

    def _slowest_video(self) -> float:
        rates = [r.call.recent_fps for r in self.directory.records() if r.call.recent_fps is not None]
        return min(rates) if rates else 0.0

    def call(self, session: str) -> Call | None:
        record = self.directory.get(session)
        return record.call if record is not None else None

    def load(self, activity: bool = True) -> NodeLoad:
        """What this node reports; `activity`: with the last hour's turns (the console's; admission needs none)."""
        now = time.monotonic()
        records = self.directory.records()
        rates = [r.call.recent_fps for r in records if now - r.since >= self.ESTABLISHED_S and r.call.recent_fps is not None]
        info = tuple(self._info(r, now) for r in records)
        versions = tuple((tenant, self.engines.answerers.active_version(tenant)) for tenant in self.config.tenants)
        return NodeLoad(self.node, len(records), self.config.server.max_sessions, min(rates) if rates else None,
                        psutil.cpu_percent(interval=None), info, versions, self._last_hour(records, now) if activity else (),
                        self.config.server.max_browser_sessions, self.draining)

    def _info(self, record, now: float) -> CallInfo:
        live = dict(record.call.live())
        waiting_since = live.pop("waiting_since", None)
        return CallInfo(record.session, record.tenant, now - record.since, record.call.recent_fps,
                        getattr(record.call.render, "where", "server"), **live,
                        waiting_s=now - waiting_since if waiting_since is not None else None, node=self.node)

    def _last_hour(self, records, now: float) -> tuple[TurnTally, ...]:
        while self._ended_turns and self._ended_turns[0][0] < now - self.HOUR_S:
            self._ended_turns.popleft()
        since = now - self.HOUR_S
        turns, handoffs = Counter(), Counter()
        for tenant, handoff in [*((t, h) for at, t, h in self._ended_turns if at >= since),
                                *((r.tenant, h) for r in records for at, h in r.call.replies() if at >= since)]:
            turns[tenant] += 1
            handoffs[tenant] += handoff
        return tuple(TurnTally(t, turns[t], handoffs[t]) for t in self.config.tenants)

    async def open(self, sdp: str, tenant: str, caller: str, page: dict | None = None, address: str = "?") -> OpenedCall:
        check_caps(self.directory, self.config, tenant, address)
        where = choose_render(self.config.tenant(tenant).render_where, page, offers_video=True).where  # as the call will choose
        refusal = self.load(activity=False).refusal(self.load_limit, self.config.render.fps, where)
        if refusal is not None:
            metrics.SESSIONS_REJECTED.labels("busy").inc()
            log.info("refused a call from %s: %s", caller, refusal)
            raise CallsBusy(BUSY_MESSAGE)
        call = self._open_call(self.engines, self.config, self._forget, self.config.tenant(tenant))
        token = secrets.token_urlsafe(24)
        self.directory.add(call.id, tenant, self.node, call, address=address, hangup_token=token)
        metrics.SESSIONS_ACTIVE.set(len(self.directory))
        try:
            answer = await call.answer(sdp, "offer", page)
        except Exception as exc:  # aiortc raises ValueError and others for SDP it cannot use
            call.log.warning("rejected offer: %s", exc)
            metrics.SESSIONS_REJECTED.labels("bad_sdp").inc()
            await call.close()
            raise OfferRefused(f"could not use the offer SDP: {exc or type(exc).__name__}") from None
        metrics.SESSIONS_TOTAL.inc()
        call.log.info("call started from %s (tenant %s)", caller, tenant)
        return OpenedCall(call.id, answer.sdp, answer.type, self.node, call.render.where, call.render.reason, token)

    def _forget(self, call: Call) -> None:
        record = self.directory.remove(call.id)
        if record is not None:
            self._ended_turns.extend(sorted((at, record.tenant, handoff) for at, handoff in call.replies()))
        metrics.SESSIONS_ACTIVE.set(len(self.directory))

    async def hang_up(self, session: str, tenant: str, token: str) -> bool:
        record = self.directory.get(session)
        if record is None or record.tenant != tenant or not hmac.compare_digest(record.hangup_token.encode(), token.encode()):
            return False
        await record.call.close()
        return True

    async def drain(self, seconds: float) -> None:
        self.draining = True
        records = self.directory.records()
        log.info("draining: %d calls in progress, given up to %.0f s", len(records), seconds)
        await asyncio.gather(*(r.call.restarting() for r in records), return_exceptions=True)
        deadline = time.monotonic() + seconds
        while len(self.directory) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        left = self.directory.records()
        if left:
            log.info("drain time over: ending %d calls", len(left))
        await asyncio.gather(*(r.call.close("draining") for r in left), return_exceptions=True)

    async def health(self) -> dict:
        return {"status": "ok", "sessions": len(self.directory)}

    async def live(self, tenant: str) -> dict:
        return live_view(tenant, [self.load()])

    async def take_over(self, session: str, tenant: str, sdp: str, who: str) -> tuple[str, str]:
        record = self.directory.get(session)
        if record is None or record.tenant != tenant:
            raise NoSuchCall(f"no call {session!r} in progress for tenant {tenant!r}")
        answer = await record.call.join_operator(sdp, who)
        return answer.sdp, answer.type

    async def hand_back(self, session: str, tenant: str) -> bool:
        record = self.directory.get(session)
        if record is None or record.tenant != tenant:
            return False
        return await record.call.leave_operator()

    async def node_metrics(self, node: str) -> bytes | None:
        return generate_latest(metrics.REGISTRY) if node == self.node else None

    async def active_faq_version(self, tenant: str) -> str:
        return self.engines.answerers.active_version(tenant)

    async def activate_faq(self, tenant: str, version: str) -> str:
        registry = self.engines.answerers
        answerer = await asyncio.get_running_loop().run_in_executor(None, registry.load, tenant, version)
        previous = registry.active_version(tenant)
        registry.activate(tenant, version, answerer)
        self.engines.warm_speech_in_background([self.config.tenant(tenant)])  # the new version's answers, spoken ahead
        return previous

    async def close(self) -> None:
        for record in self.directory.records():
            await record.call.close()
