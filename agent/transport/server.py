"""HTTP side of the agent: the web client, WebRTC signalling, health and metrics."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .. import metrics
from ..config import AgentConfig
from .calls import Calls, CallsBusy, OfferRefused
from .jobs import JobRunner, LocalJobs
from .operator import add_operator_routes
from .shared import CALLS, CONFIG, json_error

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


@web.middleware
async def cross_origin(request: web.Request, handler):
    """Only the tenant's allowed origins (and the agent's own page) may use /api/ from a browser.

    The tenant comes from `?tenant=` (the widget's data-tenant). Allowed
    cross-origin callers get CORS headers, preflights included; others get 403
    and no CORS headers, so their browser refuses too.
    """
    if not request.path.startswith("/api/"):
        return await handler(request)
    config = request.app[CONFIG]
    tenant_id = request.query.get("tenant", config.default_tenant)
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
    if request.method == "OPTIONS":
        response = web.Response(status=204, headers={
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Content-Type",
            "Access-Control-Max-Age": "600",
        })
    else:
        response = await handler(request)
    if cross:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(WEB_CLIENT / "index.html")


async def ice_servers(request: web.Request) -> web.Response:
    servers = [s.model_dump(exclude_none=True) for s in request.app[CONFIG].server.ice_servers]
    return web.json_response({"iceServers": servers})


async def offer(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
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
    if "m=audio" not in sdp or "m=video" not in sdp:
        return json_error(400, "the offer must include an audio and a video media section")
    tenant_id = request[TENANT]
    try:
        call = await request.app[CALLS].open(body["sdp"], tenant_id, caller=f"{request.remote} (origin {request.headers.get('Origin', '-')})")
    except CallsBusy as exc:
        return json_error(503, str(exc))
    except OfferRefused as exc:
        return json_error(400, str(exc))
    return web.json_response({"sdp": call.sdp, "type": call.type, "session": call.session})


async def hangup(request: web.Request) -> web.Response:
    session = request.match_info["session"]
    if not await request.app[CALLS].hang_up(session, request[TENANT]):
        return json_error(404, "no such session")
    return web.json_response({"closed": session})


async def health(request: web.Request) -> web.Response:
    return web.json_response(await request.app[CALLS].health())


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
    app = web.Application(middlewares=[cross_origin, json_errors], client_max_size=max(config.server.max_offer_bytes, 600_000))
    app[CONFIG] = config
    app[CALLS] = calls
    app.router.add_get("/", index)
    app.router.add_get("/api/ice-servers", ice_servers)
    app.router.add_post("/api/offer", offer)
    app.router.add_delete("/api/sessions/{session}", hangup)
    app.router.add_get("/healthz", health)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/metrics/nodes/{node}", node_metrics)
    app.router.add_static("/client/", WEB_CLIENT)
    add_operator_routes(app, jobs or LocalJobs())
    app.on_shutdown.append(_close_calls)
    return app
