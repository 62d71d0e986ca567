"""The OpenAI Agents SDK runs an agent with a function tool against our /v1/responses (tracing off:
nothing leaves the machine)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from agents.memory import OpenAIConversationsSession
from openai import AsyncOpenAI

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

set_tracing_disabled(True)


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny, 21C in {city}"


@pytest.fixture
async def client(engine_server: LiveServer) -> AsyncIterator[AsyncOpenAI]:
    async with AsyncOpenAI(base_url=engine_server.url + "/v1", api_key="sk-test", max_retries=0) as c:
        yield c


def weather_agent(client: AsyncOpenAI) -> Agent:
    return Agent(
        name="weather",
        instructions="Answer briefly.",
        tools=[get_weather],
        model=OpenAIResponsesModel(model="local", openai_client=client),
    )


async def test_agent_calls_its_function_tool(client: AsyncOpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]), Text("It is sunny in Oslo."))
    result = await Runner.run(weather_agent(client), "Weather in Oslo?")
    assert result.final_output == "It is sunny in Oslo."
    first, second = model.requests[0], model.requests[1]
    assert first["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert first["tools"][0]["function"]["name"] == "get_weather"
    tool_message = second["messages"][-1]
    assert tool_message["role"] == "tool" and tool_message["content"] == "sunny, 21C in Oslo"


async def test_streamed_agent_run(client: AsyncOpenAI, model: ScriptedModel) -> None:
    model.script(
        ToolCalls([Call("get_weather", {"city": "Rome"})]),
        Text("Rome is sunny.", pieces=["Rome", " is sunny."]),
    )
    result = Runner.run_streamed(weather_agent(client), "Weather in Rome?")
    deltas, kinds = [], set()
    async for event in result.stream_events():
        kinds.add(event.type)
        if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
            deltas.append(event.data.delta)
    assert result.final_output == "Rome is sunny."
    assert deltas == ["Rome", " is sunny."] and "run_item_stream_event" in kinds


async def test_agent_with_previous_response_id_and_a_conversation_session(
    client: AsyncOpenAI, model: ScriptedModel
) -> None:
    model.script(Text("Hello Ada."), Text("Your name is Ada."))
    agent = weather_agent(client)
    session = OpenAIConversationsSession(openai_client=client)
    await Runner.run(agent, "I am Ada.", session=session)
    result = await Runner.run(agent, "What is my name?", session=session)
    assert result.final_output == "Your name is Ada."
    roles = [m["role"] for m in model.requests[1]["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    items = await session.get_items()
    assert len(items) == 4

    model.script(Text("One."), Text("Two."))
    first = await Runner.run(agent, "Count.")
    second = await Runner.run(agent, "Again.", previous_response_id=first.last_response_id)
    assert second.final_output == "Two."
    assert [m["role"] for m in model.requests[-1]["messages"]] == ["system", "user", "assistant", "user"]
