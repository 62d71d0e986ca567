"""``expires_after`` of files and vector stores: past ``expires_at`` an object is gone, as hosted.

Reads already treat an expired object as absent (404, left out of lists, refused as a reference); this
sweep deletes it for good (rows, bytes, index) shortly after.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from agent.api.common import now
from agent.api.files import remove_file
from agent.api.refs import expired
from agent.api.vector_stores import remove_store
from agent.app_keys import STORE

log = logging.getLogger(__name__)
SWEEP_SECONDS = 60.0


async def sweep(app: web.Application) -> int:
    """Delete every expired file and vector store; returns how many went."""
    at, gone = now(), 0
    for who, obj in await app[STORE].find("file"):
        if expired(obj, at) and await remove_file(app, who, obj["id"]):
            gone += 1
    for who, obj in await app[STORE].find("vector_store"):
        if expired(obj, at):
            await remove_store(app, who, obj["id"])
            gone += 1
    return gone


async def expiry_ctx(app: web.Application) -> AsyncIterator[None]:
    async def loop() -> None:
        while True:
            try:
                await sweep(app)
            except Exception:
                log.exception("expiry sweep failed")
            await asyncio.sleep(SWEEP_SECONDS)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
