"""What the HTTP front asks of wherever calls run: open, hang up, health, FAQ activation; and what a node reports.

On one box that is `local.LocalCalls`, in a cluster `agent.cluster.front.RayCalls`, which places each
call on a node whose own `LocalCalls` (inside a Ray actor) hosts it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from ..config import LoadLimit

BUSY_MESSAGE = "all agents are busy, please try again in a minute"


class CallsBusy(Exception):
    """No room for another call; the message is for the customer."""


class OfferRefused(Exception):
    """The offer could not be used; the message says why."""


@dataclass(frozen=True)
class OpenedCall:
    session: str
    sdp: str
    type: str
    node: str  # which node hosts it ("local" on one box)
    render: str = "server"  # where the face is drawn: "server" (video) or "browser" (poses)
    render_reason: str = ""


@dataclass(frozen=True)
class CallInfo:
    """One call in progress, as a node reports it."""

    session: str
    tenant: str
    seconds: float  # since it started
    fps: float | None  # its video's frames per second over the last second (None: none yet, or drawn in the browser)
    render: str = "server"


@dataclass(frozen=True)
class NodeLoad:
    """How busy one node is: what admission and placement decide on."""

    node: str
    calls: int
    capacity: int  # server.max_sessions of that node
    min_fps: float | None  # the slowest established call's frame rate over its last second; None without one
    cpu_percent: float  # the whole machine, over the last sampling interval
    call_info: tuple[CallInfo, ...] = field(default=())
    faq_versions: tuple[tuple[str, str], ...] = field(default=())  # (tenant, active FAQ version) pairs

    @property
    def sessions(self) -> tuple[str, ...]:
        return tuple(call.session for call in self.call_info)

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


class Calls(Protocol):
    async def open(self, sdp: str, tenant: str, caller: str, page: dict | None = None) -> OpenedCall:
        """Starts a call from a browser's offer (`page`: what the page can draw); raises CallsBusy or OfferRefused."""

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
