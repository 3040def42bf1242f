"""What the HTTP handlers share: the application's keys and the one JSON error shape."""
from __future__ import annotations

from aiohttp import web

from ..config import AgentConfig
from ..engines import Engines

ENGINES = web.AppKey("engines", Engines)
CONFIG = web.AppKey("config", AgentConfig)
SESSIONS = web.AppKey("sessions", dict)


def json_error(status: int, message: str) -> web.Response:
    """Every failure is a JSON body with a message a person can read."""
    return web.json_response({"error": message}, status=status)
