"""The run loop: ask the model → dispatch on the outcome → persist → loop (spec §3)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from agent.engine import prompt
from agent.engine.records import RunRecorder, add_usage
from agent.llm import (
    ChatModel,
    ChatRequest,
    Completion,
    ModelError,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from agent.metrics import Metrics
from agent.tools import ServerTool, Toolbox, ToolContext, ToolOutput
from agent.tools.base import StringField

MAX_MODEL_MISTAKES = 3
log = logging.getLogger(__name__)


@dataclass
class Env:
    model: ChatModel
    tools: dict[str, ServerTool]
    context: int = 8192
    max_turns: int = 25
    max_mistakes: int = MAX_MODEL_MISTAKES
    """Invalid tool calls in a row after which the run fails."""
    metrics: Metrics = field(default_factory=Metrics)


class Limit(Exception):
    """A token limit of the run was reached: the run ends ``incomplete`` with this reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


async def execute(rec: RunRecorder, env: Env, ctx: ToolContext) -> None:
    """One leg of a run: from queued to requires_action or a terminal state."""
    started = asyncio.create_task(rec.set_status("in_progress"))  # written while the thread is read
    box = Toolbox.build(rec.run["tools"], env.tools)
    mistakes = 0
    forcing = rec.run.get("tool_choice") not in (None, "auto", "none") and not await _called_before(rec)
    for turn in range(env.max_turns):
        (history, stored), _ = await asyncio.gather(
            prompt.thread_messages(rec.store, rec.owner, rec.thread_id, rec.run["id"]), started
        )
        ctx.attached = attached_for_code(stored)
        note = await _files_note(rec, ctx) if "code_interpreter" in box.server else ""
        try:
            completion = await _ask(
                rec, env, _request(rec.run, history, box, env, forcing and turn == 0, note), box
            )
        except Limit as limit:
            await rec.close_message("incomplete", reason="max_tokens")
            if rec.tool_step is not None:
                await rec.end_step(rec.tool_step, "completed")
                rec.tool_step = None
            return await rec.set_status("incomplete", incomplete_details={"reason": limit.reason})
        usage = completion.usage.__dict__ if completion.usage else None
        if not completion.tool_calls:
            if rec.message is None:
                await rec.text_delta("")
            return await rec.close_message("completed", usage, run_status="completed")
        step, pending, mistake = await _dispatch(rec, box, ctx, completion, env.metrics)
        if pending:
            await rec.save_step(step)
            action = {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": pending}}
            return await rec.set_status("requires_action", required_action=action)
        await rec.end_step(step, "completed", usage)
        mistakes = mistakes + 1 if mistake else 0
        if mistakes >= env.max_mistakes:
            raise ModelError(f"The model made invalid tool calls {mistakes} times in a row.")
    raise ModelError(f"The run did not finish within {env.max_turns} model turns.")


async def _dispatch(
    rec: RunRecorder, box: Toolbox, ctx: ToolContext, completion: Completion, metrics: Metrics
) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """Run the server-side calls, answer the malformed ones, collect the client's function calls."""
    step = await rec.tool_step_open()
    records = step["step_details"]["tool_calls"]
    pending, mistake = [], False
    for i, call in enumerate(completion.tool_calls):
        tool = box.server.get(call.name)
        if i == len(records):  # a call the backend did not stream
            records.append(_start_record(call.id, call.name, tool))
            rec.step_delta(step, {"index": i, **records[i]})
        record = records[i]
        if call.error or not box.knows(call.name):
            mistake = True
            if tool is not None:
                metrics.tool_calls.labels(tool.name, "invalid").inc()
            known = ", ".join(sorted([*box.server, *box.functions]))
            error = f"Error: {call.error or f'no tool named {call.name!r}'}. Available tools: {known}."
            records[i] = {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": call.arguments, "output": error},
            }
        elif tool is not None:
            output = await _invoke(tool, call.arguments, ctx, metrics)
            ctx.made.extend(output.files)
            record[tool.step_type] = {**record.get(tool.step_type, {}), **output.record}
            outs = output.record.get("outputs")
            if outs:
                rec.step_delta(
                    step,
                    {
                        "index": i,
                        "type": tool.step_type,
                        tool.step_type: {"outputs": [{"index": j, **o} for j, o in enumerate(outs)]},
                    },
                )
        else:
            record["function"]["arguments"] = call.arguments
            pending.append(
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            )
    rec.tool_step = None
    return step, pending, mistake


async def _invoke(tool: ServerTool, arguments: str, ctx: ToolContext, metrics: Metrics) -> ToolOutput:
    """A tool's own failure is output the model reads; it never fails the run."""
    started = time.perf_counter()
    outcome = "error"
    try:
        output = await tool.invoke(json.loads(arguments or "{}"), ctx)
        outcome = "error" if output.text.startswith("Error") else "ok"
        return output
    except Exception as err:
        log.exception("tool %s failed", tool.name)
        text = f"Error: the {tool.name} tool failed ({type(err).__name__})."
        if tool.step_type == "function":
            return ToolOutput(text, {"name": tool.name, "arguments": arguments, "output": text})
        return ToolOutput(text, {**tool.start_record("")[tool.step_type], "_model_output": text})
    finally:
        metrics.tool_calls.labels(tool.name, outcome).inc()
        metrics.tool_seconds.labels(tool.name).observe(time.perf_counter() - started)


def _request(
    run: dict[str, Any], history: list[dict[str, Any]], box: Toolbox, env: Env, force: bool, note: str
) -> ChatRequest:
    messages = prompt.build(run, history, env.context, note)
    if run.get("max_prompt_tokens") and prompt.estimate_tokens(messages) > run["max_prompt_tokens"]:
        raise Limit("max_prompt_tokens")
    choice = run.get("tool_choice") or "auto"
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name") if choice["type"] == "function" else choice["type"]
        choice = {"type": "function", "function": {"name": name}}
    if not force and choice != "none":
        choice = "auto"  # a forced choice holds until the model has called a tool once
    remaining = None
    if run.get("max_completion_tokens"):
        remaining = run["max_completion_tokens"] - (run.get("usage") or {}).get("completion_tokens", 0)
        if remaining <= 0:
            raise Limit("max_completion_tokens")
    fmt = run.get("response_format")
    return ChatRequest(
        model=run["model"],
        messages=messages,
        tools=box.schemas or None,
        tool_choice=choice if box.schemas else None,
        parallel_tool_calls=run.get("parallel_tool_calls", True),
        temperature=run.get("temperature"),
        top_p=run.get("top_p"),
        max_tokens=remaining,
        response_format=fmt if isinstance(fmt, dict) and fmt.get("type") != "text" else None,
    )


async def _called_before(rec: RunRecorder) -> bool:
    """Whether an earlier leg of this run already made tool calls (a forced choice is then spent)."""
    steps = await rec.store.find("step", owner=rec.owner, parent=rec.thread_id, run_id=rec.run["id"])
    return any(step["type"] == "tool_calls" for _, step in steps)


async def _files_note(rec: RunRecorder, ctx: ToolContext) -> str:
    """Tell the model which files code_interpreter will find in /mnt/data."""
    names = []
    for file_id in ctx.code_file_ids():
        file = await rec.store.get("file", file_id, rec.owner)
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


def _start_record(call_id: str, name: str, tool: ServerTool | None) -> dict[str, Any]:
    if tool is not None:
        return tool.start_record(call_id)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "", "output": None}}


async def _ask(rec: RunRecorder, env: Env, request: ChatRequest, box: Toolbox) -> Completion:
    """Stream one completion into the run: text into a message, calls into a tool_calls step."""
    inputs: dict[int, StringField] = {}  # calls whose code streams into the step as it is written
    asked, first = time.perf_counter(), 0.0
    async for event in env.model.stream(request):
        if not first and isinstance(event, TextDelta | ToolCallStart):
            first = time.perf_counter()
            env.metrics.model_first_token.observe(first - asked)
        if isinstance(event, TextDelta):
            await rec.text_delta(event.text)
        elif isinstance(event, ToolCallStart):
            step = await rec.tool_step_open()
            tool = box.server.get(event.name)
            record = _start_record(event.id, event.name, tool)
            step["step_details"]["tool_calls"].append(record)
            rec.step_delta(step, {"index": event.index, **record})
            if tool is not None and tool.input_field:
                inputs[event.index] = StringField(tool.input_field)
        elif isinstance(event, ToolCallDelta) and rec.tool_step is not None:
            record = rec.tool_step["step_details"]["tool_calls"][event.index]
            if record["type"] == "function":
                record["function"]["arguments"] += event.arguments
                rec.step_delta(
                    rec.tool_step,
                    {"index": event.index, "type": "function", "function": {"arguments": event.arguments}},
                )
            elif event.index in inputs and (piece := inputs[event.index].feed(event.arguments)):
                kind = record["type"]
                record[kind]["input"] += piece
                rec.step_delta(rec.tool_step, {"index": event.index, "type": kind, kind: {"input": piece}})
        elif isinstance(event, Completion):
            _observe_rate(env.metrics, event, first)
            rec.run["usage"] = add_usage(rec.run.get("usage"), event.usage.__dict__ if event.usage else None)
            _check_limits(rec.run, event)
            return event
    raise ModelError("The model stream ended without a completion.")


def _observe_rate(metrics: Metrics, completion: Completion, first: float) -> None:
    tokens = completion.usage.completion_tokens if completion.usage else 0
    seconds = time.perf_counter() - first if first else 0.0
    if tokens > 1 and seconds > 0:
        metrics.model_tokens_per_second.observe((tokens - 1) / seconds)


def _check_limits(run: dict[str, Any], completion: Completion) -> None:
    usage = run.get("usage") or {}
    if run.get("max_completion_tokens") and (
        completion.finish_reason == "length"
        or usage.get("completion_tokens", 0) >= run["max_completion_tokens"]
    ):
        raise Limit("max_completion_tokens")
    last_prompt = completion.usage.prompt_tokens if completion.usage else 0
    if run.get("max_prompt_tokens") and last_prompt > run["max_prompt_tokens"]:
        raise Limit("max_prompt_tokens")
