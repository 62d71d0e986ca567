"""Every tool result reaches the model, success or failure: the next chat request carries the text.

Each case scripts one tool call, lets the run go on, and reads the tool message of the model's second
request (what the scripted model server received), and what the run step shows the client.
"""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

# name → (the assistant's tools, the call the model makes, words the model must read back)
CASES: dict[str, tuple[list[dict[str, Any]], Call, str]] = {
    "code_interpreter without a Docker engine": (
        [{"type": "code_interpreter"}],
        Call("code_interpreter", {"code": "print(6 * 7)"}),
        "Error: code_interpreter is unavailable on this server (no Docker engine).",
    ),
    "code_interpreter without its code argument": (
        [{"type": "code_interpreter"}],
        Call("code_interpreter", {"source": "print(1)"}),
        "Error: code_interpreter takes one string argument 'code'.",
    ),
    "file_search without a vector store": (
        [{"type": "file_search"}],
        Call("file_search", {"query": "launch codes"}),
        "No files are available to search.",
    ),
    "file_search without its query argument": (
        [{"type": "file_search"}],
        Call("file_search", {"q": "launch codes"}),
        "Error: file_search takes one string argument 'query'.",
    ),
    "file_search given arguments that are not an object": (
        [{"type": "file_search"}],
        Call("file_search", '"launch codes"'),
        "Error: arguments must be a JSON object, got str",
    ),
    "calculator without its expression argument": (
        [{"type": "calculator"}],
        Call("calculator", {"expr": "1+1"}),
        "Error: the calculator takes one string argument 'expression'.",
    ),
    "calculator refusing an expression": (
        [{"type": "calculator"}],
        Call("calculator", {"expression": "open('/etc/passwd')"}),
        "Error: ",
    ),
    "calculator dividing by zero": (
        [{"type": "calculator"}],
        Call("calculator", {"expression": "1/0"}),
        "Error: ",
    ),
    "a tool the run does not offer": (
        [{"type": "calculator"}],
        Call("web_browser", {"url": "http://example.com"}),
        "Error: no tool named 'web_browser'. Available tools: calculator.",
    ),
    "arguments that are not JSON": (
        [{"type": "calculator"}],
        Call("calculator", "expression := 1+1 ]]"),
        "Error: ",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_the_model_reads_every_tool_failure(sdk: openai.OpenAI, model: ScriptedModel, name: str) -> None:
    tools, call, words = CASES[name]
    model.script(ToolCalls([call]), Text("I could not do that."))
    a = sdk.beta.assistants.create(model="m", tools=tools)  # type: ignore[arg-type]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "please"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed", run.last_error
    sent = model.requests[1]["messages"]
    tool_msgs = [m for m in sent if m["role"] == "tool"]
    assert len(tool_msgs) == 1 and words in tool_msgs[0]["content"], tool_msgs
    assert tool_msgs[0]["content"].strip(), "the model was sent an empty tool message"
    asked = [m for m in sent if m.get("tool_calls")]
    assert asked[-1]["tool_calls"][0]["id"] == tool_msgs[0]["tool_call_id"]
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data[0]
    record = step.step_details.tool_calls[0].model_dump()  # type: ignore[union-attr]
    assert "transcript" not in record and not any(k.startswith("_") for k in record[record["type"]])
    if record["type"] == "code_interpreter":  # the user sees the error where the code's logs go
        assert record["code_interpreter"]["outputs"] == [{"type": "logs", "logs": tool_msgs[0]["content"]}]
    if record["type"] == "function":
        assert record["function"]["output"] == tool_msgs[0]["content"]


def test_successful_results_reach_the_model_too(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("calculator", {"expression": "6*7"})]), Text("42"))
    a = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "6*7?"}])
    sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    # a later run rebuilds the transcript from the stored steps
    model.script(Text("still 42"))
    sdk.beta.threads.messages.create(t.id, role="user", content="again?")
    sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    again = model.requests[-1]["messages"]
    assert [m["content"] for m in again if m["role"] == "tool"] == ["42"]
