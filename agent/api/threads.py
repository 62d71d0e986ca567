"""/v1/threads: create (with initial messages), retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from agent.api import messages
from agent.api.assistants import tool_resources_wire
from agent.api.common import (
    Metadata,
    Request,
    ToolResources,
    deleted,
    get_or_404,
    new_id,
    now,
    owner,
    parse,
    store,
)
from agent.api.messages import MessageCreate
from agent.api.vector_stores import attach_thread_files, create_helper_stores
from agent.app_keys import THREAD_DELETED
from agent.errors import not_found
from agent.store import db

routes = web.RouteTableDef()


class ThreadCreate(Request):
    messages: list[MessageCreate] | None = Field(default=None, max_length=32)
    metadata: Metadata = None
    tool_resources: ToolResources | None = None


class ThreadUpdate(Request):
    metadata: Metadata = None
    tool_resources: ToolResources | None = None


async def create_thread(request: web.Request, body: ThreadCreate) -> dict[str, Any]:
    """Used by POST /threads and by create-and-run."""
    ids = await create_helper_stores(request, body.tool_resources)
    thread: dict[str, Any] = {
        "id": new_id("thread_"),
        "object": "thread",
        "created_at": now(),
        "metadata": body.metadata or {},
        "tool_resources": tool_resources_wire(body.tool_resources, ids),
    }
    msgs = [messages.from_request(thread["id"], m) for m in body.messages or []]
    async with store(request).write() as conn:
        await db.insert(conn, "thread", thread, owner(request))
        for msg in msgs:
            await messages.insert(conn, msg, owner(request))
    for msg in msgs:
        await attach_thread_files(request, thread["id"], msg["attachments"])
    return await get_or_404(request, "thread", thread["id"])


@routes.post("/v1/threads")
async def create(request: web.Request) -> web.Response:
    return web.json_response(await create_thread(request, await parse(request, ThreadCreate)))


@routes.get("/v1/threads/{thread_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(await get_or_404(request, "thread", request.match_info["thread_id"]))


@routes.post("/v1/threads/{thread_id}")
async def modify(request: web.Request) -> web.Response:
    thread = await get_or_404(request, "thread", request.match_info["thread_id"])
    body = await parse(request, ThreadUpdate)
    if "metadata" in body.model_fields_set:
        thread["metadata"] = body.metadata or {}
    if "tool_resources" in body.model_fields_set:
        thread["tool_resources"] = {**thread["tool_resources"], **tool_resources_wire(body.tool_resources)}
    return web.json_response(await store(request).update("thread", thread, owner(request)))


@routes.delete("/v1/threads/{thread_id}")
async def delete(request: web.Request) -> web.Response:
    thread_id = request.match_info["thread_id"]
    async with store(request).write() as conn:
        if not await db.delete(conn, "thread", thread_id, owner(request)):
            raise not_found("thread", thread_id)
        for kind in ("message", "run", "step"):
            await db.delete_children(conn, kind, thread_id)
    for hook in request.app[THREAD_DELETED]:
        await hook(thread_id)
    return deleted(thread_id, "thread.deleted")
