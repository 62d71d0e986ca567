"""The run loop: ask the model → dispatch on the outcome → emit → loop (spec §3).

It knows no API: it reads a `RunSpec` and the transcript from a `Sink` and emits neutral events to it
(`agent.engine.events`); the Assistants and Responses adapters render them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from agent.engine import prompt
from agent.engine.events import (
    ClientFault,
    Final,
    Incomplete,
    MessageDone,
    ModelFault,
    Outcome,
    RequiresAction,
    RunAgain,
    RunSpec,
    Sink,
    Status,
    TextDelta,
    ToolCallArgumentsDelta,
    ToolCallOutput,
    ToolCallStarted,
    TurnUsage,
)
from agent.llm import ChatModel, ChatRequest, Completion, ContextOverflowError, ModelError, Usage
from agent.llm import TextDelta as ModelText
from agent.llm import ToolCallDelta as ModelCallDelta
from agent.llm import ToolCallStart as ModelCallStart
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


async def execute(sink: Sink, env: Env, ctx: ToolContext) -> Outcome:
    """One leg of a run: from queued to a client action, a final answer or a limit."""
    await sink.emit(Status("in_progress"))
    spec = sink.spec
    box = Toolbox.build(spec.tools, env.tools)
    used, mistakes, tool_calls = spec.usage, 0, 0
    for turn in range(env.max_turns):
        transcript = await sink.transcript()
        ctx.attached = transcript.attached
        forcing = turn == 0 and not transcript.called_before
        try:
            request = _request(spec, transcript.messages, box, env, forcing, transcript.note, used)
            completion, texting = await _ask_within(sink, env, request, box, spec)
            used = used + (completion.usage or Usage())
            _check_limits(spec, completion, used)
        except Limit as limit:
            outcome: Outcome = Incomplete(limit.reason)  # the open message ends incomplete
        else:
            if texting:
                await sink.emit(MessageDone())
            outcome, mistake, tool_calls = await _dispatch(
                sink, box, ctx, completion, spec, tool_calls, env.metrics
            )
            mistakes = mistakes + 1 if mistake else 0
        await sink.end(outcome)
        if not isinstance(outcome, RunAgain):
            return outcome
        if mistakes >= env.max_mistakes:
            raise ModelFault(f"The model made invalid tool calls {mistakes} times in a row.")
    raise ModelFault(f"The run did not finish within {env.max_turns} model turns.")


async def _dispatch(
    sink: Sink,
    box: Toolbox,
    ctx: ToolContext,
    completion: Completion,
    spec: RunSpec,
    tool_calls: int,
    metrics: Metrics,
) -> tuple[Outcome, bool, int]:
    """Run the server-side calls, answer the malformed ones, collect the client's function calls."""
    if not completion.tool_calls:
        return Final(completion.usage), False, tool_calls
    pending, mistake = [], False
    for i, call in enumerate(completion.tool_calls):
        tool = box.server.get(call.name)
        wrong = call.error or box.mistake(call.name, call.arguments)
        if wrong or not box.knows(call.name):
            mistake = True
            if tool is not None:
                metrics.tool_calls.labels(tool.name, "invalid").inc()
            known = ", ".join(sorted([*box.server, *box.functions]))
            error = f"Error: {wrong or f'no tool named {call.name!r}'}. Available tools: {known}."
            await sink.emit(ToolCallOutput(i, call.id, call.name, call.arguments, None, None, error))
        elif tool is not None:
            if spec.max_tool_calls is not None and tool_calls >= spec.max_tool_calls:
                error = "Error: the limit of tool calls for this response is reached; answer without tools."
                await sink.emit(ToolCallOutput(i, call.id, call.name, call.arguments, tool, None, error))
                continue
            tool_calls += 1
            output = await _invoke(tool, call.arguments, ctx, metrics)
            ctx.made.extend(output.files)
            await sink.emit(ToolCallOutput(i, call.id, call.name, call.arguments, tool, output))
        else:
            await sink.emit(ToolCallOutput(i, call.id, call.name, call.arguments, None, None))
            pending.append(
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
            )
    if pending:
        return RequiresAction(pending, completion.usage), mistake, tool_calls
    return RunAgain(completion.usage), mistake, tool_calls


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
    spec: RunSpec,
    history: list[dict[str, Any]],
    box: Toolbox,
    env: Env,
    force: bool,
    note: str,
    used: Usage,
) -> ChatRequest:
    messages = prompt.build(spec, history, env.context, note)
    if spec.max_prompt_tokens and prompt.estimate_tokens(messages) > spec.max_prompt_tokens:
        raise Limit("max_prompt_tokens")
    choice: str | dict[str, Any] = spec.tool_choice or "auto"
    if isinstance(choice, dict):
        name = choice.get("function", {}).get("name") if choice["type"] == "function" else choice["type"]
        choice = {"type": "function", "function": {"name": name}}
    if not force and choice != "none":
        choice = "auto"  # a forced choice holds until the model has called a tool once
    remaining = None
    if spec.max_completion_tokens:
        remaining = spec.max_completion_tokens - used.completion_tokens
        if remaining <= 0:
            raise Limit("max_completion_tokens")
    return ChatRequest(
        model=spec.model,
        messages=messages,
        tools=box.schemas or None,
        tool_choice=choice if box.schemas else None,
        parallel_tool_calls=spec.parallel_tool_calls,
        temperature=spec.temperature,
        top_p=spec.top_p,
        max_tokens=remaining,
        response_format=spec.response_format,
    )


async def _ask_within(
    sink: Sink, env: Env, request: ChatRequest, box: Toolbox, spec: RunSpec
) -> tuple[Completion, bool]:
    """A prompt the backend refuses as too long is the client's fault when truncation is disabled."""
    try:
        return await _ask(sink, env, request, box)
    except ContextOverflowError as err:
        if (spec.truncation or {}).get("type") != "disabled":
            raise
        raise ClientFault(
            "Your input exceeds the context window of this model. Please adjust your input and try again.",
            code="context_length_exceeded",
        ) from err


async def _ask(sink: Sink, env: Env, request: ChatRequest, box: Toolbox) -> tuple[Completion, bool]:
    """Stream one completion as events: text deltas, then each call's start and argument deltas;
    the completion and whether a message is still open."""
    inputs: dict[int, StringField] = {}  # calls whose code streams as it is written
    texting = False
    asked, first = time.perf_counter(), 0.0
    async for event in env.model.stream(request):
        if not first and isinstance(event, ModelText | ModelCallStart):
            first = time.perf_counter()
            env.metrics.model_first_token.observe(first - asked)
        if isinstance(event, ModelText):
            texting = True
            await sink.emit(TextDelta(event.text))
        elif isinstance(event, ModelCallStart):
            if texting:
                texting = False
                await sink.emit(MessageDone())
            tool = box.server.get(event.name)
            if tool is not None and tool.input_field:
                inputs[event.index] = StringField(tool.input_field)
            await sink.emit(ToolCallStarted(event.index, event.id, event.name, tool))
        elif isinstance(event, ModelCallDelta):
            piece = inputs[event.index].feed(event.arguments) if event.index in inputs else ""
            await sink.emit(ToolCallArgumentsDelta(event.index, event.arguments, piece))
        elif isinstance(event, Completion):
            _observe_rate(env.metrics, event, first)
            if event.usage:
                await sink.emit(TurnUsage(event.usage))
            return event, texting
    raise ModelError("The model stream ended without a completion.")


def _observe_rate(metrics: Metrics, completion: Completion, first: float) -> None:
    tokens = completion.usage.completion_tokens if completion.usage else 0
    seconds = time.perf_counter() - first if first else 0.0
    if tokens > 1 and seconds > 0:
        metrics.model_tokens_per_second.observe((tokens - 1) / seconds)


def _check_limits(spec: RunSpec, completion: Completion, used: Usage) -> None:
    if spec.max_completion_tokens and (
        completion.finish_reason == "length" or used.completion_tokens >= spec.max_completion_tokens
    ):
        raise Limit("max_completion_tokens")
    last_prompt = completion.usage.prompt_tokens if completion.usage else 0
    if spec.max_prompt_tokens and last_prompt > spec.max_prompt_tokens:
        raise Limit("max_prompt_tokens")
