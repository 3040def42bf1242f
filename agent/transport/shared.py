"""What the HTTP handlers share: the application's keys and the one JSON error shape."""
from __future__ import annotations

from aiohttp import web

from ..config import AgentConfig

CONFIG = web.AppKey("config", AgentConfig)
CALLS = web.AppKey("calls", object)  # an agent.calls.contract.Calls: this process's calls or a cluster's


def json_error(status: int, message: str) -> web.Response:
    """Every failure is a JSON body with a message a person can read."""
    return web.json_response({"error": message}, status=status)
