"""/v1/conversations and their items. A conversation IS a thread: its messages are message items and
its tool steps' function calls are function_call (+ function_call_output) items, so an Assistants
thread id works wherever a conversation id does, and the other way round."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.api.common import Metadata, owner, page_of, parse, store
from agent.api.response_input import Lenient, check_calls, input_item
from agent.app_keys import THREAD_DELETED
from agent.domain import new_id, now
from agent.engine import items, prompt
from agent.errors import InvalidRequest, NotFound
from agent.store import db

routes = web.RouteTableDef()
MAX_ITEMS = 20


class ConversationCreate(Lenient):
    items: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_ITEMS)
    metadata: Metadata = None


class ConversationUpdate(Lenient):
    metadata: Metadata


class ItemsCreate(Lenient):
    items: list[dict[str, Any]] = Field(max_length=MAX_ITEMS)


def conversation_not_found(conversation_id: str) -> NotFound:
    return NotFound(f"Conversation with id '{conversation_id}' not found.", param="conversation_id")


def wire(thread: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": thread["id"],
        "object": "conversation",
        "created_at": thread["created_at"],
        "metadata": thread.get("metadata") or {},
    }


async def conversation_thread(request: web.Request, conversation_id: str) -> dict[str, Any]:
    thread = await store(request).get("thread", conversation_id, owner(request))
    if thread is None:
        raise conversation_not_found(conversation_id)
    return thread


async def conversation_items(request: web.Request, thread_id: str) -> list[dict[str, Any]]:
    """The conversation's items in order (oldest first)."""
    msgs, steps = await prompt.thread_rows(store(request), owner(request), thread_id)
    out: list[dict[str, Any]] = []
    for kind, obj in prompt.timeline(msgs, steps, None):
        out.extend([items.message_to_item(obj)] if kind == "message" else items.step_to_items(obj))
    return out


async def append_input(
    conn: AsyncConnection, who: str, thread_id: str, run_id: str, given: list[dict[str, Any]]
) -> str | None:
    """Items join the conversation as thread rows; returns the id of its last message (an anchor)."""
    existing = await db.children(conn, "message", who, thread_id)
    last = existing[-1]["id"] if existing else None
    steps: list[dict[str, Any]] | None = None
    for item in given:
        kind = item.get("type")
        if kind == "message":
            msg = items.item_to_message(thread_id, item)
            msg["id"] = new_id("msg_")
            item["_stored_id"] = msg["id"]
            await db.insert(conn, "message", msg, who, parent=thread_id, run_id=None)
            last = msg["id"]
        elif kind == "function_call":
            step = items.calls_step(thread_id, run_id, [item], last)
            await db.insert(conn, "step", step, who, parent=thread_id, run_id=run_id)
            steps = None
        elif kind == "function_call_output":
            steps = steps if steps is not None else await db.children(conn, "step", who, thread_id)
            for step in steps:
                for call in step["step_details"].get("tool_calls") or []:
                    if call["id"] == item["call_id"] and call["type"] == "function":
                        call["function"]["output"] = items.dumps_output(
                            item["output"]
                            if isinstance(item["output"], str)
                            else items.content_text(item["output"])
                        )
                        await db.update(conn, "step", step, who, thread_id)
    return last


async def _add_items(request: web.Request, thread_id: str, raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    given = [await input_item(request, item, f"items[{i}]") for i, item in enumerate(raw)]
    if any(i.get("type") == "item_reference" for i in given):
        raise InvalidRequest("Item references cannot be added to a conversation.", param="items")
    if any(i.get("type") == "function_call_output" for i in given):
        check_calls(await conversation_items(request, thread_id), given, strict_pairs=False)
    try:
        async with store(request).write() as conn:
            active = await db.active_run(conn, thread_id)
            if active is not None:
                raise InvalidRequest(f"Can't add items to {thread_id} while a run {active} is active.")
            await append_input(conn, owner(request), thread_id, new_id("batch_"), given)
    except IntegrityError:
        raise InvalidRequest(
            "An item with this id already exists in the conversation.", param="items"
        ) from None
    for item in given:
        if "_stored_id" in item:
            item["id"] = item.pop("_stored_id")
    return [items.render(i) for i in given]


@routes.post("/v1/conversations")
async def create(request: web.Request) -> web.Response:
    body = await parse(request, ConversationCreate)
    thread: dict[str, Any] = {
        "id": new_id("conv_"),
        "object": "thread",
        "created_at": now(),
        "metadata": body.metadata or {},
        "tool_resources": {},
    }
    given = [await input_item(request, item, f"items[{i}]") for i, item in enumerate(body.items or [])]
    if any(i.get("type") == "item_reference" for i in given):
        raise InvalidRequest("Item references cannot be added to a conversation.", param="items")
    check_calls([], given, strict_pairs=False)
    async with store(request).write() as conn:
        await db.insert(conn, "thread", thread, owner(request))
        await append_input(conn, owner(request), thread["id"], new_id("batch_"), given)
    return web.json_response(wire(thread))


@routes.get("/v1/conversations/{conversation_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(wire(await conversation_thread(request, request.match_info["conversation_id"])))


@routes.post("/v1/conversations/{conversation_id}")
async def update(request: web.Request) -> web.Response:
    thread = await conversation_thread(request, request.match_info["conversation_id"])
    body = await parse(request, ConversationUpdate)
    thread["metadata"] = body.metadata or {}
    await store(request).update("thread", thread, owner(request))
    return web.json_response(wire(thread))


@routes.delete("/v1/conversations/{conversation_id}")
async def delete(request: web.Request) -> web.Response:
    conversation_id = request.match_info["conversation_id"]
    async with store(request).write() as conn:
        if not await db.delete(conn, "thread", conversation_id, owner(request)):
            raise conversation_not_found(conversation_id)
        for kind in ("message", "run", "step"):
            await db.delete_children(conn, kind, conversation_id)
    for hook in request.app[THREAD_DELETED]:
        await hook(conversation_id)
    return web.json_response({"id": conversation_id, "object": "conversation.deleted", "deleted": True})


@routes.get("/v1/conversations/{conversation_id}/items")
async def list_items(request: web.Request) -> web.Response:
    thread = await conversation_thread(request, request.match_info["conversation_id"])
    return page_of(request, await conversation_items(request, thread["id"]))


@routes.post("/v1/conversations/{conversation_id}/items")
async def create_items(request: web.Request) -> web.Response:
    thread = await conversation_thread(request, request.match_info["conversation_id"])
    body = await parse(request, ItemsCreate)
    created = await _add_items(request, thread["id"], body.items)
    return web.json_response(
        {
            "object": "list",
            "data": created,
            "first_id": created[0]["id"] if created else None,
            "last_id": created[-1]["id"] if created else None,
            "has_more": False,
        }
    )


async def _item(request: web.Request) -> tuple[dict[str, Any], dict[str, Any]]:
    m = request.match_info
    thread = await conversation_thread(request, m["conversation_id"])
    for item in await conversation_items(request, thread["id"]):
        if item["id"] == m["item_id"]:
            return thread, item
    raise NotFound(f"Item with id '{m['item_id']}' not found.", param="item_id")


@routes.get("/v1/conversations/{conversation_id}/items/{item_id}")
async def retrieve_item(request: web.Request) -> web.Response:
    return web.json_response((await _item(request))[1])


@routes.delete("/v1/conversations/{conversation_id}/items/{item_id}")
async def delete_item(request: web.Request) -> web.Response:
    thread, item = await _item(request)
    who, thread_id = owner(request), thread["id"]
    async with store(request).write() as conn:
        if item["type"] == "message":
            await db.delete(conn, "message", item["id"], who, thread_id)
        else:
            for step in await db.children(conn, "step", who, thread_id):
                calls = step["step_details"].get("tool_calls") or []
                match = [c for c in calls if c["id"] == item["call_id"]]
                if not match:
                    continue
                if item["type"] == "function_call_output":
                    match[0]["function"]["output"] = None
                else:
                    step["step_details"]["tool_calls"] = [c for c in calls if c["id"] != item["call_id"]]
                await db.update(conn, "step", step, who, thread_id)
    return web.json_response(wire(thread))
