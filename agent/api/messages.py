"""/v1/threads/{thread_id}/messages: create, list (``run_id`` filter), retrieve, modify, delete."""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.api.common import (
    Metadata,
    Request,
    deleted,
    get_or_404,
    list_query,
    now,
    owner,
    page_response,
    parse,
    store,
)
from agent.api.vector_stores import attach_thread_files
from agent.domain import new_message as new_message
from agent.domain import text_part
from agent.errors import InvalidRequest, not_found
from agent.store import db

routes = web.RouteTableDef()


class ImageFile(Request):
    file_id: str
    detail: Literal["auto", "low", "high"] = "auto"


class ImageURL(Request):
    url: str
    detail: Literal["auto", "low", "high"] = "auto"


class Part(Request):
    type: Literal["text", "image_file", "image_url"]
    text: str | None = None
    image_file: ImageFile | None = None
    image_url: ImageURL | None = None


class AttachmentTool(Request):
    type: Literal["code_interpreter", "file_search"]


class Attachment(Request):
    file_id: str
    tools: list[AttachmentTool] = Field(default_factory=list)


class MessageCreate(Request):
    role: Literal["user", "assistant"]
    content: str | list[Part] = Field(min_length=1)
    attachments: list[Attachment] | None = None
    metadata: Metadata = None


class MessageUpdate(Request):
    metadata: Metadata = None


def content_wire(content: str | list[Part]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [text_part(content)]
    out: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        value = getattr(part, part.type)
        if value is None:
            raise InvalidRequest(
                f"Missing required parameter: 'content[{i}].{part.type}'.", param=f"content[{i}].{part.type}"
            )
        out.append(
            text_part(value) if part.type == "text" else {"type": part.type, part.type: value.model_dump()}
        )
    return out


def from_request(thread_id: str, body: MessageCreate) -> dict[str, Any]:
    attachments = [a.model_dump() for a in body.attachments or []]
    return new_message(
        thread_id, body.role, content_wire(body.content), attachments=attachments, metadata=body.metadata
    )


async def insert(conn: AsyncConnection, msg: dict[str, Any], owner_: str) -> None:
    await db.insert(conn, "message", msg, owner_, parent=msg["thread_id"], run_id=msg["run_id"])


@routes.post("/v1/threads/{thread_id}/messages")
async def create(request: web.Request) -> web.Response:
    thread_id = request.match_info["thread_id"]
    await get_or_404(request, "thread", thread_id)
    body = await parse(request, MessageCreate)
    msg = from_request(thread_id, body)
    async with store(request).write() as conn:
        await db.lock(
            conn, "thread", thread_id
        )  # a run starting meanwhile waits, and so does the next message
        run_id = await db.active_run(conn, thread_id)
        if run_id is not None:
            raise InvalidRequest(f"Can't add messages to {thread_id} while a run {run_id} is active.")
        msg["created_at"] = now()  # in the order they are written
        await insert(conn, msg, owner(request))
    await attach_thread_files(request, thread_id, msg["attachments"])
    return web.json_response(msg)


@routes.get("/v1/threads/{thread_id}/messages")
async def list_(request: web.Request) -> web.Response:
    thread_id = request.match_info["thread_id"]
    await get_or_404(request, "thread", thread_id)
    q = list_query(request)
    where = {"run_id": request.query["run_id"]} if request.query.get("run_id") else None
    page = await store(request).list(
        "message", owner(request), parent=thread_id, where=where, **q.model_dump()
    )
    return page_response(page)


@routes.get("/v1/threads/{thread_id}/messages/{message_id}")
async def retrieve(request: web.Request) -> web.Response:
    m = request.match_info
    await get_or_404(request, "thread", m["thread_id"])
    return web.json_response(await get_or_404(request, "message", m["message_id"], m["thread_id"]))


@routes.post("/v1/threads/{thread_id}/messages/{message_id}")
async def modify(request: web.Request) -> web.Response:
    m = request.match_info
    await get_or_404(request, "thread", m["thread_id"])
    body = await parse(request, MessageUpdate)
    async with store(request).write() as conn:
        msg = await db.get(conn, "message", m["message_id"], owner(request), m["thread_id"])
        if msg is None:
            raise not_found("message", m["message_id"])
        if "metadata" in body.model_fields_set:
            msg["metadata"] = body.metadata or {}
        await db.update(conn, "message", msg, owner(request))
    return web.json_response(msg)


@routes.delete("/v1/threads/{thread_id}/messages/{message_id}")
async def delete(request: web.Request) -> web.Response:
    m = request.match_info
    await get_or_404(request, "thread", m["thread_id"])
    if not await store(request).delete("message", m["message_id"], owner(request), m["thread_id"]):
        raise not_found("message", m["message_id"])
    return deleted(m["message_id"], "thread.message.deleted")
