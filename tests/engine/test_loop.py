"""The run loop without an API and without Docker: a recording sink, the scripted model over HTTP, and
code_interpreter over the in-process sandbox fake."""

from __future__ import annotations

from typing import Any

import pytest

from agent.engine.events import (
    Event,
    Final,
    Incomplete,
    ModelFault,
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
)
from agent.engine.loop import Env, execute
from agent.llm import OpenAICompatModel
from agent.tools import ToolContext
from agent.tools.code_interpreter import CodeInterpreterTool
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls
from tests.fakes.sandbox import FakeSandboxes

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}


class Recorder:
    """A third rendering of the loop: it keeps the transcript as chat messages and logs every event."""

    def __init__(self, spec: RunSpec, prompt: str) -> None:
        self.spec = spec
        self.messages: list[dict[str, Any]] = [{"role": "user", "content": prompt}]
        self.events: list[Event] = []
        self.outcomes: list[Outcome] = []
        self._calls: list[dict[str, Any]] = []
        self._outputs: list[dict[str, Any]] = []

    async def transcript(self) -> Transcript:
        return Transcript(list(self.messages))

    async def emit(self, event: Event) -> None:
        self.events.append(event)
        if isinstance(event, ToolCallOutput) and (event.output or event.error):
            text = event.error or event.output.text  # type: ignore[union-attr]
            self._calls.append(
                {
                    "id": event.call_id,
                    "type": "function",
                    "function": {"name": event.name, "arguments": event.arguments},
                }
            )
            self._outputs.append({"role": "tool", "tool_call_id": event.call_id, "content": text})

    async def end(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        if isinstance(outcome, RunAgain):
            self.messages.append({"role": "assistant", "content": None, "tool_calls": self._calls})
            self.messages.extend(self._outputs)
            self._calls, self._outputs = [], []


async def _no_files(_owner: str, _name: str, _data: bytes) -> dict[str, Any]:
    return {"id": "file-x"}


async def _no_load(_owner: str, _file_id: str) -> tuple[str, bytes] | None:
    return None


@pytest.fixture
async def model() -> Any:
    async with ScriptedModel() as server:
        client = OpenAICompatModel(server.url)
        yield server, client
        await client.close()


def ctx() -> ToolContext:
    return ToolContext(owner="-", thread_id="thread_1", run_id="run_1", assistant={}, thread={})


async def test_code_runs_in_the_fake_sandbox_and_its_output_is_what_the_model_reads(model: Any) -> None:
    server, client = model
    sandboxes = FakeSandboxes()
    tool = CodeInterpreterTool(sandboxes, _no_files, _no_load)
    server.script(ToolCalls([Call("code_interpreter", {"code": "x = 6 * 7\nprint(x)"})]), Text("It is 42."))
    sink = Recorder(RunSpec(model="m", tools=[{"type": "code_interpreter"}]), "6 times 7?")
    outcome = await execute(sink, Env(client, {"code_interpreter": tool}), ctx())
    assert isinstance(outcome, Final) and isinstance(sink.outcomes[0], RunAgain)
    assert sink.events[0] == Status("in_progress")
    assert sandboxes.sessions["thread_1"].executed == ["x = 6 * 7\nprint(x)"]
    pieces = "".join(e.input_piece for e in sink.events if isinstance(e, ToolCallArgumentsDelta))
    assert pieces == "x = 6 * 7\nprint(x)"  # the code streams decoded, for the renderings
    tool_message = server.requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"].strip() == "42"
    assert "".join(e.text for e in sink.events if isinstance(e, TextDelta)) == "It is 42."


async def test_client_function_calls_end_the_leg_waiting_for_the_client(model: Any) -> None:
    server, client = model
    server.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]))
    sink = Recorder(RunSpec(model="m", tools=[WEATHER]), "weather?")
    outcome = await execute(sink, Env(client, {}), ctx())
    assert isinstance(outcome, RequiresAction)
    assert outcome.calls[0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    started = [e for e in sink.events if isinstance(e, ToolCallStarted)]
    assert started[0].name == "get_weather" and started[0].tool is None


async def test_a_token_limit_is_an_incomplete_outcome(model: Any) -> None:
    server, client = model
    server.script(Text("a b c d", finish_reason="length"))
    sink = Recorder(RunSpec(model="m", max_completion_tokens=300), "talk")
    assert await execute(sink, Env(client, {}), ctx()) == Incomplete("max_completion_tokens")


async def test_a_model_that_keeps_calling_unknown_tools_is_the_models_fault(model: Any) -> None:
    server, client = model
    server.script(*[ToolCalls([Call("nope", {})]) for _ in range(3)])
    sink = Recorder(RunSpec(model="m", tools=[WEATHER]), "hi")
    with pytest.raises(ModelFault, match="invalid tool calls 3 times"):
        await execute(sink, Env(client, {}), ctx())
    errors = [e.error for e in sink.events if isinstance(e, ToolCallOutput)]
    assert errors and all(e and "no tool named 'nope'" in e for e in errors)


async def test_strict_function_arguments_must_match_the_schema(model: Any) -> None:
    server, client = model
    strict = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    server.script(
        ToolCalls([Call("get_weather", {"town": "Oslo"})]), ToolCalls([Call("get_weather", {"city": "Oslo"})])
    )
    sink = Recorder(RunSpec(model="m", tools=[strict]), "weather?")
    outcome = await execute(sink, Env(client, {}), ctx())
    assert (
        isinstance(outcome, RequiresAction)
        and outcome.calls[0]["function"]["arguments"] == '{"city": "Oslo"}'
    )
    told = server.requests[1]["messages"][-1]
    assert told["role"] == "tool" and "missing the required property 'city'" in told["content"]
