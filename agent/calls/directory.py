"""The one record of which calls exist and where each runs: a box's own calls, or a cluster front's view of its nodes'."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass
class CallRecord:
    session: str
    tenant: str
    node: str
    since: float = field(default_factory=time.monotonic)  # when it was opened here, or first heard of
    call: object | None = None  # the call object itself, where it runs in this process
    address: str = "?"  # the client's, for its limit of calls
    hangup_token: str = ""  # the call's secret (calls.contract.OpenedCall); empty where only the node knows it


class CallDirectory:
    def __init__(self) -> None:
        self._calls: dict[str, CallRecord] = {}

    def add(self, session: str, tenant: str, node: str, call: object | None = None, address: str = "?",
            hangup_token: str = "") -> CallRecord:
        record = self._calls[session] = CallRecord(session, tenant, node, call=call, address=address, hangup_token=hangup_token)
        return record

    def from_address(self, address: str) -> int:
        return sum(r.address == address for r in self._calls.values())

    def of_tenant(self, tenant: str) -> int:
        return sum(r.tenant == tenant for r in self._calls.values())

    def remove(self, session: str) -> CallRecord | None:
        return self._calls.pop(session, None)

    def get(self, session: str) -> CallRecord | None:
        return self._calls.get(session)

    def __contains__(self, session: str) -> bool:
        return session in self._calls

    def __len__(self) -> int:
        return len(self._calls)

    def records(self, node: str | None = None) -> list[CallRecord]:
        return [r for r in self._calls.values() if node is None or r.node == node]

    def count(self, node: str) -> int:
        return len(self.records(node))

    def drop_node(self, node: str) -> list[str]:
        """Forgets a lost node's calls; returns them."""
        lost = [r.session for r in self.records(node)]
        for session in lost:
            del self._calls[session]
        return lost

    def reconcile(self, node: str, reported: Iterable[tuple[str, str]], asked_at: float) -> list[str]:
        """A node's own list of (session, tenant), asked for at `asked_at`, made the truth for that node.

        Calls it reports are recorded (how a restarted front learns of calls already running); calls
        recorded for it but missing from the report ended there (hung up in the page, connection failed),
        unless they were opened after the report was asked for. Returns the sessions that ended.
        """
        reported = dict(reported)
        for session, tenant in reported.items():
            record = self._calls.get(session)
            if record is None or record.node != node:
                self.add(session, tenant, node)
        ended = [r.session for r in self.records(node) if r.session not in reported and r.since <= asked_at]
        for session in ended:
            del self._calls[session]
        return ended
