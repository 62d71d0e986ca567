"""/v1/responses: create (stream, background), retrieve (and resume its stream), delete, cancel,
input_items, input_tokens. The request's shapes are in `agent.api.response_input`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp_sse import sse_response
from sqlalchemy.exc import IntegrityError

from agent.api import hosted_tools
from agent.api.common import owner, page_of, parse, store
from agent.api.conversations import append_input, conversation_items, conversation_thread
from agent.api.response_input import (
    ResponseCreate,
    TokensCount,
    check_calls,
    check_tool_choice,
    normalize_input,
    resolve_references,
)
from agent.app_keys import BUS, EXECUTOR, SETTINGS
from agent.domain import RUN_TERMINAL, new_id, now
from agent.engine import items, prompt
from agent.engine.bus import SHUTDOWN
from agent.engine.responding import (
    TERMINAL_EVENTS,
    ResponseRecorder,
    chain_items,
    render,
    response_spec,
)
from agent.errors import InvalidRequest, NotFound
from agent.observe import GONE
from agent.store import db

routes = web.RouteTableDef()


def not_found(response_id: str) -> NotFound:
    return NotFound(f"Response with id '{response_id}' not found.", param="response_id")


async def get_response(request: web.Request, response_id: str) -> dict[str, Any]:
    resp = await store(request).get("run", response_id, owner(request))
    if resp is None or resp.get("object") != "response":
        raise not_found(response_id)
    return resp


def new_response(body: ResponseCreate, conversation: str | None) -> dict[str, Any]:
    text = body.text.model_dump(exclude_none=True) if body.text else {}
    text.setdefault("format", {"type": "text"})
    text.setdefault("verbosity", "medium")
    return {
        "id": new_id("resp_"),
        "object": "response",
        "created_at": now(),
        "status": "queued" if body.background else "in_progress",
        "background": bool(body.background),
        "completed_at": None,
        "error": None,
        "incomplete_details": None,
        "instructions": body.instructions,
        "model": body.model,
        "output": [],
        "parallel_tool_calls": True if body.parallel_tool_calls is None else body.parallel_tool_calls,
        "previous_response_id": body.previous_response_id,
        "conversation": {"id": conversation} if conversation else None,
        "max_output_tokens": body.max_output_tokens,
        "max_tool_calls": body.max_tool_calls,
        "metadata": body.metadata or {},
        "reasoning": body.reasoning or {"effort": None, "summary": None},
        "store": True if body.store is None else body.store,
        "temperature": 1.0 if body.temperature is None else body.temperature,
        "top_p": 1.0 if body.top_p is None else body.top_p,
        "top_logprobs": body.top_logprobs or 0,
        "text": text,
        "tool_choice": body.tool_choice or "auto",
        "tools": [t.wire(i) for i, t in enumerate(body.tools or [])],
        "truncation": body.truncation or "disabled",
        "usage": None,
        "user": body.user,
        "safety_identifier": body.safety_identifier,
        "prompt_cache_key": body.prompt_cache_key,
        "service_tier": body.service_tier or "default",
        "prompt": None,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
    }


@routes.post("/v1/responses")
async def create(request: web.Request) -> web.StreamResponse:
    body = await parse(request, ResponseCreate)
    if not body.model:
        raise InvalidRequest("Missing required parameter: 'model'.", param="model")
    if body.previous_response_id and body.conversation is not None:
        raise InvalidRequest(
            "Mutually exclusive parameters: Ensure you are only providing one of: 'previous_response_id' or "
            "'conversation'.",
            param="conversation",
            code="mutually_exclusive_parameters",
        )
    if body.background and body.store is False:
        raise InvalidRequest(
            "Background responses must be stored: 'background' requires 'store' true.", param="background"
        )
    check_tool_choice(body)
    who = owner(request)
    thread = await conversation_thread(request, body.conversation_id) if body.conversation_id else None
    prior: list[dict[str, Any]] = []
    if body.previous_response_id:
        prev = await store(request).get("run", body.previous_response_id, who)
        if prev is None or prev.get("object") != "response":
            raise InvalidRequest(
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        prior = await chain_items(store(request), who, body.previous_response_id)
    elif thread is not None:
        prior = await conversation_items(request, thread["id"])
    given = await normalize_input(request, body.input)
    given = await resolve_references(given, prior)
    check_calls(prior, given, strict_pairs=thread is None)
    resp = new_response(body, thread["id"] if thread else None)
    resp["_input"] = given
    await hosted_tools.prepare(request, resp, [*prior, *given], body.include)
    _check_context(request, resp, prior, given)
    rec = ResponseRecorder(store(request), request.app[BUS], resp, who)
    rec.event("response.created", response=render(resp))
    if body.background:
        rec.event("response.queued", response=render(resp))
    executor = request.app[EXECUTOR]
    if rec.persist or thread is not None:
        try:
            async with store(request).write() as conn:
                if thread is not None:
                    resp["_after"] = await append_input(conn, who, thread["id"], resp["id"], given)
                if rec.persist:
                    await db.insert(
                        conn,
                        "run",
                        resp,
                        who,
                        parent=rec.conversation,
                        run_id="response",
                        **executor.lease(resp["id"]),
                    )
        except IntegrityError:  # the conversation's lock: one active run or response at a time
            active = await store(request).active_run(thread["id"]) if thread else None
            raise InvalidRequest(
                f"Conversation {rec.thread_id} already has an active response {active}."
            ) from None
    bus = request.app[BUS]
    queue = bus.subscribe(resp["id"])
    backlog = list(rec.events)
    executor.launch(rec)
    if body.stream:
        return await _stream(request, resp["id"], backlog, queue)
    if body.background:
        bus.unsubscribe(resp["id"], queue)
        return web.json_response(render(resp))
    bus.unsubscribe(resp["id"], queue)
    await executor.wait(resp["id"])  # the client leaving does not stop the response
    return web.json_response(render(rec.run))


def _check_context(
    request: web.Request, resp: dict[str, Any], prior: list[dict[str, Any]], given: list[dict[str, Any]]
) -> None:
    if resp["truncation"] != "disabled":
        return
    messages = prompt.build(response_spec(resp), items.to_chat([*prior, *given]), 1 << 30)
    if prompt.estimate_tokens(messages) > request.app[SETTINGS].model_context:
        raise InvalidRequest(
            "Your input exceeds the context window of this model. Please adjust your input and try again.",
            param="input",
            code="context_length_exceeded",
        )


async def _stream(
    request: web.Request,
    response_id: str,
    backlog: list[dict[str, Any]],
    queue: asyncio.Queue[Any] | None,
    after: int = -1,
) -> web.StreamResponse:
    """The response's events as SSE (no ``[DONE]``: the stream closes after the terminal event)."""
    bus = request.app[BUS]
    opened: web.StreamResponse | None = None
    try:
        async with sse_response(
            request, allow_all_methods=True, ping_interval=request.app[SETTINGS].sse_keepalive
        ) as sse:
            opened = sse
            last = after
            for data in backlog:
                if data["sequence_number"] > last:
                    await sse.send(_dumps(data), event=data["type"])
                    last = data["sequence_number"]
                if data["type"] in TERMINAL_EVENTS:
                    return sse
            while queue is not None:
                event = await queue.get()
                if event.name == "_end":
                    break
                if event is SHUTDOWN:  # the service stops; the response resumes at the next start
                    error = SHUTDOWN.data["error"]
                    await sse.send(
                        _dumps({**error, "type": "error", "error": error, "sequence_number": last + 1})
                    )
                    break
                if event.data["sequence_number"] > last:
                    await sse.send(_dumps(event.data), event=event.name)
                    last = event.data["sequence_number"]
                if event.name in TERMINAL_EVENTS:
                    break
        return sse
    except ConnectionResetError:  # the client left; the response goes on
        request[GONE] = True
        return opened if opened is not None else web.Response(status=499)
    finally:
        if queue is not None:
            bus.unsubscribe(response_id, queue)


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data)


@routes.get("/v1/responses/{response_id}")
async def retrieve(request: web.Request) -> web.StreamResponse:
    response_id = request.match_info["response_id"]
    resp = await get_response(request, response_id)
    if request.query.get("stream", "false").lower() != "true":
        return web.json_response(render(hosted_tools.with_include(resp, request)))
    if not resp.get("background"):
        raise InvalidRequest(
            "Only responses created with background=true can be streamed again.", param="stream"
        )
    try:
        after = int(request.query.get("starting_after", "-1"))
    except ValueError:
        raise InvalidRequest(
            "Invalid 'starting_after': expected an integer.", param="starting_after"
        ) from None
    live = request.app[EXECUTOR].live(response_id)
    if isinstance(live, ResponseRecorder):  # taken together, so no event falls between log and queue
        backlog, queue = list(live.events), request.app[BUS].subscribe(response_id)
    elif resp["status"] in RUN_TERMINAL:
        backlog, queue = resp.get("_events") or [], None
    else:
        backlog, queue = resp.get("_events") or [], request.app[BUS].subscribe(response_id)
    return await _stream(request, response_id, backlog, queue, after)


@routes.delete("/v1/responses/{response_id}")
async def delete(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    resp = await get_response(request, response_id)
    executor = request.app[EXECUTOR]
    if resp["status"] not in RUN_TERMINAL:
        await executor.stop(
            executor.live(response_id) or executor.recorder(resp, owner(request)), "cancelled"
        )
        await executor.wait(response_id)
    await store(request).delete("run", response_id, owner(request))
    return web.json_response({"id": response_id, "object": "response", "deleted": True})


@routes.post("/v1/responses/{response_id}/cancel")
async def cancel(request: web.Request) -> web.Response:
    response_id = request.match_info["response_id"]
    resp = await get_response(request, response_id)
    if not resp.get("background"):
        raise InvalidRequest("Only responses created with background=true can be cancelled.")
    if resp["status"] in RUN_TERMINAL:
        return web.json_response(render(resp))
    who, executor = owner(request), request.app[EXECUTOR]
    async with store(request).write() as conn:
        row = await db.get(conn, "run", response_id, who)
        if row is None:
            raise not_found(response_id)
        if row["status"] not in RUN_TERMINAL:
            row["status"] = "cancelling"
            await db.update(conn, "run", row, who)
    await executor.stop(executor.live(response_id) or executor.recorder(row, who), "cancelled")
    await executor.wait(response_id)
    return web.json_response(render(await get_response(request, response_id)))


@routes.get("/v1/responses/{response_id}/input_items")
async def input_items(request: web.Request) -> web.Response:
    resp = await get_response(request, request.match_info["response_id"])
    return page_of(request, [items.render(i) for i in resp.get("_input") or []])


@routes.post("/v1/responses/input_tokens")
async def input_tokens(request: web.Request) -> web.Response:
    body = await parse(request, TokensCount)
    who = owner(request)
    prior: list[dict[str, Any]] = []
    if body.previous_response_id:
        if await store(request).get("run", body.previous_response_id, who) is None:
            raise InvalidRequest(
                f"Previous response with id '{body.previous_response_id}' not found.",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        prior = await chain_items(store(request), who, body.previous_response_id)
    elif body.conversation_id:
        thread = await conversation_thread(request, body.conversation_id)
        prior = await conversation_items(request, thread["id"])
    given = await normalize_input(request, body.input)
    chat = items.to_chat([*prior, *given])
    system = [{"role": "system", "content": body.instructions}] if body.instructions else []
    tools = prompt.estimate_tokens([{"role": "system", "content": str(body.tools)}]) if body.tools else 0
    count = prompt.estimate_tokens(system + chat) + tools if (system or chat) else 0
    return web.json_response({"object": "response.input_tokens", "input_tokens": count})
