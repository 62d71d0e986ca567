"""Tool-choice semantics llama-server does not enforce, enforced by the client (checked on what the
fake received)."""

from __future__ import annotations

import json

from agent.llm import Completion, OpenAICompatModel, TextDelta, ToolCallStart
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

from .helpers import TIME, TOOLS, WEATHER, calls, collect, request

NAMED = {"type": "function", "function": {"name": "get_weather"}}


async def test_none_sends_no_tools(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Text('<tool_call>{"name": "get_weather", "arguments": {}}</tool_call>'))
    done = (await collect(client, request(tools=TOOLS, tool_choice="none")))[-1]
    assert "tools" not in fake.requests[0] and "tool_choice" not in fake.requests[0]
    assert isinstance(done, Completion) and done.tool_calls == []  # text is not parsed for calls either


async def test_named_choice_sends_only_that_tool_as_required(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    fake.script(ToolCalls([Call("get_weather", {"city": "Paris"})]))
    done = (await collect(client, request(tools=TOOLS, tool_choice=NAMED)))[-1]
    sent = fake.requests[0]
    assert sent["tools"] == [WEATHER] and sent["tool_choice"] == "required"
    assert isinstance(done, Completion) and calls(done) == [("get_weather", {"city": "Paris"})]
    assert len(fake.requests) == 1


async def test_required_without_a_call_retries_under_a_json_schema(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    answer, forced_answer = (
        Text("I think it is sunny."),
        Text('{ "name" : "get_time", "arguments" : { "tz" : "CET" } }'),
    )
    fake.script(answer, forced_answer)
    events = await collect(client, request(tools=TOOLS, tool_choice="required"))
    assert not any(isinstance(e, TextDelta) for e in events)  # the first answer's text is held back
    done = events[-1]
    assert isinstance(done, Completion) and calls(done) == [("get_time", {"tz": "CET"})]
    assert done.finish_reason == "tool_calls"
    assert done.usage is not None  # both requests count
    assert done.usage.completion_tokens == len(answer.parts()) + len(forced_answer.parts())
    first, forced = fake.requests
    assert first["tools"] == TOOLS and first["tool_choice"] == "required"
    assert not {"tools", "tool_choice", "parallel_tool_calls"} & set(forced)
    schema = forced["response_format"]["json_schema"]["schema"]
    assert forced["response_format"]["type"] == "json_schema"
    assert schema["properties"]["name"] == {"type": "string", "enum": ["get_weather", "get_time"]}
    assert schema["required"] == ["name", "arguments"]
    assert "JSON object" in forced["messages"][0]["content"]


async def test_named_fallback_uses_that_tools_parameters(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    fake.script(Text("no"), Text(json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})))
    done = (await collect(client, request(tools=TOOLS, tool_choice=NAMED)))[-1]
    assert isinstance(done, Completion) and calls(done) == [("get_weather", {"city": "Oslo"})]
    schema = fake.requests[1]["response_format"]["json_schema"]["schema"]
    assert schema["properties"]["name"]["enum"] == ["get_weather"]
    assert schema["properties"]["arguments"] == WEATHER["function"]["parameters"]


async def test_fallback_that_fails_gives_the_first_answer_without_calls(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    fake.script(Text("Sunny, I guess."), Text('{ "city" : "It\'s a spect"'))  # cut off (fixture 34)
    events = await collect(client, request(tools=TOOLS, tool_choice="required"))
    done = events[-1]
    assert isinstance(done, Completion)
    assert (done.text, done.tool_calls, done.finish_reason) == ("Sunny, I guess.", [], "stop")
    assert len(fake.requests) == 2


async def test_required_with_a_call_streams_it_without_a_second_request(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    fake.script(ToolCalls([Call("get_time", {"tz": "UTC"})], text="Checking."))
    events = await collect(client, request(tools=TOOLS, tool_choice="required"))
    assert events[0] == TextDelta("Checking.") and isinstance(events[1], ToolCallStart)
    assert len(fake.requests) == 1


async def test_parallel_false_keeps_the_first_call(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(ToolCalls([Call("get_time", {"tz": "A"}), Call("get_time", {"tz": "B"})]))
    done = (await collect(client, request(tools=[TIME], parallel_tool_calls=False)))[-1]
    assert isinstance(done, Completion) and calls(done) == [("get_time", {"tz": "A"})]
    assert fake.requests[0]["parallel_tool_calls"] is False
