"""Server-sent events consumed by the SDK's stream helpers, unchanged (spec §4)."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import AssistantEventHandler
from openai.types.beta.threads import Message, TextDelta
from openai.types.beta.threads import Text as TextContent
from openai.types.beta.threads.runs import RunStep, ToolCall, ToolCallDelta

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, Gate, HttpError, ScriptedModel, StreamError, Text, ToolCalls

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class Recorder(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.events: list[str] = []
        self.text: list[str] = []
        self.messages_done: list[Message] = []
        self.calls_created: list[ToolCall] = []
        self.call_deltas: list[ToolCallDelta] = []
        self.steps_done: list[RunStep] = []

    def on_event(self, event: object) -> None:
        self.events.append(event.event)  # type: ignore[attr-defined]

    def on_text_delta(self, delta: TextDelta, snapshot: TextContent) -> None:
        self.text.append(delta.value or "")

    def on_message_done(self, message: Message) -> None:
        self.messages_done.append(message)

    def on_tool_call_created(self, tool_call: ToolCall) -> None:
        self.calls_created.append(tool_call)

    def on_tool_call_delta(self, delta: ToolCallDelta, snapshot: ToolCall) -> None:
        self.call_deltas.append(delta)

    def on_run_step_done(self, run_step: RunStep) -> None:
        self.steps_done.append(run_step)


def setup(sdk: openai.OpenAI, **kw: object) -> tuple[str, str]:
    a = sdk.beta.assistants.create(model="m", **kw).id  # type: ignore[arg-type]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}]).id
    return a, t


def test_text_stream_order_and_helpers(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("Hello there friend", pieces=["Hello", " there", " friend"]))
    a, t = setup(sdk)
    handler = Recorder()
    with sdk.beta.threads.runs.stream(thread_id=t, assistant_id=a, event_handler=handler) as stream:
        stream.until_done()
        final_run = stream.get_final_run()
        final_messages = stream.get_final_messages()
    assert handler.events == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    assert handler.text == ["Hello", " there", " friend"]  # one delta per model piece: no buffering
    assert final_run.status == "completed" and final_run.usage
    assert final_messages[0].content[0].text.value == "Hello there friend"  # type: ignore[union-attr]
    assert handler.messages_done[0].status == "completed"
    assert handler.steps_done[0].type == "message_creation"


def test_function_calls_stream_then_submit_stream(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        ToolCalls(
            [
                Call("get_weather", {"city": "Paris"}, pieces=['{"ci', 'ty": "Pa', 'ris"}']),
                Call("get_weather", {"city": "Rome"}),
            ]
        ),
        Text("Both sunny.", pieces=["Both", " sunny."]),
    )
    a, t = setup(sdk, tools=[WEATHER])
    handler = Recorder()
    with sdk.beta.threads.runs.stream(thread_id=t, assistant_id=a, event_handler=handler) as stream:
        stream.until_done()
        run = stream.get_final_run()
    assert run.status == "requires_action" and handler.events[-1] == "thread.run.requires_action"
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [c.id for c in handler.calls_created] == [c.id for c in calls]
    pieces = [d.function.arguments for d in handler.call_deltas if d.index == 0]  # type: ignore[union-attr]
    assert "".join(pieces) == '{"city": "Paris"}'[len(handler.calls_created[0].function.arguments or "") :]  # type: ignore[union-attr]
    snapshot = stream.current_run_step_snapshot
    assert snapshot is not None
    streamed = snapshot.step_details.tool_calls  # type: ignore[union-attr]
    assert [json.loads(c.function.arguments) for c in streamed] == [{"city": "Paris"}, {"city": "Rome"}]
    assert [c.function.name for c in streamed] == ["get_weather", "get_weather"]  # sent once, not doubled
    assert [c.id for c in streamed] == [c.id for c in calls]
    handler2 = Recorder()
    with sdk.beta.threads.runs.submit_tool_outputs_stream(
        thread_id=t,
        run_id=run.id,
        event_handler=handler2,
        tool_outputs=[{"tool_call_id": c.id, "output": "sunny"} for c in calls],
    ) as stream2:
        stream2.until_done()
    assert handler2.events[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"]
    assert handler2.events[-1] == "thread.run.completed" and "".join(handler2.text) == "Both sunny."
    done_outputs = [c.function.output for c in handler2.steps_done[0].step_details.tool_calls]  # type: ignore[union-attr]
    assert done_outputs == ["sunny", "sunny"]


def test_create_and_run_stream_starts_with_thread(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("yes"))
    a = sdk.beta.assistants.create(model="m").id
    handler = Recorder()
    with sdk.beta.threads.create_and_run_stream(
        assistant_id=a,
        thread={"messages": [{"role": "user", "content": "q"}]},
        event_handler=handler,
    ) as stream:
        stream.until_done()
    assert handler.events[0] == "thread.created" and handler.events[-1] == "thread.run.completed"
    assert "".join(handler.text) == "yes"


def test_raw_stream_ends_with_done(
    engine_server: LiveServer, sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    model.script(Text("ok"))
    a, t = setup(sdk)
    with httpx.stream(
        "POST",
        f"{engine_server.url}/v1/threads/{t}/runs",
        json={"assistant_id": a, "stream": True},
        headers={"Authorization": "Bearer sk-test", "Accept": "application/json"},
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert lines[-2:] == ["event: done", "data: [DONE]"]
    deltas = [json.loads(lines[i + 1][6:]) for i, x in enumerate(lines) if x == "event: thread.message.delta"]
    assert deltas[0]["delta"]["content"][0] == {
        "index": 0,
        "type": "text",
        "text": {"value": "ok", "annotations": []},
    }


def test_errors_before_stream_are_json(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("get_weather", {"city": "X"})]))
    a, t = setup(sdk, tools=[WEATHER])
    with (
        pytest.raises(openai.NotFoundError),
        sdk.beta.threads.runs.stream(thread_id=t, assistant_id="asst_nope") as s,
    ):
        s.until_done()
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t, assistant_id=a)
    with (
        pytest.raises(openai.BadRequestError, match="already has an active run"),
        sdk.beta.threads.runs.stream(thread_id=t, assistant_id=a) as s,
    ):
        s.until_done()
    sdk.beta.threads.runs.cancel(run.id, thread_id=t)


def test_failure_mid_stream_raises_then_run_failed(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(StreamError(pieces=["partial"]), *[HttpError(500)] * 3)
    a, t = setup(sdk)
    handler = Recorder()
    with (
        pytest.raises(openai.APIError),
        sdk.beta.threads.runs.stream(thread_id=t, assistant_id=a, event_handler=handler) as s,
    ):
        s.until_done()
    runs = sdk.beta.threads.runs.list(thread_id=t).data
    final = sdk.beta.threads.runs.poll(runs[0].id, thread_id=t)
    assert final.status == "failed" and final.last_error.code == "server_error"  # type: ignore[union-attr]


def test_disconnect_does_not_stop_run(
    engine_server: LiveServer, sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    gate = Gate()
    model.script(Text("slow answer", pieces=["slow", " answer"], pause=gate, pause_after=1))
    a, t = setup(sdk)
    with httpx.stream(
        "POST",
        f"{engine_server.url}/v1/threads/{t}/runs",
        json={"assistant_id": a, "stream": True},
        headers={"Authorization": "Bearer sk-test"},
    ) as r:
        for line in r.iter_lines():
            if line == "event: thread.message.delta":
                break  # hang up mid-answer
    gate.set()
    run_id = sdk.beta.threads.runs.list(thread_id=t).data[0].id
    assert sdk.beta.threads.runs.poll(run_id, thread_id=t).status == "completed"
    assert sdk.beta.threads.messages.list(t, run_id=run_id).data[0].content[0].text.value == "slow answer"  # type: ignore[union-attr]


async def test_async_client_stream(engine_server: LiveServer, model: ScriptedModel) -> None:
    model.script(Text("async ok", pieces=["async", " ok"]))
    client = openai.AsyncOpenAI(base_url=engine_server.url + "/v1", api_key="sk-test", max_retries=0)
    a = await client.beta.assistants.create(model="m")
    t = await client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    pieces = []
    async with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        async for text in stream.text_deltas:
            pieces.append(text)
        run = await stream.get_final_run()
    assert pieces == ["async", " ok"] and run.status == "completed"
    await client.close()


def test_keepalive_comments_during_silence(
    engine_server: LiveServer, sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    gate = Gate()
    model.script(Text("late", gate=gate))
    a, t = setup(sdk)
    with httpx.stream(
        "POST",
        f"{engine_server.url}/v1/threads/{t}/runs",
        json={"assistant_id": a, "stream": True},
        headers={"Authorization": "Bearer sk-test"},
    ) as r:
        seen = []
        for line in r.iter_lines():
            seen.append(line)
            if line.startswith(":"):
                gate.set()  # the model stays silent until the server has sent a keep-alive
    assert any(x.startswith(": ping") for x in seen) and [x for x in seen if x][-1] == "data: [DONE]"
