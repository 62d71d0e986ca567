"""The outermost middleware: a request id (``X-Request-ID`` taken or made, and returned), one log line
per request, and the HTTP metrics."""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid

from aiohttp import web

from agent.app_keys import METRICS
from agent.errors import Handler
from agent.logs import REQUEST_ID

log = logging.getLogger("agent.access")
REQUEST_ID_KEY: web.RequestKey[str] = web.RequestKey("request_id", str)
GONE: web.RequestKey[bool] = web.RequestKey("client_gone", bool)
"""Set when the client went away before the response was complete (logged as status 499)."""
METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"})
QUIET = ("/health", "/metrics")
"""Probes and scrapes come every few seconds: their lines are DEBUG (errors stay INFO)."""
_GOOD_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")


def request_id(request: web.Request) -> str:
    given = request.headers.get("X-Request-ID", "")
    return given if _GOOD_ID.match(given) else "req_" + uuid.uuid4().hex


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    rid = request[REQUEST_ID_KEY] = request_id(request)
    token = REQUEST_ID.set(rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except (asyncio.CancelledError, ConnectionError):
        request[GONE] = True
        raise
    finally:
        if request.get(GONE):
            status = 499
        _record(request, status, time.perf_counter() - started)
        REQUEST_ID.reset(token)


def _record(request: web.Request, status: int, seconds: float) -> None:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "(unmatched)"
    metrics = request.app.get(METRICS)
    if metrics is not None:
        method = request.method if request.method in METHODS else "OTHER"  # labels stay few
        metrics.http_requests.labels(method, route, str(status)).inc()
        metrics.http_seconds.labels(route).observe(seconds)
    ms = round(seconds * 1000, 1)
    quiet = request.path in QUIET and status < 400
    log.log(
        logging.DEBUG if quiet else logging.INFO,
        "%s %s %d %.1f ms%s",
        request.method,
        request.path,
        status,
        ms,
        " (client went away)" if status == 499 else "",
        extra={
            "method": request.method,
            "path": request.path,
            "route": route,
            "status": status,
            "duration_ms": ms,
        },
    )


async def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response (streams too, and error envelopes) carries the id."""
    rid = request.get(REQUEST_ID_KEY)
    if rid:
        response.headers["X-Request-ID"] = rid
