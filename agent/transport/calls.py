"""Where calls run: the contract the HTTP front uses, and the calls of this process.

The front (`server.py`, `operator.py`) only talks to a `Calls`. On one box that
is `LocalCalls`, which owns this process's sessions. In a cluster it is
`agent.cluster.front.RayCalls`, which places each call on a node whose own
`LocalCalls` (inside a Ray actor) owns it.
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Protocol

import psutil
from prometheus_client import generate_latest

from .. import metrics
from ..config import AgentConfig, LoadLimit
from ..engines import Engines
from .call import CallSession

log = logging.getLogger(__name__)


class CallsBusy(Exception):
    """No room for another call; the message is for the customer."""


class OfferRefused(Exception):
    """The offer SDP could not be used; the message says why."""


@dataclass(frozen=True)
class OpenedCall:
    session: str
    sdp: str
    type: str
    node: str  # which node hosts it ("local" on one box)


@dataclass(frozen=True)
class NodeLoad:
    """How busy one node is: what admission and placement decide on."""

    node: str
    calls: int
    capacity: int  # server.max_sessions of that node
    min_fps: float | None  # the slowest established call's frame rate over its last second; None without one
    cpu_percent: float  # the whole machine, over the last sampling interval
    sessions: tuple[str, ...] = field(default=())
    faq_versions: tuple[tuple[str, str], ...] = field(default=())  # (tenant, active FAQ version) pairs

    def refusal(self, limit: LoadLimit | None, target_fps: int) -> str | None:
        """Why this node must not take another call, or None if it may."""
        if self.calls >= self.capacity:
            return f"{self.calls} of {self.capacity} calls"
        if limit is None:
            return None
        if self.min_fps is not None and self.min_fps < limit.min_fps_ratio * target_fps:
            return f"its calls already render only {self.min_fps:.1f} fps"
        if self.calls and self.cpu_percent > limit.max_cpu_percent:  # an idle node always takes one call: its own warm-up yields to it
            return f"CPU at {self.cpu_percent:.0f}%"
        return None


BUSY_MESSAGE = "all agents are busy, please try again in a minute"


class Calls(Protocol):
    async def open(self, sdp: str, tenant: str, caller: str) -> OpenedCall:
        """Starts a call from a browser's offer; raises CallsBusy or OfferRefused."""

    async def hang_up(self, session: str, tenant: str) -> bool:
        """Ends the tenant's call; False when there is no such call."""

    async def health(self) -> dict:
        """What /healthz shows."""

    async def active_faq_version(self, tenant: str) -> str: ...

    async def node_metrics(self, node: str) -> bytes | None:
        """One node's own Prometheus metrics (its calls' stages); None for an unknown node."""

    async def activate_faq(self, tenant: str, version: str) -> str:
        """Makes the version the tenant's answerer from every call's next turn; returns the previous one; raises VersionError."""

    async def close(self) -> None: ...


class LocalCalls:
    """The calls of this process, with the models every one of them shares."""

    ESTABLISHED_S = 2.0  # a call's frame rate counts for admission once it has streamed this long

    def __init__(self, engines: Engines, config: AgentConfig, load_limit: LoadLimit | None = None, node: str = "local") -> None:
        self.engines, self.config, self.load_limit, self.node = engines, config, load_limit, node
        self.sessions: dict[str, CallSession] = {}
        self._started: dict[str, float] = {}
        psutil.cpu_percent(interval=None)  # the first reading starts the interval the next one reports on

    def load(self) -> NodeLoad:
        now = time.monotonic()
        rates = [s.video_out.recent_fps for sid, s in self.sessions.items()
                 if now - self._started[sid] >= self.ESTABLISHED_S and s.video_out.recent_fps is not None]
        versions = tuple((tenant, self.engines.answerers.active_version(tenant)) for tenant in self.config.tenants)
        return NodeLoad(self.node, len(self.sessions), self.config.server.max_sessions, min(rates) if rates else None,
                        psutil.cpu_percent(interval=None), tuple(self.sessions), versions)

    async def open(self, sdp: str, tenant: str, caller: str) -> OpenedCall:
        refusal = self.load().refusal(self.load_limit, self.config.render.fps)
        if refusal is not None:
            metrics.SESSIONS_REJECTED.labels("busy").inc()
            log.info("refused a call from %s: %s", caller, refusal)
            raise CallsBusy(BUSY_MESSAGE)
        session = CallSession(self.engines, self.config, on_closed=self._forget, tenant=self.config.tenant(tenant))
        self.sessions[session.id] = session
        self._started[session.id] = time.monotonic()
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))
        try:
            answer = await session.answer(sdp, "offer")
        except Exception as exc:  # aiortc raises ValueError and others for SDP it cannot use
            session.log.warning("rejected offer: %s", exc)
            metrics.SESSIONS_REJECTED.labels("bad_sdp").inc()
            await session.close()
            raise OfferRefused(f"could not use the offer SDP: {exc}") from None
        metrics.SESSIONS_TOTAL.inc()
        session.log.info("call started from %s (tenant %s)", caller, tenant)
        return OpenedCall(session.id, answer.sdp, answer.type, self.node)

    def _forget(self, session: CallSession) -> None:
        self.sessions.pop(session.id, None)
        self._started.pop(session.id, None)
        metrics.SESSIONS_ACTIVE.set(len(self.sessions))

    async def hang_up(self, session: str, tenant: str) -> bool:
        call = self.sessions.get(session)
        if call is None or call.tenant != tenant:
            return False
        await call.close()
        return True

    async def health(self) -> dict:
        return {"status": "ok", "sessions": len(self.sessions)}

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
        for session in list(self.sessions.values()):
            await session.close()
