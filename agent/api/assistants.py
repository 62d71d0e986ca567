"""/v1/assistants: create, list, retrieve, modify, delete."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import Field

from agent.api.common import (
    Metadata,
    Request,
    ResponseFormat,
    Tool,
    ToolResources,
    deleted,
    get_or_404,
    list_query,
    new_id,
    now,
    owner,
    page_response,
    parse,
    store,
    wire,
)
from agent.api.vector_stores import StoreWrites, helper_stores
from agent.errors import not_found
from agent.store import db

routes = web.RouteTableDef()


class AssistantUpdate(Request):
    model: str | None = None
    name: str | None = Field(default=None, max_length=256)
    description: str | None = Field(default=None, max_length=512)
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_resources: ToolResources | None = None
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    response_format: ResponseFormat = None
    reasoning_effort: str | None = None


class AssistantCreate(AssistantUpdate):
    model: str


def tool_resources_wire(
    res: ToolResources | None, vector_store_ids: list[str] | None = None
) -> dict[str, Any]:
    """Response shape of ``tool_resources``; the ``vector_stores`` helper becomes ``vector_store_ids``."""
    if res is None:
        return {}
    out: dict[str, Any] = {}
    if res.code_interpreter is not None:
        out["code_interpreter"] = {"file_ids": res.code_interpreter.file_ids}
    if res.file_search is not None:
        ids = vector_store_ids if vector_store_ids is not None else res.file_search.vector_store_ids or []
        out["file_search"] = {"vector_store_ids": ids}
    return out


def _apply(obj: dict[str, Any], body: AssistantUpdate) -> dict[str, Any]:
    given = body.model_fields_set
    for field in ("model", "name", "description", "instructions", "temperature", "top_p", "response_format"):
        if field in given:
            value = getattr(body, field)
            if value is None and field in ("model", "temperature", "top_p", "response_format"):
                continue  # null means "keep the default"
            obj[field] = wire(value)
    if "tools" in given:
        obj["tools"] = [t.wire() for t in body.tools or []]
    if "metadata" in given:
        obj["metadata"] = body.metadata or {}
    return obj


@routes.post("/v1/assistants")
async def create(request: web.Request) -> web.Response:
    body = await parse(request, AssistantCreate)
    obj: dict[str, Any] = {
        "id": new_id("asst_"),
        "object": "assistant",
        "created_at": now(),
        "name": None,
        "description": None,
        "model": body.model,
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    _apply(obj, body)
    writes, who = StoreWrites(), owner(request)
    obj["tool_resources"] = tool_resources_wire(
        body.tool_resources, helper_stores(body.tool_resources, writes)
    )
    async with store(request).write() as conn:  # the assistant and its helper stores, or nothing
        await writes.write(conn, who)
        await db.insert(conn, "assistant", obj, who)
    writes.ingest(request, who)
    return web.json_response(obj)


@routes.get("/v1/assistants")
async def list_(request: web.Request) -> web.Response:
    q = list_query(request)
    page = await store(request).list("assistant", owner(request), **q.model_dump())
    return page_response(page)


@routes.get("/v1/assistants/{assistant_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(await get_or_404(request, "assistant", request.match_info["assistant_id"]))


@routes.post("/v1/assistants/{assistant_id}")
async def modify(request: web.Request) -> web.Response:
    obj = await get_or_404(request, "assistant", request.match_info["assistant_id"])
    body = await parse(request, AssistantUpdate)
    _apply(obj, body)
    if "tool_resources" in body.model_fields_set:
        obj["tool_resources"] = tool_resources_wire(body.tool_resources)
    return web.json_response(await store(request).update("assistant", obj, owner(request)))


@routes.delete("/v1/assistants/{assistant_id}")
async def delete(request: web.Request) -> web.Response:
    assistant_id = request.match_info["assistant_id"]
    if not await store(request).delete("assistant", assistant_id, owner(request)):
        raise not_found("assistant", assistant_id)
    return deleted(assistant_id, "assistant.deleted")
