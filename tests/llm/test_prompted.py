"""tool_mode="prompted": tools in the system prompt, tool traffic as text, calls parsed from text."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.llm import Completion, OpenAICompatModel
from agent.llm.prompted import render_messages
from tests.fakes.model_server import ScriptedModel, Text

from .helpers import TOOLS, USER, calls, collect, request

HISTORY: list[dict[str, Any]] = [
    {"role": "system", "content": "You are helpful."},
    *USER,
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_abc",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            },
            {
                "id": "call_def",
                "type": "function",
                "function": {"name": "get_time", "arguments": '{"tz":"CET"}'},
            },
        ],
    },
    {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'},
    {"role": "tool", "tool_call_id": "call_def", "content": "12:00"},
]


@pytest.fixture
async def prompted(fake: ScriptedModel) -> AsyncIterator[OpenAICompatModel]:
    model = OpenAICompatModel(fake.url, tool_mode="prompted")
    yield model
    await model.close()


async def test_tools_go_into_the_system_prompt(fake: ScriptedModel, prompted: OpenAICompatModel) -> None:
    fake.script(
        Text(
            pieces=[
                "<tool_",
                'call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n',
                "</tool_call>",
            ]
        )
    )
    done = (await collect(prompted, request(messages=HISTORY, tools=TOOLS, tool_choice="required")))[-1]
    assert isinstance(done, Completion) and calls(done) == [("get_weather", {"city": "Paris"})]
    sent = fake.requests[0]
    assert "tools" not in sent and "tool_choice" not in sent
    system = sent["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are helpful.")
    assert '"name": "get_time"' in system["content"] and "<tool_call>" in system["content"]
    assert "You must call at least one function" in system["content"]


def test_history_is_rendered_as_text() -> None:
    out = render_messages(HISTORY, TOOLS, "auto")
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[2]["content"] == (
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}\n</tool_call>'
    )
    assert (
        out[3]["content"]
        == '<tool_response>\n{"temp": 21}\n</tool_response>\n<tool_response>\n12:00\n</tool_response>'
    )
    assert all(set(m) <= {"role", "content"} for m in out)


def test_no_tools_no_prompt_but_history_still_text() -> None:
    out = render_messages(HISTORY, [], None)
    assert out[0] == {"role": "system", "content": "You are helpful."}
    assert out[3]["role"] == "user" and "<tool_response>" in out[3]["content"]


async def test_plain_answers_stream_as_text(fake: ScriptedModel, prompted: OpenAICompatModel) -> None:
    fake.script(Text("It is sunny in Paris."))
    done = (await collect(prompted, request(tools=TOOLS)))[-1]
    assert isinstance(done, Completion) and done.text == "It is sunny in Paris." and done.tool_calls == []
    assert fake.requests[0]["messages"][0]["role"] == "system"  # inserted for the tools
