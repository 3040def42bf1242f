"""The ICE servers handed to one call's page: the static ones as configured, and, with `server.turn`, a TURN user of the
call's own under the secret shared with coturn (its REST scheme: `use-auth-secret`). The name is the expiry and a random
part; the password is the base64 HMAC-SHA1 of the name. coturn checks both itself, so nothing is stored here, and a
leaked pair stops working at its expiry."""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time

from ..config import ConfigError, ServerConfig


def turn_secret(server: ServerConfig) -> str | None:
    """The shared secret from the environment; ConfigError when `server.turn` names a variable that is not set."""
    if server.turn is None:
        return None
    secret = os.environ.get(server.turn.secret_env, "")
    if len(secret) < 16:
        raise ConfigError(f"server.turn.secret_env: set {server.turn.secret_env} to coturn's static-auth-secret (at least 16 "
                          "characters; make one with: python3 -c \"import secrets; print(secrets.token_urlsafe(32))\")")
    return secret


def turn_credentials(secret: str, ttl_s: int, now: float | None = None) -> tuple[str, str]:
    """(username, password) valid for `ttl_s` from `now`."""
    username = f"{int((now if now is not None else time.time()) + ttl_s)}:{secrets.token_hex(8)}"
    password = base64.b64encode(hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()).decode()
    return username, password


def ice_servers_for_a_call(server: ServerConfig, secret: str | None) -> list[dict]:
    """What `/api/ice-servers` answers: a fresh TURN user (when configured) first, then the static servers."""
    out = []
    if server.turn is not None and secret:
        username, password = turn_credentials(secret, server.turn.ttl_s)
        out.append({"urls": list(server.turn.urls), "username": username, "credential": password})
    out += [s.model_dump(exclude_none=True) for s in server.ice_servers]
    return out
