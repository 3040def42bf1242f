"""What a stranger may take: the client's real address behind a proxy, offers per address, a page's messages, and
operator sign-ins that back off per address. Each is a small counter with one owner (the app, or one call)."""
from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict, deque

from aiohttp import web

MAX_ADDRESSES = 10_000  # addresses each counter remembers at most: a flood of new addresses evicts the oldest


class TrustedProxies:
    """The client's address of a request: the TCP peer, or, only when that peer is a listed proxy, the right-most
    address in X-Forwarded-For that is not a listed proxy (a client can put anything on the left of that header)."""

    def __init__(self, networks: list[str]) -> None:
        self.networks = [ipaddress.ip_network(n, strict=False) for n in networks]

    def _trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        return any(ip in network for network in self.networks)

    def client(self, request: web.Request) -> str:
        peer = request.remote or "?"
        if not self.networks or not self._trusted(peer):
            return peer
        hops = [hop.strip() for header in request.headers.getall("X-Forwarded-For", []) for hop in header.split(",")]
        for hop in reversed(hops):
            if not hop:
                continue
            if not self._trusted(hop):
                try:
                    return str(ipaddress.ip_address(hop.strip("[]")))
                except ValueError:
                    return peer  # a proxy passed on garbage: the proxy is all we know
        return peer


class PerAddressRate:
    """At most `count` events per address within `window_s` (a sliding window)."""

    def __init__(self, count: int, window_s: float = 60.0) -> None:
        self.count, self.window_s = count, window_s
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def allow(self, address: str) -> bool:
        """Counts one event for `address`; False (and not counted) when it is over its rate."""
        now = time.monotonic()
        recent = self._seen.pop(address, None) or deque()
        while recent and recent[0] <= now - self.window_s:
            recent.popleft()
        allowed = len(recent) < self.count
        if allowed:
            recent.append(now)
        self._seen[address] = recent
        while len(self._seen) > MAX_ADDRESSES:
            self._seen.popitem(last=False)
        return allowed


class MessageBudget:
    """A page's data-channel messages: `per_s` on average, bursts of twice that (a token bucket)."""

    def __init__(self, per_s: float) -> None:
        self.per_s, self.burst = per_s, max(2 * per_s, 1.0)
        self._tokens, self._at = self.burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_s)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class SignInBackoff:
    """Failed operator sign-ins per client address: `free` failures, then each further one doubles how long that
    address must wait (from 1 s up to `max_wait_s`); a success or an hour without failing forgives it. A valid token is
    checked before this, so it is never held back; only guessing is slowed."""

    def __init__(self, free: int = 5, max_wait_s: float = 300.0, forget_s: float = 3600.0) -> None:
        self.free, self.max_wait_s, self.forget_s = free, max_wait_s, forget_s
        self._state: OrderedDict[str, tuple[int, float, float]] = OrderedDict()  # failures, last failure, blocked until

    def wait_s(self, address: str) -> float:
        """How long `address` must wait before its next attempt counts (0: it may try now)."""
        state = self._state.get(address)
        if state is None:
            return 0.0
        failures, last, until = state
        now = time.monotonic()
        if now - last > self.forget_s:
            del self._state[address]
            return 0.0
        return max(0.0, until - now)

    def failed(self, address: str) -> None:
        failures, _, until = self._state.pop(address, (0, 0.0, 0.0))
        failures += 1
        now = time.monotonic()
        if failures > self.free:
            until = now + min(self.max_wait_s, 2.0 ** (failures - self.free - 1))
        self._state[address] = (failures, now, until)
        while len(self._state) > MAX_ADDRESSES:
            self._state.popitem(last=False)

    def succeeded(self, address: str) -> None:
        self._state.pop(address, None)
