"""Shared test helpers: the tools the recordings offer, and the event-stream contract as assertions."""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from agent.llm import ChatEvent, ChatModel, ChatRequest, Completion, TextDelta, ToolCallDelta, ToolCallStart

WEATHER: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
            "required": ["city"],
        },
    },
}
TIME: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_time",
        "description": "Get the time in a timezone",
        "parameters": {"type": "object", "properties": {"tz": {"type": "string"}}, "required": ["tz"]},
    },
}
TOOLS: list[Any] = [WEATHER, TIME]
USER: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
CALL_ID = re.compile(r"^call_[A-Za-z0-9]{24}$")


def request(**kw: Any) -> ChatRequest:
    kw.setdefault("model", "gpt-4o")
    kw.setdefault("messages", USER)
    return ChatRequest(**kw)


async def collect(model: ChatModel, req: ChatRequest) -> list[ChatEvent]:
    events = [e async for e in model.stream(req)]
    assert_well_formed(events)
    return events


def assert_well_formed(events: list[ChatEvent]) -> Completion:
    """The stream contract: one Completion, last; text deltas add up to its text; each call starts once,
    in index order, with our own id, its deltas before the next call starts; calls match the
    Completion's."""
    assert events and isinstance(events[-1], Completion), events
    assert sum(isinstance(e, Completion) for e in events) == 1
    done = events[-1]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == done.text
    assert all(e.text for e in events if isinstance(e, TextDelta)), "empty TextDelta"
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.index for s in starts] == list(range(len(done.tool_calls)))
    current = -1
    deltas: dict[int, str] = {}
    for e in events:
        if isinstance(e, ToolCallStart):
            current = e.index
        elif isinstance(e, ToolCallDelta):
            assert e.index == current, f"delta for call {e.index} while call {current} is open"
            deltas[e.index] = deltas.get(e.index, "") + e.arguments
    for start, call in zip(starts, done.tool_calls, strict=True):
        assert CALL_ID.match(call.id) and start.id == call.id and start.name == call.name
        if call.error is None:
            assert isinstance(json.loads(call.arguments), dict)
            streamed = deltas.get(start.index, "")
            # (if repaired beyond an append, e.g. quotes, the deltas don't parse: the Completion is
            # authoritative)
            with contextlib.suppress(json.JSONDecodeError):
                assert json.loads(streamed) == json.loads(call.arguments)
    assert done.finish_reason in ("stop", "tool_calls", "length")
    assert (done.finish_reason == "tool_calls") == bool(done.tool_calls)
    return done


def calls(done: Completion) -> list[tuple[str, Any]]:
    """(name, parsed arguments or the error) for each call."""
    return [(c.name, json.loads(c.arguments) if c.error is None else c.error) for c in done.tool_calls]
