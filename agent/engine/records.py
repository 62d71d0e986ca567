"""The Assistants adapter: the loop's events rendered as run transitions, steps, messages and
``thread.*`` events, persisted then published.

This is where the engine meets the Assistants wire shapes; the loop knows none of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from agent.domain import RUN_LEG_END, RUN_TERMINAL, new_id, new_message, now
from agent.engine import prompt
from agent.engine.bus import EventBus
from agent.engine.events import (
    Event,
    Final,
    Incomplete,
    MessageDone,
    Outcome,
    RequiresAction,
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
from agent.tools import ServerTool, ToolContext

CITATION = re.compile(r"【(?:\d+:)?(\d+)†[^】]*】")
SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s)\]\"'<>]+")

TERMINAL = RUN_TERMINAL
LEG_END = RUN_LEG_END


def add_usage(total: dict[str, int] | None, usage: dict[str, int] | None) -> dict[str, int] | None:
    if usage is None:
        return total
    if total is None:
        return dict(usage)
    return {
        k: total.get(k, 0) + usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    }


class RunRecorder:
    """Holds the run being executed and writes every change through to the store and the bus."""

    def __init__(self, store: Store, bus: EventBus, run: dict[str, Any], owner: str) -> None:
        self.store, self.bus, self.run, self.owner = store, bus, run, owner
        self.thread_id: str = run["thread_id"]
        self.message: dict[str, Any] | None = None  # the assistant message being written
        self.message_step: dict[str, Any] | None = None
        self.tool_step: dict[str, Any] | None = None  # the tool_calls step being written
        self.ctx: ToolContext | None = None  # what this leg's tools produced (citations, files)
        self.include_content = False  # include[] asked for file_search result content
        self.assistant: dict[str, Any] | None = None  # already loaded by the API handler, if any
        self.thread: dict[str, Any] | None = None
        self._shown_images = 0
        self.spec = run_spec(run)
        self._started: asyncio.Task[None] | None = None
        self._called_before: bool | None = None

    # --- the loop's sink ------------------------------------------------------------------------
    async def transcript(self) -> Transcript:
        """The thread as chat messages (each run's tool calls and outputs where that run spoke)."""
        reading = prompt.thread_messages(self.store, self.owner, self.thread_id, self.run["id"])
        if self._started is not None:  # the in_progress transition is written while the thread is read
            (history, stored), _ = await asyncio.gather(reading, self._started)
            self._started = None
        else:
            history, stored = await reading
        if self._called_before is None:
            forced = self.spec.tool_choice not in (None, "auto", "none")
            self._called_before = not forced or await self._tool_steps_before()
        attached = attached_for_code(stored)
        if self.ctx is not None:
            self.ctx.attached = attached
        note = await files_note(self.store, self.ctx) if _has_code(self.spec.tools) else ""
        return Transcript(history, note, self._called_before, attached)

    async def emit(self, event: Event) -> None:
        if isinstance(event, Status):
            self._started = asyncio.create_task(self.set_status(event.status))
        elif isinstance(event, TextDelta):
            await self.text_delta(event.text)
        elif isinstance(event, MessageDone):
            pass  # closed with the next step or the outcome, in the same transaction
        elif isinstance(event, ToolCallStarted):
            step = await self.tool_step_open()
            record = _start_record(event.call_id, event.name, event.tool)
            step["step_details"]["tool_calls"].append(record)
            self.step_delta(step, {"index": event.index, **record})
        elif isinstance(event, ToolCallArgumentsDelta):
            self._arguments_delta(event)
        elif isinstance(event, ToolCallOutput):
            await self._call_output(event)
        elif isinstance(event, TurnUsage):
            self.run["usage"] = add_usage(self.run.get("usage"), event.usage.__dict__)

    async def end(self, outcome: Outcome) -> None:
        if isinstance(outcome, Final):
            if self.message is None:
                await self.text_delta("")
            await self.close_message("completed", _usage(outcome.usage), run_status="completed")
        elif isinstance(outcome, RunAgain):
            step, self.tool_step = self.tool_step, None
            if step is not None:
                await self.end_step(step, "completed", _usage(outcome.usage))
        elif isinstance(outcome, RequiresAction):
            step, self.tool_step = self.tool_step, None
            if step is not None:
                await self.save_step(step)
            action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": outcome.calls}}
            await self.set_status("requires_action", required_action=action)
        elif isinstance(outcome, Incomplete):
            await self.close_message("incomplete", reason="max_tokens")
            if self.tool_step is not None:
                step, self.tool_step = self.tool_step, None
                await self.end_step(step, "completed")
            await self.set_status("incomplete", incomplete_details={"reason": outcome.reason})

    def _arguments_delta(self, event: ToolCallArgumentsDelta) -> None:
        step = self.tool_step
        if step is None:
            return
        record = step["step_details"]["tool_calls"][event.index]
        if record["type"] == "function":
            record["function"]["arguments"] += event.delta
            self.step_delta(
                step, {"index": event.index, "type": "function", "function": {"arguments": event.delta}}
            )
        elif event.input_piece:
            kind = record["type"]
            record[kind]["input"] += event.input_piece
            self.step_delta(step, {"index": event.index, "type": kind, kind: {"input": event.input_piece}})

    async def _call_output(self, event: ToolCallOutput) -> None:
        step = await self.tool_step_open()
        records = step["step_details"]["tool_calls"]
        i, tool = event.index, event.tool
        if i == len(records):  # a call the backend did not stream
            records.append(_start_record(event.call_id, event.name, tool))
            self.step_delta(step, {"index": i, **records[i]})
        record = records[i]
        if event.error is not None:
            records[i] = {
                "id": event.call_id,
                "type": "function",
                "function": {"name": event.name, "arguments": event.arguments, "output": event.error},
            }
        elif tool is not None and event.output is not None:
            record[tool.step_type] = {**record.get(tool.step_type, {}), **event.output.record}
            outs = event.output.record.get("outputs")
            if outs:
                self.step_delta(
                    step,
                    {
                        "index": i,
                        "type": tool.step_type,
                        tool.step_type: {"outputs": [{"index": j, **o} for j, o in enumerate(outs)]},
                    },
                )
        else:
            record["function"]["arguments"] = event.arguments

    async def _tool_steps_before(self) -> bool:
        """Whether an earlier leg of this run already made tool calls (a forced choice is then spent)."""
        steps = await self.store.find("step", owner=self.owner, parent=self.thread_id, run_id=self.run["id"])
        return any(step["type"] == "tool_calls" for _, step in steps)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if data.get("object") == "thread.run.step":
            data = render_step(data, self.include_content)
        else:
            data = scrub(data)  # scrub copies every dict and list
        self.bus.publish(self.run["id"], name, data)

    # --- run ------------------------------------------------------------------------------------
    async def set_status(self, status: str, **fields: Any) -> None:
        self._transition(status, **fields)
        await self.store.update("run", self.run, self.owner, parent=self.thread_id, **_lease_cols(status))
        self.publish(f"thread.run.{status}", self.run)

    def _transition(self, status: str, **fields: Any) -> None:
        run = self.run
        run.update(status=status, **fields)
        stamp = {
            "in_progress": "started_at",
            "completed": "completed_at",
            "failed": "failed_at",
            "cancelled": "cancelled_at",
        }.get(status)
        if stamp:
            run[stamp] = now()
        if status in TERMINAL:
            run["expires_at"] = None
            run["required_action"] = None

    # --- steps ----------------------------------------------------------------------------------
    def _new_step(self, kind: str, details: dict[str, Any]) -> dict[str, Any]:
        run = self.run
        return {
            "id": new_id("step_"),
            "object": "thread.run.step",
            "created_at": now(),
            "assistant_id": run["assistant_id"],
            "thread_id": run["thread_id"],
            "run_id": run["id"],
            "type": kind,
            "status": "in_progress",
            "step_details": {"type": kind, kind: details},
            "last_error": None,
            "expired_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "metadata": {},
            "usage": None,
        }

    async def _insert_step(self, step: dict[str, Any]) -> None:
        await self.store.insert("step", step, self.owner, parent=self.thread_id, run_id=self.run["id"])
        self.publish("thread.run.step.created", step)
        self.publish("thread.run.step.in_progress", step)

    async def save_step(self, step: dict[str, Any]) -> None:
        await self.store.update("step", step, self.owner, parent=self.thread_id)

    async def end_step(
        self,
        step: dict[str, Any],
        status: str,
        usage: dict[str, int] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        _end(step, status, usage, error)
        await self.save_step(step)
        self.publish(f"thread.run.step.{status}", step)

    async def tool_step_open(self) -> dict[str, Any]:
        if self.tool_step is None:
            await self.close_message("completed")
            self.tool_step = self._new_step("tool_calls", [])  # type: ignore[arg-type]
            self.tool_step["step_details"] = {"type": "tool_calls", "tool_calls": []}
            await self._insert_step(self.tool_step)
        return self.tool_step

    def step_delta(self, step: dict[str, Any], call_delta: dict[str, Any]) -> None:
        self.publish(
            "thread.run.step.delta",
            {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call_delta]}},
            },
        )

    # --- messages -------------------------------------------------------------------------------
    async def message_open(self) -> dict[str, Any]:
        if self.message is None:
            run = self.run
            msg = new_message(
                self.thread_id,
                "assistant",
                [],
                status="in_progress",
                assistant_id=run["assistant_id"],
                run_id=run["id"],
            )
            step = self._new_step("message_creation", {"message_id": msg["id"]})
            async with self.store.write() as conn:  # one transaction for the step and its message
                await db.insert(conn, "step", step, self.owner, parent=self.thread_id, run_id=run["id"])
                await db.insert(conn, "message", msg, self.owner, parent=self.thread_id, run_id=run["id"])
            self.publish("thread.run.step.created", step)
            self.publish("thread.run.step.in_progress", step)
            self.message_step, self.message = step, msg
            self.publish("thread.message.created", msg)
            self.publish("thread.message.in_progress", msg)
            self._show_images(msg)
        return self.message

    def _show_images(self, msg: dict[str, Any]) -> None:
        """Charts code_interpreter made in this leg open the next message, as the hosted API showed them."""
        images = [m["file"]["id"] for m in (self.ctx.made if self.ctx else []) if m.get("image")]
        for file_id in images[self._shown_images :]:
            part = {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
            msg["content"].append(part)
            self.publish(
                "thread.message.delta",
                {
                    "id": msg["id"],
                    "object": "thread.message.delta",
                    "delta": {"content": [{"index": len(msg["content"]) - 1, **part}]},
                },
            )
        self._shown_images = len(images)

    def _annotate(self, msg: dict[str, Any]) -> None:
        """Turn citation markers and sandbox links in the final text into annotations."""
        if self.ctx is None:
            return
        paths = {m["path"]: m["file"]["id"] for m in self.ctx.made if m.get("path")}
        for index, part in enumerate(msg["content"]):
            if part["type"] != "text":
                continue
            value: str = part["text"]["value"]
            found: list[dict[str, Any]] = []
            for m in CITATION.finditer(value):
                n = int(m.group(1))
                if n < len(self.ctx.sources):
                    found.append(
                        {
                            "type": "file_citation",
                            "text": m.group(0),
                            "start_index": m.start(),
                            "end_index": m.end(),
                            "file_citation": {"file_id": self.ctx.sources[n]},
                        }
                    )
            for m in SANDBOX_LINK.finditer(value):
                file_id = paths.get(m.group(0).removeprefix("sandbox:"))
                if file_id:
                    found.append(
                        {
                            "type": "file_path",
                            "text": m.group(0),
                            "start_index": m.start(),
                            "end_index": m.end(),
                            "file_path": {"file_id": file_id},
                        }
                    )
            if not found:
                continue
            found.sort(key=lambda a: a["start_index"])
            part["text"]["annotations"] = found
            delta = {
                "index": index,
                "type": "text",
                "text": {"value": "", "annotations": [{"index": i, **a} for i, a in enumerate(found)]},
            }
            self.publish(
                "thread.message.delta",
                {"id": msg["id"], "object": "thread.message.delta", "delta": {"content": [delta]}},
            )

    async def text_delta(self, text: str) -> None:
        msg = await self.message_open()
        content = msg["content"]
        if not content or content[-1]["type"] != "text":
            content.append({"type": "text", "text": {"value": "", "annotations": []}})
            part: dict[str, Any] = {
                "index": len(content) - 1,
                "type": "text",
                "text": {"value": text, "annotations": []},
            }
        else:
            part = {"index": len(content) - 1, "type": "text", "text": {"value": text}}
        content[-1]["text"]["value"] += text
        self.publish(
            "thread.message.delta",
            {"id": msg["id"], "object": "thread.message.delta", "delta": {"content": [part]}},
        )

    async def close_message(
        self,
        status: str,
        usage: dict[str, int] | None = None,
        reason: str | None = None,
        run_status: str | None = None,
    ) -> None:
        """Finish the message being written (completed, or incomplete with ``reason``) and its step;
        with ``run_status``, the run's transition is written in the same transaction."""
        msg, step = self.message, self.message_step
        if msg is None or step is None:
            if run_status:
                await self.set_status(run_status)
            return
        self.message = self.message_step = None
        msg["status"] = status
        if status == "completed":
            self._annotate(msg)
            msg["completed_at"] = now()
        else:
            msg["incomplete_at"] = now()
            msg["incomplete_details"] = {"reason": reason}
        step_status = {"run_cancelled": "cancelled", "run_failed": "failed", "run_expired": "expired"}.get(
            reason or "", "completed"
        )
        _end(step, step_status, usage)
        if run_status:
            self._transition(run_status)
        async with self.store.write() as conn:  # the message, its step (and the run) end together
            await db.update(conn, "message", msg, self.owner, self.thread_id)
            await db.update(conn, "step", step, self.owner, self.thread_id)
            if run_status:
                await db.update(conn, "run", self.run, self.owner, self.thread_id, **_lease_cols(run_status))
        self.publish(f"thread.message.{status}", msg)
        self.publish(f"thread.run.step.{step_status}", step)
        if run_status:
            self.publish(f"thread.run.{run_status}", self.run)

    async def abandon(self, outcome: str) -> None:
        """The run ends early (cancelled/failed/expired): close whatever is still open."""
        reason = {"cancelled": "run_cancelled", "failed": "run_failed", "expired": "run_expired"}[outcome]
        await self.close_message("incomplete", reason=reason)
        if self.tool_step is not None:
            step, self.tool_step = self.tool_step, None
            await self.end_step(step, outcome)
        # steps (and their messages) left open by an earlier leg or by another replica
        for step in await self.open_steps():
            if step["type"] == "message_creation":
                msg_id = step["step_details"]["message_creation"]["message_id"]
                self.message = await self.store.get("message", msg_id, self.owner, self.thread_id)
                if self.message is not None:
                    self.message_step = step
                    await self.close_message("incomplete", reason=reason)
                    continue
            await self.end_step(step, outcome)

    # --- the executor's verbs ---------------------------------------------------------------------
    async def tool_context(self) -> ToolContext:
        run = self.run
        assistant = self.assistant or await self.store.get("assistant", run["assistant_id"], self.owner) or {}
        thread = self.thread or await self.store.get("thread", self.thread_id, self.owner) or {}
        self.ctx = ToolContext(
            owner=self.owner,
            thread_id=self.thread_id,
            run_id=run["id"],
            assistant=assistant,
            thread=thread,
            tools=run["tools"],
        )
        return self.ctx

    async def stop_as(self, outcome: str, error: dict[str, str] | None = None) -> None:
        """The run ends early (cancelled/failed/expired); a failure is first an ``error`` event."""
        if error is not None:  # streams raise on this (spec §4.5), then see the run's terminal event
            self.publish(
                "error",
                {
                    "error": {
                        "message": error["message"],
                        "type": error["code"],
                        "param": None,
                        "code": error["code"],
                    }
                },
            )
        with contextlib.suppress(Exception):
            await self.abandon(outcome)
        await self.set_status(outcome, last_error=error) if error else await self.set_status(outcome)

    async def discard_partial(self) -> None:
        """After a crash: drop the unfinished step (and its message) so the turn can be taken again."""
        for step in await self.open_steps():
            if step["type"] == "message_creation":
                msg_id = step["step_details"]["message_creation"]["message_id"]
                await self.store.delete("message", msg_id, self.owner, self.thread_id)
            await self.store.delete("step", step["id"], self.owner, self.thread_id)

    async def open_steps(self) -> list[dict[str, Any]]:
        page = await self.store.list(
            "step",
            self.owner,
            parent=self.thread_id,
            limit=100,
            order="asc",
            where={"run_id": self.run["id"]},
        )
        return [s for s in page.data if s["status"] == "in_progress"]


def run_spec(run: dict[str, Any]) -> RunSpec:
    """What an Assistants run asks of the model."""
    fmt = run.get("response_format")
    usage = run.get("usage") or {}
    return RunSpec(
        model=run["model"],
        instructions=run.get("instructions") or "",
        tools=run.get("tools") or [],
        tool_choice=run.get("tool_choice") or "auto",
        parallel_tool_calls=run.get("parallel_tool_calls", True),
        temperature=run.get("temperature"),
        top_p=run.get("top_p"),
        max_prompt_tokens=run.get("max_prompt_tokens"),
        max_completion_tokens=run.get("max_completion_tokens"),
        response_format=fmt if isinstance(fmt, dict) and fmt.get("type") != "text" else None,
        truncation=run.get("truncation_strategy"),
        usage=Usage(
            usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0), usage.get("total_tokens", 0)
        ),
    )


def _usage(usage: Usage | None) -> dict[str, int] | None:
    return usage.__dict__ if usage is not None else None


def _has_code(tools: list[dict[str, Any]]) -> bool:
    return any(t.get("type") == "code_interpreter" for t in tools)


def _start_record(call_id: str, name: str, tool: ServerTool | None) -> dict[str, Any]:
    if tool is not None:
        return tool.start_record(call_id)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "", "output": None}}


async def files_note(store: Store, ctx: ToolContext | None) -> str:
    """Tell the model which files code_interpreter will find in /mnt/data."""
    names = []
    for file_id in ctx.code_file_ids() if ctx else []:
        file = await store.get("file", file_id, ctx.owner)  # type: ignore[union-attr]
        if file is not None:
            names.append(f"/mnt/data/{file['filename']}")
    return "Files available to code_interpreter: " + ", ".join(names) if names else ""


def attached_for_code(messages: list[dict[str, Any]]) -> list[str]:
    """File ids attached to the thread's messages for code_interpreter."""
    return [
        a["file_id"]
        for m in messages
        for a in m.get("attachments") or []
        if any(t["type"] == "code_interpreter" for t in a.get("tools") or [])
    ]


def _end(
    step: dict[str, Any],
    status: str,
    usage: dict[str, int] | None = None,
    error: dict[str, str] | None = None,
) -> None:
    step["status"] = status
    step[f"{status}_at"] = now()
    step["usage"] = usage if usage is not None else step["usage"]
    step["last_error"] = error


def _lease_cols(status: str) -> dict[str, Any]:
    """A leg that ends (waiting for the client, or finished) gives its replica's lease back."""
    return {"lease": None, "lease_until": None} if status in LEG_END else {}


def render_step(step: dict[str, Any], include_content: bool) -> dict[str, Any]:
    """A step as clients see it: no engine-only fields; file_search result content only when asked for."""
    step = scrub(step)
    for call in step["step_details"].get("tool_calls") or []:
        if call["type"] == "file_search" and not include_content:
            for result in call["file_search"].get("results") or []:
                result.pop("content", None)
    return step


def scrub(obj: Any) -> Any:
    """Drop engine-only fields (``_model_output`` and the like) from what clients see."""
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    return obj
