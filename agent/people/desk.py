"""One call's way to a person: with the assistant, waiting for a person, or a person speaking through the avatar.

The desk decides what the customer hears and sees at each step and owns the call's person state; the call's
transport connects the person's own audio (`transport/operator_leg.py`) and calls `join` / `leave`. The queue an
operator sees is every call whose desk is waiting, oldest first (`calls/local.py`).
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from ..config import HandoffConfig
from ..events import AvatarSaid, HandedOff, PageEvent, PersonEvent, UserSaid

ASSISTANT, WAITING, PERSON = "assistant", "waiting", "person"
TRANSCRIPT_LINES = 40  # the conversation so far, as the operator sees it before joining


class PersonTaken(Exception):
    """Another person already speaks in this call."""


def in_words(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return "a minute" if minutes == 1 else f"{minutes} minutes"


class PersonDesk:
    def __init__(self, conversation, settings: HandoffConfig, send_event, log: logging.LoggerAdapter) -> None:
        self.conversation, self.settings, self.send_event, self.log = conversation, settings, send_event, log
        self.status = ASSISTANT
        self.waiting_since: float | None = None
        self.transcript: deque[tuple[str, str]] = deque(maxlen=TRANSCRIPT_LINES)  # (who, words)
        self._timer: asyncio.TimerHandle | None = None

    def seen(self, event: PageEvent) -> None:
        """Every event the customer's page gets passes here: the captions make the transcript, a hand-off starts the wait."""
        if isinstance(event, UserSaid):
            self.transcript.append(("customer", event.text))
        elif isinstance(event, AvatarSaid):
            self.transcript.append(("person" if self.status == PERSON else "assistant", event.text))
        elif isinstance(event, HandedOff):
            self.request(event.reason)

    def request(self, reason: str) -> None:
        """The avatar offered a person: the call waits for one, up to handoff.wait_s."""
        if not self.settings.to_people or self.status != ASSISTANT:
            return
        self.status, self.waiting_since = WAITING, time.monotonic()
        self.log.info("waiting for a person (%s), up to %.0f s", reason, self.settings.wait_s)
        self.send_event(PersonEvent(WAITING, reason, wait_s=self.settings.wait_s))
        self.conversation.say_next(self.settings.waiting_message.format(minutes=in_words(self.settings.wait_s)))
        self._timer = asyncio.get_running_loop().call_later(self.settings.wait_s, self._none_free)

    def _none_free(self) -> None:
        if self.status != WAITING:
            return
        self.status, self.waiting_since = ASSISTANT, None
        self.log.info("nobody took the call within %.0f s", self.settings.wait_s)
        self.send_event(PersonEvent("none_free", message=self.settings.none_free_message))
        self.conversation.say_next(self.settings.none_free_message)

    def join(self, who: str) -> None:
        """A person takes the call (from waiting, or at the operator's choice); the assistant falls silent."""
        if self.status == PERSON:
            raise PersonTaken("a person is already on this call")
        self._cancel_timer()
        waited = time.monotonic() - self.waiting_since if self.waiting_since is not None else None
        self.status, self.waiting_since = PERSON, None
        self.log.info("%s joined the call%s", who, f" after {waited:.0f} s of waiting" if waited is not None else "")
        self.conversation.person_joins()
        self.send_event(PersonEvent("joined"))

    def leave(self, reason: str) -> None:
        """The person hands the call back (`handed_back`) or their connection is gone (`lost`): the assistant answers again."""
        if self.status != PERSON:
            return
        self.status = ASSISTANT
        self.log.info("the person left the call (%s)", reason)
        self.conversation.person_leaves()
        self.send_event(PersonEvent("left", reason))
        self.conversation.say_next(self.settings.back_message if reason == "handed_back" else self.settings.lost_message)

    def close(self) -> None:
        self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
