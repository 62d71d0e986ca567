"""The calculator inside runs: a function call named calculator, answered by the server, never requires_action."""

from __future__ import annotations

import openai

from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls


def test_math_tutor_run(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        ToolCalls(
            [
                Call("calculator", {"expression": "1/3 + 1/6"}),
                Call("calculator", {"expression": "2**100 + 1/4"}),
            ]
        ),
        Text("1/3 + 1/6 = 1/2."),
    )
    tutor = sdk.beta.assistants.create(
        model="m", instructions="You are a math tutor.", tools=[{"type": "calculator"}]
    )  # type: ignore[list-item]
    assert tutor.tools[0].type == "calculator"
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "What is 1/3 + 1/6?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=tutor.id)
    assert run.status == "completed"
    offered = model.requests[0]["tools"]
    assert offered == [
        {
            "type": "function",
            "function": {
                "name": "calculator",
                "description": offered[0]["function"]["description"],
                "parameters": {
                    "type": "object",
                    "properties": {
                        "expression": {
                            "type": "string",
                            "description": offered[0]["function"]["parameters"]["properties"]["expression"][
                                "description"
                            ],
                        }
                    },
                    "required": ["expression"],
                },
            },
        }
    ]
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data
    calls = steps[0].step_details.tool_calls  # type: ignore[union-attr]
    assert [c.type for c in calls] == ["function", "function"]
    assert [c.function.output for c in calls] == ["1/2", "1267650600228229401496703205376.25"]  # type: ignore[union-attr]
    tool_msgs = [m for m in model.requests[1]["messages"] if m["role"] == "tool"]
    assert [m["content"] for m in tool_msgs] == ["1/2", "1267650600228229401496703205376.25"]


def test_function_named_calculator_and_hostile_input(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        ToolCalls([Call("calculator", {"expression": "9**9**9"})]),
        ToolCalls([Call("calculator", {"expression": "().__class__.__bases__"})]),
        Text("Too big."),
    )
    a = sdk.beta.assistants.create(
        model="m", tools=[{"type": "function", "function": {"name": "calculator"}}]
    )
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "9^9^9?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    outputs = [
        s.step_details.tool_calls[0].function.output  # type: ignore[union-attr]
        for s in sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data
        if s.type == "tool_calls"
    ]
    assert len(outputs) == 2 and all(o.startswith("Error:") for o in outputs)


def test_math_tutor_streamed(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("calculator", {"expression": "sqrt(2)"})]), Text("About 1.41421356."))
    tutor = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "sqrt 2?"}])
    with sdk.beta.threads.runs.stream(thread_id=t.id, assistant_id=tutor.id) as stream:
        events = [e.event for e in stream]
        run = stream.get_final_run()
        text = stream.get_final_messages()[0].content[0].text.value  # type: ignore[union-attr]
    assert run.status == "completed" and text == "About 1.41421356."
    assert "thread.run.requires_action" not in events
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data[0]
    assert step.step_details.tool_calls[0].function.output == "1.4142135623730951"  # type: ignore[union-attr]
