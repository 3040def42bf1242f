"""HTTP side of the agent: the web client, WebRTC signalling, the avatar for pages that draw it, health and metrics."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path

import aiohttp_cors
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics
from ..calls.contract import Calls, CallsBusy, CallsLimited, OfferRefused
from ..calls.jobs import JobRunner, LocalJobs
from ..config import AgentConfig
from ..logs import printable
from ..render.lean import SHADERS
from ..render.publish import PublishedAvatars
from ..render.view import Backdrop
from .ice import ice_servers_for_a_call, turn_secret
from .limits import PerAddressRate, TrustedProxies
from .operator import CONSOLE_HEADERS, add_operator_routes
from .shared import CALLS, CLIENT, CONFIG, PROXIES, client_address, json_error

log = logging.getLogger(__name__)

WEB_CLIENT = Path(__file__).resolve().parents[2] / "web_client"


@web.middleware
async def json_errors(request: web.Request, handler):
    """Every failure is a JSON body with a message a person can read."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        metrics.ERRORS.labels(f"http_{exc.status}").inc()
        return json_error(exc.status, exc.reason if exc.text is None or exc.text.startswith(f"{exc.status}:") else exc.text)
    except Exception:
        metrics.ERRORS.labels("http_500").inc()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal error")


TENANT = web.RequestKey("tenant", str)  # the tenant id an /api/ request was checked against
AVATARS = web.AppKey("avatars", PublishedAvatars)
OFFER_RATE = web.AppKey("offer_rate", PerAddressRate)  # offers per client address a minute
ICE_RATE = web.AppKey("ice_rate", PerAddressRate)  # TURN users handed out per client address a minute
TURN_SECRET = web.AppKey("turn_secret", object)  # str | None: the secret shared with coturn
DRAIN = web.AppKey("drain", object)  # Drain: set once SIGTERM came


class Drain:
    """SIGTERM (what systemd sends to restart) drains instead of dropping calls: new offers get 503 with Retry-After,
    calls in progress finish their answer, are told the line will be back and may go on up to `server.drain_s`; then
    the process exits as it does on SIGINT."""

    RETRY_AFTER_S = 30

    def __init__(self) -> None:
        self.active = False
        self._task: asyncio.Task | None = None

    def start(self, app: web.Application, then_exit: bool = False) -> None:
        """Drains the app's calls; `then_exit`: the process exits once they are gone (SIGTERM's way)."""
        if self.active:
            return
        self.active = True
        log.info("draining: taking no new calls; calls in progress may go on for %.0f s", app[CONFIG].server.drain_s)
        self._task = asyncio.get_running_loop().create_task(self._drain(app, then_exit), name="drain")

    async def _drain(self, app: web.Application, then_exit: bool) -> None:
        try:
            await app[CALLS].drain(app[CONFIG].server.drain_s)
        finally:
            log.info("drained%s", ": exiting" if then_exit else "")
            if then_exit:
                os.kill(os.getpid(), signal.SIGINT)  # aiohttp's own graceful exit from here on


async def _drain_on_sigterm(app: web.Application) -> None:
    """Runs after aiohttp installed its signal handlers: SIGTERM drains first, SIGINT still exits at once."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, app[DRAIN].start, app, True)
    except (NotImplementedError, RuntimeError):  # not the main thread (tests run apps in threads): no signals there
        pass


def _asked_tenant(request: web.Request) -> str:
    """The tenant a request names (`?tenant=`, the widget's data-tenant), or the config's default one."""
    return request.query.get("tenant", request.app[CONFIG].default_tenant)


@web.middleware
async def security_headers(request: web.Request, handler):
    """Who may frame which page, and no content sniffing. The console may be framed by nobody; the agent's own page
    (`/`, the client's HTML files) only by the tenant's allowed origins, so no other site can dress it up as its own."""
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    path = request.path
    if path in ("/operator", "/client/operator.html"):
        response.headers.update(CONSOLE_HEADERS)
    elif path == "/" or (path.startswith("/client/") and path.endswith(".html")):
        config, tenant_id = request.app[CONFIG], _asked_tenant(request)
        origins = config.tenant(tenant_id).allowed_origins if tenant_id in config.tenants else ()
        ancestors = "*" if "*" in origins else " ".join(["'self'", *origins])
        response.headers["Content-Security-Policy"] = f"frame-ancestors {ancestors}"
        if not origins:  # for browsers without CSP; X-Frame-Options cannot name other sites, so only here
            response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


@web.middleware
async def cross_origin(request: web.Request, handler):
    """Only the tenant's allowed origins (and the agent's own page) may use /api/ from a browser.

    The tenant comes from `?tenant=` (the widget's data-tenant). aiohttp-cors answers
    preflights and adds the CORS headers for every tenant's origins; this refuses an
    origin that is not the tenant's own with 403 before anything else runs.
    """
    if not request.path.startswith("/api/"):
        return await handler(request)
    config, tenant_id = request.app[CONFIG], _asked_tenant(request)
    if tenant_id not in config.tenants:
        return json_error(404, f"unknown tenant {tenant_id!r}")
    tenant = config.tenant(tenant_id)
    origin = request.headers.get("Origin")
    cross = origin is not None and origin != f"{request.scheme}://{request.host}"
    if cross and "*" not in tenant.allowed_origins and origin not in tenant.allowed_origins:
        metrics.ERRORS.labels("origin_refused").inc()
        log.warning("refused %s %s from origin %s for tenant %s", request.method, request.path, origin, tenant_id)
        return json_error(403, f"origin {origin} is not allowed for tenant {tenant_id!r}")
    request[TENANT] = tenant_id
    response = await handler(request)
    if cross:
        response.headers["Vary"] = "Origin"  # the CORS headers depend on it: no cache may share them across sites
    return response


@web.middleware
async def public_client_files(request: web.Request, handler):
    """The web client's files may be loaded by any site that embeds the widget (its ES modules need CORS)."""
    response = await handler(request)
    if request.path.startswith("/client/"):
        response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_CLIENT / "index.html")


async def ice_servers(request: web.Request) -> web.Response:
    """The servers one call's page uses; with `server.turn`, a TURN user of its own that expires (`ice.py`)."""
    if not request.app[ICE_RATE].allow(request[CLIENT]):
        return json_error(429, "too many requests from this address: wait a minute")
    return web.json_response({"iceServers": ice_servers_for_a_call(request.app[CONFIG].server, request.app[TURN_SECRET])},
                             headers={"Cache-Control": "no-store"})


async def offer(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    if request.app[DRAIN].active:
        return web.json_response({"error": "the assistant is restarting: call again in a moment", "reason": "draining"},
                                 status=503, headers={"Retry-After": str(Drain.RETRY_AFTER_S)})
    address = request[CLIENT]
    if not request.app[OFFER_RATE].allow(address):
        metrics.SESSIONS_REJECTED.labels("offer_rate").inc()
        return json_error(429, f"more than {config.server.limits.offers_per_minute} calls a minute from this address: "
                               "wait a minute and call again")
    if request.content_type != "application/json":
        return json_error(415, "send the offer as application/json")
    if request.content_length is not None and request.content_length > config.server.max_offer_bytes:
        return json_error(413, f"offer larger than {config.server.max_offer_bytes} bytes")
    try:
        raw = await request.text()
        if len(raw) > config.server.max_offer_bytes:
            return json_error(413, f"offer larger than {config.server.max_offer_bytes} bytes")
        body = json.loads(raw)
    except web.HTTPRequestEntityTooLarge:
        return json_error(413, f"offer larger than {config.server.max_offer_bytes} bytes")
    except (ValueError, UnicodeDecodeError):
        return json_error(400, "body is not valid JSON")
    if not isinstance(body, dict) or not isinstance(body.get("sdp"), str) or body.get("type") != "offer":
        return json_error(400, 'expected {"sdp": "<offer SDP>", "type": "offer"}')
    sdp = body["sdp"]
    if "m=audio" not in sdp:
        return json_error(400, "the offer must include an audio media section")
    sections = sum(line.startswith("m=") for line in sdp.splitlines())
    if sections > config.server.limits.media_sections:
        return json_error(400, f"the offer has {sections} media sections; at most {config.server.limits.media_sections} are taken")
    render, microphone = body.get("render"), body.get("microphone")
    if render is not None and not isinstance(render, dict):
        return json_error(400, 'optional "render" must be an object like {"webgl2": true, "avatar": true}')
    if microphone is not None and not (isinstance(microphone, dict) and isinstance(microphone.get("echoCancellation", False), bool)):
        return json_error(400, 'optional "microphone" must be an object like {"echoCancellation": true}')
    page = {**(render or {}), "echo_cancellation": (microphone or {}).get("echoCancellation")}  # what the page said of itself
    tenant_id = request[TENANT]
    try:
        call = await request.app[CALLS].open(body["sdp"], tenant_id, caller=f"{address} (origin {printable(request.headers.get('Origin', '-'))})",
                                             page=page, address=address)
    except CallsBusy as exc:
        return json_error(503, str(exc))
    except CallsLimited as exc:
        metrics.SESSIONS_REJECTED.labels("per_address").inc()
        return json_error(429, str(exc))
    except OfferRefused as exc:
        return json_error(400, str(exc))
    return web.json_response({"sdp": call.sdp, "type": call.type, "session": call.session, "hangup_token": call.hangup_token,
                              "node": call.node, "render": {"where": call.render, "reason": call.render_reason}},
                             headers={"Cache-Control": "no-store"})


async def avatar(request: web.Request) -> web.Response:
    """What a page needs to draw the tenant's avatar itself: where it is drawn, the GLB's URL and version, the view."""
    tenant = request.app[CONFIG].tenant(request[TENANT])
    published = await asyncio.get_running_loop().run_in_executor(None, request.app[AVATARS].get, tenant.avatar)
    return web.json_response({"where": tenant.render_where, "glb": f"/api/avatar.glb?tenant={tenant.id}&v={published.etag}",
                              "etag": published.etag, "view": {**published.view, "backdrop": Backdrop.configured(tenant.backdrop).as_json()},
                              "channels": published.channels})


async def avatar_glb(request: web.Request) -> web.Response:
    """The tenant's avatar as a GLB, cacheable: its ETag is its content's hash (304 when the page has it)."""
    tenant = request.app[CONFIG].tenant(request[TENANT])
    published = await asyncio.get_running_loop().run_in_executor(None, request.app[AVATARS].get, tenant.avatar)
    headers = {"ETag": f'"{published.etag}"', "Cache-Control": "public, max-age=3600"}
    if published.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=published.glb, content_type="model/gltf-binary", headers=headers)


async def hangup(request: web.Request) -> web.Response:
    """Ends a call for whoever holds its hang-up token (the page that opened it); an unknown session and a wrong token
    get the same 404, so neither can be probed."""
    session = request.match_info["session"]
    token = request.headers.get("X-Hangup-Token", "")
    if not token or not await request.app[CALLS].hang_up(session, request[TENANT], token):
        return json_error(404, "no such session")
    return web.json_response({"closed": session})


async def health(request: web.Request) -> web.Response:
    return web.json_response({**await request.app[CALLS].health(), "draining": request.app[DRAIN].active})


async def metrics_endpoint(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def node_metrics(request: web.Request) -> web.Response:
    """A cluster node's own metrics, through the front (on one box, node 'local' is this process)."""
    body = await request.app[CALLS].node_metrics(request.match_info["node"])
    if body is None:
        return json_error(404, "no such node")
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _close_calls(app: web.Application) -> None:
    await app[CALLS].close()


def create_app(config: AgentConfig, calls: Calls, jobs: JobRunner | None = None) -> web.Application:
    """The HTTP front over `calls`: this process's (`LocalCalls`) or a cluster's (`agent.cluster.front.RayCalls`)."""
    app = web.Application(middlewares=[client_address, cross_origin, security_headers, public_client_files, json_errors],
                          client_max_size=max(config.server.max_offer_bytes, 600_000))
    app[CONFIG] = config
    app[CALLS] = calls
    app[AVATARS] = PublishedAvatars(config.render)
    app[PROXIES] = TrustedProxies(config.server.trusted_proxies)
    app[OFFER_RATE] = PerAddressRate(config.server.limits.offers_per_minute)
    app[ICE_RATE] = PerAddressRate(2 * config.server.limits.offers_per_minute)
    app[TURN_SECRET] = turn_secret(config.server)
    app[DRAIN] = Drain()
    app.on_startup.append(_drain_on_sigterm)
    app.router.add_get("/", index)
    api = [app.router.add_get("/api/ice-servers", ice_servers), app.router.add_post("/api/offer", offer),
           app.router.add_delete("/api/sessions/{session}", hangup), app.router.add_get("/api/avatar", avatar),
           app.router.add_get("/api/avatar.glb", avatar_glb)]
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/metrics/nodes/{node}", node_metrics)
    app.router.add_static("/client/shaders/", SHADERS)  # the lean renderer's, for pages that light as it does
    app.router.add_static("/client/", WEB_CLIENT)
    origins = {origin for t in config.tenants for origin in config.tenant(t).allowed_origins}
    options = aiohttp_cors.ResourceOptions(allow_headers=("Content-Type", "X-Hangup-Token"), expose_headers=("ETag",), max_age=600)
    cors = aiohttp_cors.setup(app, defaults={origin: options for origin in origins})
    for route in api:
        cors.add(route)
    add_operator_routes(app, jobs or LocalJobs())
    app.on_shutdown.append(_close_calls)
    return app
