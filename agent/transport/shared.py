"""What the HTTP handlers share: the application's keys, the client's address, and the one JSON error shape."""
from __future__ import annotations

from aiohttp import web

from ..config import AgentConfig
from .limits import TrustedProxies

CONFIG = web.AppKey("config", AgentConfig)
CALLS = web.AppKey("calls", object)  # an agent.calls.contract.Calls: this process's calls or a cluster's
PROXIES = web.AppKey("trusted_proxies", TrustedProxies)
CLIENT = web.RequestKey("client", str)  # the client's address: the TCP peer, or through a trusted proxy its X-Forwarded-For


def json_error(status: int, message: str) -> web.Response:
    """Every failure is a JSON body with a message a person can read."""
    return web.json_response({"error": message}, status=status)


@web.middleware
async def client_address(request: web.Request, handler):
    """Every handler and log reads the client's address from here (`server.trusted_proxies`), never `request.remote`."""
    request[CLIENT] = request.app[PROXIES].client(request)
    return await handler(request)
