"""What the HTTP front asks of wherever calls run: open, hang up, health, FAQ activation; and what a node reports.

On one box that is `local.LocalCalls`, in a cluster `agent.cluster.front.RayCalls`, which places each
call on a node whose own `LocalCalls` (inside a Ray actor) hosts it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ..config import AgentConfig, LoadLimit

BUSY_MESSAGE = "all agents are busy, please try again in a minute"


class CallsBusy(Exception):
    """No room for another call; the message is for the customer."""


class OfferRefused(Exception):
    """The offer could not be used; the message says why."""


class CallsLimited(Exception):
    """This client address (or tenant) has as many calls as it may; the message is for the customer (HTTP 429)."""


@dataclass(frozen=True)
class OpenedCall:
    session: str
    sdp: str
    type: str
    node: str  # which node hosts it ("local" on one box)
    render: str = "server"  # where the face is drawn: "server" (video) or "browser" (poses)
    render_reason: str = ""
    hangup_token: str = ""  # the call's secret: only its holder (the page that opened it) may hang it up over HTTP


@dataclass(frozen=True)
class CallInfo:
    """One call in progress, as a node reports it."""

    session: str
    tenant: str
    seconds: float  # since it started
    fps: float | None  # its video's frames per second over the last second (None: none yet, or drawn in the browser)
    render: str = "server"
    state: str = "idle"  # events.AgentState
    turns: int = 0  # the customer's turns answered
    handoffs: int = 0
    first_audio_ms: float | None = None  # end of the customer's speech -> the avatar's first audio, median so far
    person: str = "assistant"  # people.desk: assistant, waiting (for a person) or person (one speaks through the avatar)
    waiting_s: float | None = None  # how long it has waited for a person
    transcript: tuple[tuple[str, str], ...] = ()  # (who, words), the conversation so far
    node: str = "local"  # which node hosts it


@dataclass(frozen=True)
class TurnTally:
    """One tenant's answered turns over the last hour on one node, ended calls included."""

    tenant: str
    turns: int
    handoffs: int


class NoSuchCall(Exception):
    """No call in progress with that id for that tenant (ended, another tenant's, or never existed)."""


@dataclass(frozen=True)
class NodeLoad:
    """How busy one node is: what admission and placement decide on."""

    node: str
    calls: int
    capacity: int  # server.max_sessions of that node: calls with server video
    min_fps: float | None  # the slowest established call's frame rate over its last second; None without one
    cpu_percent: float  # the whole machine, over the last sampling interval
    call_info: tuple[CallInfo, ...] = field(default=())
    faq_versions: tuple[tuple[str, str], ...] = field(default=())  # (tenant, active FAQ version) pairs
    last_hour: tuple[TurnTally, ...] = field(default=())
    browser_capacity: int = 0  # server.max_browser_sessions: calls whose page draws the face (0: counted as video)
    draining: bool = False  # it takes no new calls: it is restarting (SIGTERM)

    def drawn(self, sessions: set[str] | None = None) -> int:
        """Its page-drawn calls (of `sessions` only, if given); 0 when they count as video (no browser_capacity)."""
        if not self.browser_capacity:
            return 0
        return sum(c.render == "browser" and (sessions is None or c.session in sessions) for c in self.call_info)

    def share(self, video: int, drawn: int) -> float:
        """The share of the node's room that many calls take: a video call 1/capacity, a page-drawn call 1/browser_capacity."""
        return video / max(self.capacity, 1) + (drawn / self.browser_capacity if drawn else 0.0)

    @property
    def sessions(self) -> tuple[str, ...]:
        return tuple(call.session for call in self.call_info)

    def refusal(self, limit: LoadLimit | None, target_fps: int, where: str = "server") -> str | None:
        """Why this node must not take another call (drawn where `where` says), or None if it may."""
        if self.draining:
            return "it is restarting"
        drawn = self.drawn()
        another = (0, 1) if where == "browser" and self.browser_capacity else (1, 0)  # (video, page-drawn)
        if self.share(self.calls - drawn + another[0], drawn + another[1]) > 1 + 1e-9:
            return (f"{self.calls} of {self.capacity} calls" if not drawn else
                    f"{self.calls - drawn} video and {drawn} page-drawn calls: no room for another {where} call")
        if limit is None:
            return None
        if self.min_fps is not None and self.min_fps < limit.min_fps_ratio * target_fps:
            return f"its calls already render only {self.min_fps:.1f} fps"
        if self.calls and self.cpu_percent > limit.max_cpu_percent:  # an idle node always takes one call: its own warm-up yields to it
            return f"CPU at {self.cpu_percent:.0f}%"
        return None


def check_caps(directory, config: AgentConfig, tenant: str, address: str) -> None:
    """A client address's and a tenant's own caps (`server.limits.calls_per_address`, `tenants.<id>.max_calls`), before
    any load is looked at; raises CallsLimited or CallsBusy (`directory`: a `CallDirectory` of the calls in progress)."""
    per_address = config.server.limits.calls_per_address
    if address != "?" and directory.from_address(address) >= per_address:
        raise CallsLimited(f"this network already has {per_address} calls with the assistant: end one, or call again later")
    cap = config.tenant(tenant).max_calls
    if cap is not None and directory.of_tenant(tenant) >= cap:
        raise CallsBusy(BUSY_MESSAGE)


def live_view(tenant: str, loads: Iterable[NodeLoad]) -> dict:
    """What the operator console's Live part shows for one tenant, from the nodes' reports (one on a box)."""
    calls = sorted((c for load in loads for c in load.call_info if c.tenant == tenant), key=lambda c: -c.seconds)
    tallies = [t for load in loads for t in load.last_hour if t.tenant == tenant]
    turns, handoffs = sum(t.turns for t in tallies), sum(t.handoffs for t in tallies)
    waiting = sorted((c for c in calls if c.person == "waiting"), key=lambda c: -(c.waiting_s or 0.0))
    return {"tenant": tenant, "calls": [asdict(c) for c in calls], "waiting": [c.session for c in waiting],
            "last_hour": {"turns": turns, "handoffs": handoffs, "handoff_rate": handoffs / turns if turns else None}}


class Calls(Protocol):
    async def open(self, sdp: str, tenant: str, caller: str, page: dict | None = None, address: str = "?") -> OpenedCall:
        """Starts a call from a browser's offer (`page`: what the page said of itself: what it can draw, whether its
        microphone is echo-cancelled; `address`: the client's, for its limit of calls); raises CallsBusy, CallsLimited
        or OfferRefused."""

    async def hang_up(self, session: str, tenant: str, token: str) -> bool:
        """Ends the tenant's call if `token` is its hang-up token; False when there is no such call or the token is wrong."""

    async def drain(self, seconds: float) -> None:
        """Takes no new calls; calls in progress finish their answer, are told the line will be back, and may go on for
        `seconds`; returns when none is left."""

    async def health(self) -> dict:
        """What /healthz shows."""

    async def active_faq_version(self, tenant: str) -> str: ...

    async def node_metrics(self, node: str) -> bytes | None:
        """One node's own Prometheus metrics (its calls' stages); None for an unknown node."""

    async def activate_faq(self, tenant: str, version: str) -> str:
        """Makes the version the tenant's answerer from every call's next turn; returns the previous one; raises VersionError."""

    async def live(self, tenant: str) -> dict:
        """The tenant's calls in progress, those waiting for a person (oldest first), and the last hour's turns."""

    async def take_over(self, session: str, tenant: str, sdp: str, who: str) -> tuple[str, str]:
        """An operator's offer to take the tenant's call over -> (answer sdp, type); raises NoSuchCall or PersonTaken."""

    async def hand_back(self, session: str, tenant: str) -> bool:
        """The operator on the tenant's call hands it back to the assistant; False when no call or no one on it."""

    async def close(self) -> None: ...
