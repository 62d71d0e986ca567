"""/v1/threads/{thread_id}/runs and /v1/threads/runs: create, list, retrieve, modify, cancel, tool outputs."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.api import messages
from agent.api.common import (
    Metadata,
    Request,
    ResponseFormat,
    Tool,
    ToolResources,
    get_or_404,
    list_query,
    new_id,
    now,
    owner,
    page_response,
    parse,
    store,
)
from agent.api.messages import MessageCreate
from agent.api.steps import include_content
from agent.api.stream import stream_run
from agent.api.threads import ThreadCreate, create_thread
from agent.api.vector_stores import attach_thread_files
from agent.app_keys import BUS, EXECUTOR, SETTINGS
from agent.engine.records import TERMINAL, RunRecorder
from agent.errors import InvalidRequest, not_found
from agent.store import db

routes = web.RouteTableDef()
POLL_HEADERS = {"openai-poll-after-ms": "100"}


class Truncation(Request):
    type: Literal["auto", "last_messages"]
    last_messages: int | None = Field(default=None, ge=1)


class RunOptions(Request):
    assistant_id: str
    model: str | None = None
    instructions: str | None = Field(default=None, max_length=256_000)
    tools: list[Tool] | None = Field(default=None, max_length=20)
    metadata: Metadata = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    stream: bool | None = None
    max_prompt_tokens: int | None = Field(default=None, ge=256)
    max_completion_tokens: int | None = Field(default=None, ge=256)
    truncation_strategy: Truncation | None = None
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat = None


class RunCreate(RunOptions):
    additional_instructions: str | None = None
    additional_messages: list[MessageCreate] | None = None
    reasoning_effort: str | None = None


class ThreadAndRun(RunOptions):
    thread: ThreadCreate | None = None
    tool_resources: ToolResources | None = None


class RunUpdate(Request):
    metadata: Metadata = None


class ToolOutputIn(Request):
    tool_call_id: str
    output: str


class SubmitToolOutputs(Request):
    tool_outputs: list[ToolOutputIn]
    stream: bool | None = None


def new_run(
    request: web.Request, thread_id: str, assistant: dict[str, Any], body: RunOptions
) -> dict[str, Any]:
    instructions = body.instructions if body.instructions is not None else assistant.get("instructions") or ""
    extra = getattr(body, "additional_instructions", None)
    if extra:
        instructions = f"{instructions}\n\n{extra}" if instructions else extra
    created = now()

    def pick(field: str, default: Any) -> Any:
        value = getattr(body, field)
        return (
            value if value is not None else assistant.get(field, default) if field in assistant else default
        )

    tools = [t.wire() for t in body.tools] if body.tools is not None else assistant["tools"]
    _check_tool_choice(body.tool_choice, tools)
    return {
        "id": new_id("run_"),
        "object": "thread.run",
        "created_at": created,
        "thread_id": thread_id,
        "assistant_id": assistant["id"],
        "status": "queued",
        "required_action": None,
        "last_error": None,
        "expires_at": created + request.app[SETTINGS].run_timeout,
        "started_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "incomplete_details": None,
        "model": body.model or assistant["model"],
        "instructions": instructions,
        "tools": tools,
        "metadata": body.metadata or {},
        "usage": None,
        "temperature": pick("temperature", 1.0),
        "top_p": pick("top_p", 1.0),
        "max_prompt_tokens": body.max_prompt_tokens,
        "max_completion_tokens": body.max_completion_tokens,
        "truncation_strategy": body.truncation_strategy.model_dump()
        if body.truncation_strategy
        else {"type": "auto", "last_messages": None},
        "tool_choice": body.tool_choice or "auto",
        "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        "response_format": pick("response_format", "auto"),
    }


def _check_tool_choice(choice: Any, tools: list[dict[str, Any]]) -> None:
    """A forced tool must be one the run offers (the backends would silently ignore it)."""
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    if kind == "function":
        name = (choice.get("function") or {}).get("name")
        offered = {t["function"]["name"] for t in tools if t["type"] == "function"}
        offered |= {t["type"] for t in tools if t["type"] != "function"}
    else:
        name, offered = kind, {t["type"] for t in tools}
    if not name or name not in offered:
        raise InvalidRequest(f"Tool choice '{name}' not found in 'tools' parameter.", param="tool_choice")


def _created(run: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [("thread.run.created", run), ("thread.run.queued", run)]


async def _assistant(request: web.Request, assistant_id: str) -> dict[str, Any]:
    return await get_or_404(request, "assistant", assistant_id)


async def _start(
    request: web.Request,
    run: dict[str, Any],
    stream: bool,
    events: list[tuple[str, dict[str, Any]]],
    assistant: dict[str, Any] | None = None,
    thread: dict[str, Any] | None = None,
    first: list[tuple[str, dict[str, Any]]] | None = None,
) -> web.StreamResponse:
    """Publish how the leg begins and hand the run to the executor; answer JSON or the event stream
    (``first``: events sent to this stream only, before the run's own)."""
    bus = request.app[BUS]
    queue = bus.subscribe(run["id"]) if stream else None
    rec = RunRecorder(store(request), bus, dict(run), owner(request))
    rec.assistant, rec.thread = assistant, thread
    rec.include_content = include_content(request)
    for name, data in events:
        rec.publish(name, data)
    request.app[EXECUTOR].launch(rec)
    if queue is None:
        return web.json_response(run, headers=POLL_HEADERS)
    return await stream_run(request, bus, run["id"], queue, first)


@routes.post("/v1/threads/{thread_id}/runs")
async def create(request: web.Request) -> web.StreamResponse:
    thread_id = request.match_info["thread_id"]
    body = await parse(request, RunCreate)
    thread, assistant = await asyncio.gather(
        get_or_404(request, "thread", thread_id), _assistant(request, body.assistant_id)
    )
    run = new_run(request, thread_id, assistant, body)
    extra = [messages.from_request(thread_id, m) for m in body.additional_messages or []]
    try:
        async with store(request).write() as conn:
            await db.lock(conn, "thread", thread_id)  # a message being added meanwhile goes first
            for msg in extra:
                await messages.insert(conn, msg, owner(request))
            lease = request.app[EXECUTOR].lease(run["id"], bool(body.stream))
            await db.insert(conn, "run", run, owner(request), parent=thread_id, **lease)
    except IntegrityError:  # the one-active-run-per-thread index
        active = await store(request).active_run(thread_id)
        raise InvalidRequest(f"Thread {thread_id} already has an active run {active}.") from None
    for msg in extra:
        await attach_thread_files(request, thread_id, msg["attachments"])
    if any(msg["attachments"] for msg in extra):  # its vector store may have just been made
        thread = await get_or_404(request, "thread", thread_id)
    return await _start(request, run, bool(body.stream), _created(run), assistant, thread)


@routes.post("/v1/threads/runs")
async def create_and_run(request: web.Request) -> web.StreamResponse:
    body = await parse(request, ThreadAndRun)
    assistant = await _assistant(request, body.assistant_id)
    thread_body = body.thread or ThreadCreate()
    if body.tool_resources is not None and thread_body.tool_resources is None:
        thread_body.tool_resources = body.tool_resources
    thread = await create_thread(request, thread_body)
    run = new_run(request, thread["id"], assistant, body)
    lease = request.app[EXECUTOR].lease(run["id"], bool(body.stream))
    await store(request).insert("run", run, owner(request), parent=thread["id"], **lease)
    return await _start(
        request, run, bool(body.stream), _created(run), assistant, thread, [("thread.created", thread)]
    )


@routes.get("/v1/threads/{thread_id}/runs")
async def list_(request: web.Request) -> web.Response:
    thread_id = request.match_info["thread_id"]
    await get_or_404(request, "thread", thread_id)
    q = list_query(request)
    where = {"run_id": None}  # the conversation's responses share the table, not the list
    return page_response(
        await store(request).list("run", owner(request), parent=thread_id, where=where, **q.model_dump())
    )


async def _run(request: web.Request) -> dict[str, Any]:
    m = request.match_info
    await get_or_404(request, "thread", m["thread_id"])
    run = await get_or_404(request, "run", m["run_id"], m["thread_id"])
    if run.get("object") == "response":
        raise not_found("run", m["run_id"])
    return run


@routes.get("/v1/threads/{thread_id}/runs/{run_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(await _run(request), headers=POLL_HEADERS)


@routes.post("/v1/threads/{thread_id}/runs/{run_id}")
async def modify(request: web.Request) -> web.Response:
    await _run(request)
    body = await parse(request, RunUpdate)
    m = request.match_info
    async with store(request).write() as conn:
        run = await db.get(conn, "run", m["run_id"], owner(request), m["thread_id"], lock=True)
        if run is None:
            raise not_found("run", m["run_id"])
        if "metadata" in body.model_fields_set:
            run["metadata"] = body.metadata or {}
        await db.update(conn, "run", run, owner(request), m["thread_id"])
    return web.json_response(run, headers=POLL_HEADERS)


@routes.post("/v1/threads/{thread_id}/runs/{run_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    await _run(request)
    m = request.match_info
    async with store(request).write() as conn:
        # the row stays locked until the transition is written, and the transition is conditional:
        # a cancel and the leg's own writes (or a second cancel, through another replica) never interleave
        run = await db.get(conn, "run", m["run_id"], owner(request), m["thread_id"], lock=True)
        if run is None:
            raise not_found("run", m["run_id"])
        was = run["status"]
        if was in (*TERMINAL, "cancelling"):
            raise InvalidRequest(f"Cannot cancel run with status '{was}'.")
        run["status"] = "cancelling"
        if not await db.update(conn, "run", run, owner(request), m["thread_id"], expect_status=was):
            raise InvalidRequest(f"Cannot cancel run with status '{was}': it changed meanwhile.")
    rec = RunRecorder(store(request), request.app[BUS], dict(run), owner(request))
    rec.publish("thread.run.cancelling", run)
    await request.app[EXECUTOR].stop(rec, "cancelled")
    return web.json_response(run, headers=POLL_HEADERS)


@routes.post("/v1/threads/{thread_id}/runs/{run_id}/submit_tool_outputs")
async def submit_tool_outputs(request: web.Request) -> web.StreamResponse:
    await _run(request)
    body = await parse(request, SubmitToolOutputs)
    m, who = request.match_info, owner(request)
    async with store(request).write() as conn:
        run = await db.get(conn, "run", m["run_id"], who, m["thread_id"], lock=True)  # see cancel
        if run is None:
            raise not_found("run", m["run_id"])
        if run["status"] != "requires_action":
            raise InvalidRequest(f'Runs in status "{run["status"]}" do not accept tool outputs.')
        expected = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
        given = {o.tool_call_id: o.output for o in body.tool_outputs}
        if sorted(given) != sorted(expected) or len(given) != len(body.tool_outputs):
            raise InvalidRequest(
                f"Expected tool outputs for call_ids {expected}, got {[o.tool_call_id for o in body.tool_outputs]}.",
                param="tool_outputs",
            )
        step = await _pending_step(conn, who, run, expected[0])
        for call in step["step_details"]["tool_calls"]:
            if call["id"] in given:
                call["function"]["output"] = given[call["id"]]
        step.update(status="completed", completed_at=now())
        await db.update(conn, "step", step, who, m["thread_id"])
        run.update(status="queued", required_action=None)
        lease = request.app[EXECUTOR].lease(run["id"], bool(body.stream))
        if not await db.update(
            conn, "run", run, who, m["thread_id"], expect_status="requires_action", **lease
        ):  # only one of two concurrent submissions continues the run
            raise InvalidRequest('Runs in status "queued" do not accept tool outputs.')
    events = [("thread.run.step.completed", step), ("thread.run.queued", run)]
    return await _start(request, run, bool(body.stream), events)


async def _pending_step(conn: AsyncConnection, who: str, run: dict[str, Any], call_id: str) -> dict[str, Any]:
    for step in await db.children(conn, "step", who, run["thread_id"], run_id=run["id"]):
        calls = step["step_details"].get("tool_calls") or []
        if step["status"] == "in_progress" and any(c["id"] == call_id for c in calls):
            return step
    raise InvalidRequest("The run's pending tool calls could not be found.")
