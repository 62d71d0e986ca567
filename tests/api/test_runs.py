"""Runs against the scripted model: status machine, function tools, locks, limits and faults."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.conftest import LiveServer
from tests.fakes.model_server import (
    Call,
    Gate,
    HttpError,
    Malformed,
    ScriptedModel,
    StreamError,
    Text,
    ToolCalls,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def assistant(sdk: openai.OpenAI, **kw: object) -> str:
    return sdk.beta.assistants.create(model="local", instructions="You are terse.", **kw).id  # type: ignore[arg-type]


def test_plain_answer_completes_with_message_step_and_usage(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("Paris is the capital.", pieces=["Paris", " is the", " capital."]))
    a = assistant(sdk)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "Capital of France?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "completed" and run.completed_at and run.started_at and run.expires_at is None
    assert run.thread_id == t.id and run.assistant_id == a and run.instructions == "You are terse."
    assert run.usage and run.usage.completion_tokens == 3 and run.usage.total_tokens > 3
    msgs = sdk.beta.threads.messages.list(t.id, order="asc").data
    assert msgs[-1].role == "assistant" and msgs[-1].content[0].text.value == "Paris is the capital."
    assert msgs[-1].run_id == run.id and msgs[-1].status == "completed" and msgs[-1].assistant_id == a
    assert [m.id for m in sdk.beta.threads.messages.list(t.id, run_id=run.id).data] == [msgs[-1].id]
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id).data
    assert len(steps) == 1 and steps[0].type == "message_creation" and steps[0].status == "completed"
    assert steps[0].step_details.message_creation.message_id == msgs[-1].id and steps[0].usage
    sent = model.requests[0]
    assert sent["messages"][0] == {"role": "system", "content": "You are terse."}
    assert (
        sent["messages"][-1] == {"role": "user", "content": "Capital of France?"} and sent["stream"] is True
    )
    got = sdk.beta.threads.runs.steps.retrieve(steps[0].id, thread_id=t.id, run_id=run.id)
    assert got.id == steps[0].id


def test_parallel_function_calls_round_trip(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        ToolCalls([Call("get_weather", {"city": "Paris"}), Call("get_weather", {"city": "Rome"})]),
        Text("Paris 21C, Rome 25C."),
    )
    a = assistant(sdk, tools=[WEATHER])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "Weather in Paris and Rome?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "requires_action" and run.required_action
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert [json.loads(c.function.arguments) for c in calls] == [{"city": "Paris"}, {"city": "Rome"}]
    assert all(c.id.startswith("call_") and c.function.name == "get_weather" for c in calls)
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id).data[0]
    assert step.type == "tool_calls" and step.status == "in_progress"
    assert [c.function.output for c in step.step_details.tool_calls] == [None, None]
    with pytest.raises(openai.BadRequestError, match="Expected tool outputs"):
        sdk.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=t.id, tool_outputs=[{"tool_call_id": calls[0].id, "output": "21C"}]
        )
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=t.id,
        tool_outputs=[
            {"tool_call_id": calls[0].id, "output": "21C"},
            {"tool_call_id": calls[1].id, "output": "25C"},
        ],
    )
    assert run.status == "completed" and run.required_action is None
    step = sdk.beta.threads.runs.steps.retrieve(step.id, thread_id=t.id, run_id=run.id)
    assert step.status == "completed" and [c.function.output for c in step.step_details.tool_calls] == [
        "21C",
        "25C",
    ]
    resumed = model.requests[1]["messages"]
    assert resumed[-3]["tool_calls"][0]["id"] == calls[0].id
    assert resumed[-2:] == [
        {"role": "tool", "tool_call_id": calls[0].id, "content": "21C"},
        {"role": "tool", "tool_call_id": calls[1].id, "content": "25C"},
    ]
    with pytest.raises(openai.BadRequestError, match='Runs in status "completed" do not accept tool outputs'):
        sdk.beta.threads.runs.submit_tool_outputs(
            run.id, thread_id=t.id, tool_outputs=[{"tool_call_id": calls[0].id, "output": "x"}]
        )


def test_thread_lock_is_400_while_run_waits(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]))
    a = assistant(sdk, tools=[WEATHER])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "Oslo?"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as err:
        sdk.beta.threads.messages.create(t.id, role="user", content="more")
    assert err.value.status_code == 400
    assert err.value.body["message"] == f"Can't add messages to {t.id} while a run {run.id} is active."  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as err:
        sdk.beta.threads.runs.create(thread_id=t.id, assistant_id=a)
    assert err.value.body["message"] == f"Thread {t.id} already has an active run {run.id}."  # type: ignore[index]
    cancelled = sdk.beta.threads.runs.cancel(run.id, thread_id=t.id)
    assert cancelled.status == "cancelling"
    final = sdk.beta.threads.runs.poll(run.id, thread_id=t.id)
    assert final.status == "cancelled" and final.cancelled_at
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id).data[0]
    assert step.status == "cancelled"
    with pytest.raises(openai.BadRequestError, match="Cannot cancel run with status 'cancelled'"):
        sdk.beta.threads.runs.cancel(run.id, thread_id=t.id)
    sdk.beta.threads.messages.create(t.id, role="user", content="unlocked now")


def test_cancel_while_model_is_writing(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    gate = Gate()
    model.script(
        Text("one two three four", pieces=["one", " two", " three", " four"], pause=gate, pause_after=1)
    )
    a = assistant(sdk)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "count"}])
    run = sdk.beta.threads.runs.create(thread_id=t.id, assistant_id=a)
    while not sdk.beta.threads.messages.list(t.id, run_id=run.id).data:  # wait for the answer to begin
        pass
    assert sdk.beta.threads.runs.cancel(run.id, thread_id=t.id).status == "cancelling"
    final = sdk.beta.threads.runs.poll(run.id, thread_id=t.id)
    gate.set()
    assert final.status == "cancelled"
    msg = sdk.beta.threads.messages.list(t.id, run_id=run.id).data[0]
    assert msg.status == "incomplete" and msg.incomplete_details.reason == "run_cancelled"


def test_create_and_run_and_run_listing(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("hi"))
    a = assistant(sdk)
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=a, thread={"messages": [{"role": "user", "content": "hello"}]}, metadata={"tag": "x"}
    )
    assert run.status == "completed" and run.metadata == {"tag": "x"}
    assert sdk.beta.threads.runs.list(run.thread_id).data[0].id == run.id
    updated = sdk.beta.threads.runs.update(run.id, thread_id=run.thread_id, metadata={"tag": "y"})
    assert updated.metadata == {"tag": "y"}
    assert sdk.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id).metadata == {"tag": "y"}


def test_prompt_assembly_overrides(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("a"), Text("b"))
    a = assistant(sdk, tools=[WEATHER])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": f"m{i}"} for i in range(5)])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a,
        instructions="Override.",
        additional_instructions="Also this.",
        additional_messages=[{"role": "user", "content": "extra"}],
        truncation_strategy={"type": "last_messages", "last_messages": 2},
        tool_choice="none",
    )
    assert run.status == "completed" and run.instructions == "Override.\n\nAlso this."
    sent = model.requests[0]
    assert sent["messages"] == [
        {"role": "system", "content": "Override.\n\nAlso this."},
        {"role": "user", "content": "m4"},
        {"role": "user", "content": "extra"},
    ]
    assert "tools" not in sent
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a, tools=[], temperature=0.2, model="other-model"
    )
    assert model.requests[1]["model"] == "other-model" and model.requests[1]["temperature"] == 0.2
    assert "tools" not in model.requests[1] and run.tools == []


def test_named_tool_choice_is_sent(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("get_weather", {"city": "Lima"})]))
    a = assistant(sdk, tools=[WEATHER])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "go"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    assert run.status == "requires_action" and run.parallel_tool_calls is False
    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == ["get_weather"]
    sdk.beta.threads.runs.cancel(run.id, thread_id=t.id)


@pytest.mark.parametrize(
    ("turn", "code"),
    [
        (HttpError(500), "server_error"),
        (HttpError(429, message="slow down"), "rate_limit_exceeded"),
        (StreamError(pieces=["partial"]), "server_error"),
        (Malformed(), "server_error"),
    ],
)
def test_model_faults_fail_the_run(sdk: openai.OpenAI, model: ScriptedModel, turn: object, code: str) -> None:
    model.script(*[turn] * 4)  # type: ignore[list-item]
    a = assistant(sdk)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "failed" and run.failed_at and run.last_error
    assert run.last_error.code == code and run.last_error.message
    sdk.beta.threads.messages.create(t.id, role="user", content="thread is unlocked")


def test_invalid_tool_calls_are_fed_back_then_fail(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("no_such_tool", {})]), Text("Sorry, done."))
    a = assistant(sdk, tools=[WEATHER])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "completed"
    tool_msg = model.requests[1]["messages"][-1]
    assert tool_msg["role"] == "tool" and "no tool named 'no_such_tool'" in tool_msg["content"]
    assert "get_weather" in tool_msg["content"]
    model.script(*[ToolCalls([Call("get_weather", "{not json at all")])] * 3)
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "failed" and "invalid tool calls" in run.last_error.message  # type: ignore[union-attr]


def test_max_completion_tokens_ends_incomplete(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("w " * 300, pieces=["w "] * 300, finish_reason="length"))
    a = assistant(sdk)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "long"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a, max_completion_tokens=256)
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
    assert model.requests[0]["max_tokens"] == 256
    msg = sdk.beta.threads.messages.list(t.id, run_id=run.id).data[0]
    assert msg.status == "incomplete" and msg.incomplete_details.reason == "max_tokens"  # type: ignore[union-attr]


def test_max_prompt_tokens_ends_incomplete(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    a = assistant(sdk)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "word " * 3000}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=t.id,
        assistant_id=a,
        max_prompt_tokens=256,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
    )
    assert run.status == "incomplete" and run.incomplete_details.reason == "max_prompt_tokens"  # type: ignore[union-attr]
    assert model.requests == []


def test_run_errors_before_start(engine_server: LiveServer, sdk: openai.OpenAI) -> None:
    t = sdk.beta.threads.create()
    with pytest.raises(openai.NotFoundError, match="asst_missing"):
        sdk.beta.threads.runs.create(thread_id=t.id, assistant_id="asst_missing")
    with pytest.raises(openai.NotFoundError, match="run_missing"):
        sdk.beta.threads.runs.retrieve("run_missing", thread_id=t.id)
    r = httpx.post(
        f"{engine_server.url}/v1/threads/{t.id}/runs",
        json={"assistant_id": "x", "stream": "yes"},
        headers={"Authorization": "Bearer sk-test"},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream"


def test_poll_header_is_short(engine_server: LiveServer, sdk: openai.OpenAI, model: ScriptedModel) -> None:
    a = assistant(sdk)
    t = sdk.beta.threads.create()
    raw = sdk.beta.threads.runs.with_raw_response.create(thread_id=t.id, assistant_id=a)
    assert int(raw.headers["openai-poll-after-ms"]) <= 200
    sdk.beta.threads.runs.poll(raw.parse().id, thread_id=t.id)


def test_forced_tool_must_be_offered(sdk: openai.OpenAI) -> None:
    a = assistant(sdk, tools=[WEATHER])
    t = sdk.beta.threads.create()
    with pytest.raises(openai.BadRequestError) as err:
        sdk.beta.threads.runs.create(
            thread_id=t.id, assistant_id=a, tool_choice={"type": "function", "function": {"name": "nope"}}
        )
    assert err.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError):
        sdk.beta.threads.runs.create(thread_id=t.id, assistant_id=a, tool_choice={"type": "code_interpreter"})


def test_deleting_a_thread_stops_its_run(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    gate = Gate()
    model.script(ToolCalls([Call("calculator", {"expression": "1+1"})], gate=gate), Text("second thread"))
    a = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}]).id  # type: ignore[list-item]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    run = sdk.beta.threads.runs.create(thread_id=t.id, assistant_id=a)
    while not model.requests:  # the model has been asked
        pass
    assert sdk.beta.threads.delete(t.id).deleted
    gate.set()
    with pytest.raises(openai.NotFoundError):
        sdk.beta.threads.runs.retrieve(run.id, thread_id=t.id)
    # a stopped run never asks the model again: the next scripted answer goes to the next run
    other = sdk.beta.threads.create_and_run_poll(
        assistant_id=a, thread={"messages": [{"role": "user", "content": "y"}]}
    )
    assert sdk.beta.threads.messages.list(other.thread_id).data[0].content[0].text.value == "second thread"  # type: ignore[union-attr]
    assert len(model.requests) == 2


def test_auto_truncation_keeps_the_prompt_within_budget(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    a = assistant(sdk)
    t = sdk.beta.threads.create(
        messages=[{"role": "user", "content": f"m{i} " + "word " * 200} for i in range(10)]
    )
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a, max_prompt_tokens=1000)
    assert run.status == "completed"
    sent = [m["content"].split()[0] for m in model.requests[0]["messages"] if m["role"] == "user"]
    assert 0 < len(sent) < 10 and sent[-1] == "m9" and sent == [f"m{i}" for i in range(10 - len(sent), 10)]


def test_turn_cap_fails_a_looping_run(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(*[ToolCalls([Call("calculator", {"expression": "1+1"})]) for _ in range(30)])
    a = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}]).id  # type: ignore[list-item]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "loop"}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a)
    assert run.status == "failed" and "25 model turns" in run.last_error.message  # type: ignore[union-attr]
    assert len(model.requests) == 25


def test_model_server_down_fails_fast(client: openai.OpenAI) -> None:
    a = client.beta.assistants.create(model="m")
    t = client.beta.threads.create(messages=[{"role": "user", "content": "anyone?"}])
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "failed" and run.last_error.code == "server_error"  # type: ignore[union-attr]
    assert "127.0.0.1:9" in run.last_error.message  # type: ignore[union-attr]


def test_concurrent_run_creates_one_wins(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    import concurrent.futures

    gate = Gate()
    model.script(Text("held", gate=gate))
    a = assistant(sdk)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "race"}])

    def create(_: int) -> str:
        try:
            return sdk.beta.threads.runs.create(thread_id=t.id, assistant_id=a).id
        except openai.BadRequestError as err:
            assert "already has an active run" in err.message
            return ""

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        ids = [i for i in pool.map(create, range(8)) if i]
    gate.set()
    assert len(ids) == 1
    assert sdk.beta.threads.runs.poll(ids[0], thread_id=t.id).status == "completed"
    assert [r.id for r in sdk.beta.threads.runs.list(thread_id=t.id).data] == ids


def test_models_lists_backend_and_aliases(engine_server: LiveServer, sdk: openai.OpenAI) -> None:
    ids = [m.id for m in sdk.models.list()]
    assert "stories260K.gguf" in ids
    assert sdk.models.retrieve("stories260K.gguf").id == "stories260K.gguf"
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-nope")
