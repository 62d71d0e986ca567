"""/v1/threads: create (with initial messages), retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

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
from agent.api.vector_stores import StoreWrites, helper_stores, thread_files
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


def plan_thread(body: ThreadCreate, writes: StoreWrites) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The thread and its messages a create will write (helper and attachment stores go to ``writes``).
    Everything that can be refused is refused here, before the caller's transaction."""
    thread: dict[str, Any] = {
        "id": new_id("thread_"),
        "object": "thread",
        "created_at": now(),
        "metadata": body.metadata or {},
        "tool_resources": tool_resources_wire(
            body.tool_resources, helper_stores(body.tool_resources, writes)
        ),
    }
    msgs = [messages.from_request(thread["id"], m) for m in body.messages or []]
    for msg in msgs:
        thread_files(thread, msg["attachments"], writes)
    return thread, msgs


async def write_thread(
    conn: AsyncConnection, who: str, thread: dict[str, Any], msgs: list[dict[str, Any]], writes: StoreWrites
) -> None:
    await writes.write(conn, who)
    await db.insert(conn, "thread", thread, who)
    for msg in msgs:
        await messages.insert(conn, msg, who)


@routes.post("/v1/threads")
async def create(request: web.Request) -> web.Response:
    body = await parse(request, ThreadCreate)
    writes, who = StoreWrites(), owner(request)
    thread, msgs = plan_thread(body, writes)
    async with store(request).write() as conn:
        await write_thread(conn, who, thread, msgs, writes)
    writes.ingest(request, who)
    return web.json_response(thread)


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
