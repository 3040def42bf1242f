"""Every event the page can receive on the `events` data channel, typed; the widget handles each of them.

The browser sends `{"type": "text", "text": ...}` (a typed question) and `{"type": "bye"}`.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum


class AgentState(str, Enum):
    """What the agent is doing, as the page shows it."""

    LISTENING = "listening"  # the customer is speaking
    THINKING = "thinking"  # transcribing and choosing the answer
    SPEAKING = "speaking"  # the answer is playing
    IDLE = "idle"  # waiting for the customer


@dataclass(frozen=True)
class StateChanged:
    state: AgentState
    type: str = field(default="state", init=False)


@dataclass(frozen=True)
class UserSaid:
    """The customer's words, as transcribed (or typed)."""

    text: str
    turn: int
    type: str = field(default="user", init=False)


@dataclass(frozen=True)
class AvatarSaid:
    """A sentence of the answer, sent as it starts playing."""

    text: str
    turn: int
    type: str = field(default="avatar", init=False)


@dataclass(frozen=True)
class HandedOff:
    """The agent offers a person: it was unsure (`low_confidence`) or the customer asked (`requested`)."""

    turn: int
    reason: str
    type: str = field(default="handoff", init=False)


@dataclass(frozen=True)
class Interrupted:
    """The customer spoke over the answer of this turn; the rest of it was dropped."""

    turn: int
    type: str = field(default="interrupted", init=False)


@dataclass(frozen=True)
class PersonEvent:
    """A person and this call: `waiting` (one is being found, for up to `wait_s`), `joined` (a person speaks through
    the avatar now), `left` (the assistant is back: `reason` handed_back or lost), `none_free` (nobody took the call
    in time; `message` says how the customer can be contacted)."""

    status: str
    reason: str = ""
    message: str = ""
    wait_s: float = 0.0
    type: str = field(default="person", init=False)


@dataclass(frozen=True)
class ErrorEvent:
    message: str
    type: str = field(default="error", init=False)


@dataclass(frozen=True)
class CallEnded:
    """The agent ends the call: `reason` not_connected, too_long, idle or draining (the widget says each in words)."""

    reason: str
    message: str
    type: str = field(default="ended", init=False)


PageEvent = StateChanged | UserSaid | AvatarSaid | HandedOff | Interrupted | PersonEvent | ErrorEvent | CallEnded
PAGE_EVENT_TYPES = ("state", "user", "avatar", "handoff", "interrupted", "person", "error", "ended")


def to_json(event: PageEvent) -> dict:
    """The wire form: a flat JSON object with its `type`."""
    body = asdict(event)
    if isinstance(event, StateChanged):
        body["state"] = event.state.value
    return body
