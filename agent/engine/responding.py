"""The Responses adapter: the loop's events rendered as output items and ``response.*`` events.

A response is stored as a row of the run table (``object: "response"``), so it shares the runs'
leases, resume after a restart and the thread lock of its conversation. Every event carries a
``sequence_number`` from 0 and is kept in the response's event log (``_events``), which a
``GET …?stream=true`` replays. A response with ``store: false`` writes nothing of its own.
"""

from __future__ import annotations

from typing import Any

from agent.domain import RUN_LEG_END, now
from agent.engine import hosted_items, items, prompt
from agent.engine.bus import EventBus
from agent.engine.events import (
    Event,
    Final,
    Incomplete,
    MessageDone,
    Outcome,
    RunAgain,
    RunSpec,
    Status,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallOutput,
    ToolCallStarted,
    Transcript,
    TurnUsage,
)
from agent.llm import Usage
from agent.store import Store, db
from agent.tools import ToolContext
from agent.tools.hosted import spec_tool

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed", "_end"})
"""After these a stream closes (``_end``: cancelled; never sent, there is no ``response.cancelled``)."""
ENGINE_ONLY = ("_events", "_input", "_after")


def render(resp: dict[str, Any]) -> dict[str, Any]:
    """The Response object as clients see it."""
    out = {k: v for k, v in resp.items() if not k.startswith("_")}
    out["output"] = [items.render(i) for i in resp.get("output") or []]
    if out.get("status") == "cancelling":
        out["status"] = "cancelled"
    return out


def response_spec(resp: dict[str, Any]) -> RunSpec:
    tools: list[dict[str, Any]] = []
    for tool in resp.get("tools") or []:
        if tool["type"] == "function":
            fn = {
                k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None
            }
            tools.append({"type": "function", "function": fn})
        else:
            tools.append(spec_tool(tool, resp))
    choice = resp.get("tool_choice") or "auto"
    if isinstance(choice, dict):
        if choice.get("type") == "function":
            choice = {"type": "function", "function": {"name": choice["name"]}}
        elif choice.get("type") == "allowed_tools":
            choice = choice.get("mode") or "auto"
    fmt = ((resp.get("text") or {}).get("format")) or {"type": "text"}
    response_format: dict[str, Any] | None = None
    if fmt["type"] == "json_object":
        response_format = {"type": "json_object"}
    elif fmt["type"] == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if fmt.get(k) is not None}
        response_format = {"type": "json_schema", "json_schema": schema}
    return RunSpec(
        model=resp["model"],
        instructions=resp.get("instructions") or "",
        tools=tools,
        tool_choice=choice,
        parallel_tool_calls=resp.get("parallel_tool_calls", True),
        temperature=resp.get("temperature"),
        top_p=resp.get("top_p"),
        max_completion_tokens=resp.get("max_output_tokens"),
        response_format=response_format,
        truncation={"type": resp.get("truncation") or "disabled"},
        max_tool_calls=resp.get("max_tool_calls"),
    )


def wire_usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


async def chain_items(store: Store, owner: str, response_id: str | None) -> list[dict[str, Any]]:
    """Everything the model saw and said up to and including ``response_id`` (a previous_response_id
    chain: each response's inherited items, input and output)."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    while response_id and response_id not in seen:
        seen.add(response_id)
        prev = await store.get("run", response_id, owner)
        if prev is None or prev.get("object") != "response":
            break
        chain.append(prev)
        response_id = prev.get("previous_response_id")
    out: list[dict[str, Any]] = []
    for prev in reversed(chain):
        out.extend(prev.get("_input") or [])
        out.extend(prev.get("output") or [])
    return out


class ResponseRecorder:
    """Holds the response being executed and writes every change through to the store and the bus."""

    def __init__(self, store: Store, bus: EventBus, run: dict[str, Any], owner: str) -> None:
        self.store, self.bus, self.run, self.owner = store, bus, run, owner
        conversation = run.get("conversation")
        self.conversation: str | None = conversation["id"] if conversation else None
        self.thread_id: str = self.conversation or run["id"]  # the sandbox session's key
        self.spec = response_spec(run)
        self.persist: bool = bool(run.get("store", True))
        self.events: list[dict[str, Any]] = run.setdefault("_events", [])
        self.ctx: ToolContext | None = None
        self._base: list[dict[str, Any]] | None = None
        self._trail: list[dict[str, Any]] = []  # this leg's items as the model reads them
        self._message: dict[str, Any] | None = None  # the message item being written
        self._calls: dict[int, dict[str, Any]] = {}  # the completion's call index → item
        self._usage = Usage()

    # --- events, persisted then published -------------------------------------------------------------
    def event(self, kind: str, **payload: Any) -> dict[str, Any]:
        data = {"type": kind, **payload, "sequence_number": len(self.events)}
        self.events.append(data)
        return data

    def publish(self, kind: str, **payload: Any) -> None:
        self.bus.publish(self.run["id"], kind, self.event(kind, **payload))

    def lifecycle(self, kind: str) -> None:
        self.publish(kind, response=render(self.run))

    async def save(self, conn: Any = None) -> None:
        if not self.persist:
            return
        lease = {"lease": None, "lease_until": None} if self.run["status"] in RUN_LEG_END else {}
        if conn is not None:
            await db.update(conn, "run", self.run, self.owner, self.conversation, **lease)
            return
        await self.store.update("run", self.run, self.owner, self.conversation, **lease)

    def _index(self, item: dict[str, Any]) -> int:
        return next(i for i, o in enumerate(self.run["output"]) if o is item)

    # --- the loop's sink ----------------------------------------------------------------------------
    async def transcript(self) -> Transcript:
        if self._base is None:
            if self.conversation:  # the conversation already holds this response's input
                chat, _ = await prompt.thread_messages(
                    self.store, self.owner, self.conversation, self.run["id"]
                )
                self._base = chat
            else:
                prior = await chain_items(self.store, self.owner, self.run.get("previous_response_id"))
                self._base = [*prior, *self.run.get("_input", [])]
        if self.conversation:
            return Transcript([*self._base, *items.to_chat(self._trail)])
        return Transcript(items.to_chat([*self._base, *self._trail]))

    async def emit(self, event: Event) -> None:
        if isinstance(event, Status):
            self.run["status"] = event.status
            await self.save()
            self.lifecycle(f"response.{event.status}")
        elif isinstance(event, TextDelta):
            item = self._open_message()
            part = item["content"][-1]
            part["text"] += event.text
            i = self._index(item)
            if event.text:
                self.publish(
                    "response.output_text.delta",
                    item_id=item["id"], output_index=i, content_index=0, delta=event.text, logprobs=[],
                )  # fmt: skip
        elif isinstance(event, MessageDone):
            await self._close_message("completed")
        elif isinstance(event, ToolCallStarted):
            if event.tool is None:
                self._add_call(event.index, event.call_id, event.name)
            else:
                hosted_items.started(self, event)
        elif isinstance(event, ToolCallArgumentsDelta):
            call = self._calls.get(event.index)
            if call is not None and call["type"] == "function_call":
                call["arguments"] += event.delta
                self.publish(
                    "response.function_call_arguments.delta",
                    item_id=call["id"], output_index=self._index(call), delta=event.delta,
                )  # fmt: skip
            elif call is not None:
                hosted_items.delta(self, event)
        elif isinstance(event, ToolCallOutput):
            await self._call_output(event)
        elif isinstance(event, TurnUsage):
            self._usage = self._usage + event.usage

    async def end(self, outcome: Outcome) -> None:
        if isinstance(outcome, RunAgain):
            self._calls = {}
            await self.save()
            return
        if isinstance(outcome, Incomplete):
            await self._close_message("incomplete")
            self.run.update(status="incomplete", incomplete_details={"reason": "max_output_tokens"})
            kind = "response.incomplete"
        else:
            if isinstance(outcome, Final) and not any(o["type"] == "message" for o in self.run["output"]):
                self._open_message()  # an empty answer is still a message
            await self._close_message("completed")
            self.run.update(status="completed", completed_at=now())
        self.run["usage"] = wire_usage(self._usage)
        data = self.event(
            kind if isinstance(outcome, Incomplete) else "response.completed", response=render(self.run)
        )
        async with self.store.write() as conn:  # the response and its conversation's new items together
            if self.conversation:
                await append_outputs(conn, self.owner, self.conversation, self.run)
            await self.save(conn)
        self.bus.publish(self.run["id"], data["type"], data)

    # --- items ----------------------------------------------------------------------------------------
    def _open_message(self) -> dict[str, Any]:
        if self._message is None:
            item = items.message_item()
            self.run["output"].append(item)
            self._trail.append(item)
            i = self._index(item)
            self.publish("response.output_item.added", output_index=i, item=items.render(item))
            item["content"].append(items.output_text())
            self.publish(
                "response.content_part.added", item_id=item["id"], output_index=i, content_index=0,
                part=items.output_text(),
            )  # fmt: skip
            self._message = item
        return self._message

    async def _close_message(self, status: str) -> None:
        item, self._message = self._message, None
        if item is None:
            return
        item["status"] = status
        i, part = self._index(item), item["content"][0]
        ids = {"item_id": item["id"], "output_index": i, "content_index": 0}
        for annotation in hosted_items.annotate(self.ctx, part):
            part["annotations"].append(annotation)
            n = len(part["annotations"]) - 1
            self.publish(
                "response.output_text.annotation.added", **ids, annotation_index=n, annotation=annotation
            )
        self.publish("response.output_text.done", **ids, text=part["text"], logprobs=[])
        self.publish("response.content_part.done", **ids, part=part)
        self.publish("response.output_item.done", output_index=i, item=items.render(item))
        await self.save()

    def _add_call(self, index: int, call_id: str, name: str) -> dict[str, Any]:
        item = items.function_call_item(call_id, name)
        self._calls[index] = item
        self._trail.append(item)
        if name not in {t["function"]["name"] for t in self.spec.tools if t["type"] == "function"}:
            item["_hidden"] = True  # a name the model made up: it reads the error, the client sees nothing
            return item
        self.run["output"].append(item)
        self.publish("response.output_item.added", output_index=self._index(item), item=items.render(item))
        return item

    async def _call_output(self, event: ToolCallOutput) -> None:
        if event.tool is not None:  # a server-side tool: built-in tool items render here (slot)
            item = self._calls.get(event.index) or {}
            if item.get("type") in hosted_items.KINDS.values():
                item = hosted_items.finished(self, event, item)
            self._trail.append(server_call_item(event, item))
            return
        call = self._calls.get(event.index) or self._add_call(event.index, event.call_id, event.name)
        call["arguments"] = event.arguments
        if event.error is not None:
            call["_model_output"] = event.error
        if call.get("_hidden"):
            return
        i = self._index(call)
        call["status"] = "completed" if event.error is None else "incomplete"
        self.publish(
            "response.function_call_arguments.done",
            item_id=call["id"], output_index=i, name=call["name"], arguments=call["arguments"],
        )  # fmt: skip
        self.publish("response.output_item.done", output_index=i, item=items.render(call))

    # --- the executor's verbs -------------------------------------------------------------------------
    async def tool_context(self) -> ToolContext:
        self.ctx = ToolContext(
            owner=self.owner, thread_id=self.thread_id, run_id=self.run["id"], assistant={}, thread={},
            tools=self.spec.tools,
        )  # fmt: skip
        self.ctx.working = lambda tool: hosted_items.working(self, tool)
        return self.ctx

    async def stop_as(self, outcome: str, error: dict[str, str] | None = None) -> None:
        """The response ends early: ``failed`` (with an ``error`` event first), ``cancelled`` or ``expired``."""
        if outcome == "failed" and error is not None:
            code, message = error["code"], error["message"]
            kind = (
                "invalid_request_error"
                if code in ("context_length_exceeded", "invalid_prompt")
                else "server_error"
            )
            nested = {"type": kind, "code": code, "message": message, "param": None}
            self.publish("error", code=code, message=message, param=None, error=nested)
            self.run["error"] = {"code": code, "message": message}
        for item in self.run["output"]:
            if item.get("status") in ("in_progress", "interpreting", "searching") and outcome != "cancelled":
                item["status"] = "incomplete"
        self.run["status"] = "failed" if outcome in ("failed", "expired") else "cancelled"
        self.run["usage"] = wire_usage(self._usage) if self._usage.total_tokens else self.run.get("usage")
        data = (
            self.event("response.failed", response=render(self.run))
            if self.run["status"] == "failed"
            else None
        )
        await self.save()
        if data is not None:
            self.bus.publish(self.run["id"], data["type"], data)
        else:
            self.bus.publish(self.run["id"], "_end", {})

    async def discard_partial(self) -> None:
        """After a crash: take the response again from its start (its event log up to ``in_progress``)."""
        keep = [e for e in self.events if e["type"] in ("response.created", "response.queued")]
        self.events[:] = keep
        self.run["output"] = []


def server_call_item(event: ToolCallOutput, item: dict[str, Any]) -> dict[str, Any]:
    """What the model reads of a server-side call (built-in tool items are rendered by their tool)."""
    text = event.error or (event.output.text if event.output else "")
    call = {"name": event.name, "arguments": event.arguments}
    return {**item, "type": "function_call", "call_id": event.call_id, "_call": call, "_model_output": text}


async def append_outputs(conn: Any, owner: str, thread_id: str, resp: dict[str, Any]) -> None:
    """A finished response's output items join its conversation (as thread messages and steps)."""
    after = resp.get("_after")
    calls: list[dict[str, Any]] = []
    run_id = resp["id"]

    async def flush() -> None:
        if calls:
            step = items.calls_step(thread_id, run_id, list(calls), after)
            await db.insert(conn, "step", step, owner, parent=thread_id, run_id=run_id)
            calls.clear()

    for item in resp["output"]:
        if item["type"] == "message":
            await flush()
            msg = items.item_to_message(thread_id, items.render(item), run_id=run_id)
            msg["id"] = item["id"]
            step = items.message_step(thread_id, run_id, msg["id"])
            await db.insert(conn, "step", step, owner, parent=thread_id, run_id=run_id)
            await db.insert(conn, "message", msg, owner, parent=thread_id, run_id=run_id)
            after = msg["id"]
        elif item["type"] == "function_call" or item["type"] in hosted_items.KINDS.values():
            calls.append(item)
    await flush()
