"""Server-sent events for a run leg (spec §4): bare objects under ``event:`` names, ``[DONE]`` at the end."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse, sse_response

from agent.app_keys import METRICS, SETTINGS
from agent.engine.bus import END_EVENTS, SHUTDOWN, Event, EventBus
from agent.observe import GONE

log = logging.getLogger(__name__)


async def stream_run(
    request: web.Request,
    bus: EventBus,
    run_id: str,
    queue: asyncio.Queue[Event],
    first: list[tuple[str, dict[str, Any]]] | None = None,
) -> web.StreamResponse:
    """Relay the run's events until the leg ends; a client that goes away does not stop the run."""
    gauge = request.app[METRICS].open_streams if METRICS in request.app else None
    if gauge is not None:
        gauge.inc()
    resp: EventSourceResponse | None = None
    try:
        async with sse_response(
            request, allow_all_methods=True, ping_interval=request.app[SETTINGS].sse_keepalive
        ) as resp:
            for name, data in first or []:
                await resp.send(json.dumps(data), event=name)
            while True:
                event = await queue.get()
                if event.name == "_end":  # the run's thread was deleted: nothing more will come
                    break
                await resp.send(json.dumps(event.data), event=event.name)
                if event.name in END_EVENTS or event is SHUTDOWN:
                    break
            await resp.send("[DONE]", event="done")
        return resp
    except ConnectionResetError:
        request[GONE] = True
        log.info("the client closed the stream of run %s; the run goes on", run_id)
        return resp if resp is not None else web.Response(status=499)
    finally:
        if gauge is not None:
            gauge.dec()
        bus.unsubscribe(run_id, queue)
