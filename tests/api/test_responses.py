"""/v1/responses through the official SDK against the scripted model."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, Gate, HttpError, ScriptedModel, Text, ToolCalls

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def test_create_answers_with_a_message_and_usage(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("Paris is the capital.", pieces=["Paris", " is the", " capital."]))
    resp = sdk.responses.create(model="local", input="Capital of France?", instructions="Be terse.")
    assert resp.status == "completed" and resp.id.startswith("resp_") and resp.completed_at
    assert resp.output_text == "Paris is the capital."
    item = resp.output[0]
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert item.id.startswith("msg_")
    assert resp.usage and resp.usage.output_tokens == 3 and resp.usage.total_tokens > 3
    assert resp.usage.input_tokens_details.cached_tokens == 0
    sent = model.requests[0]["messages"]
    assert sent == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Capital of France?"},
    ]
    again = sdk.responses.retrieve(resp.id)
    assert again.output_text == "Paris is the capital." and again.status == "completed"
    items = sdk.responses.input_items.list(resp.id).data
    assert [(i.type, i.role, i.content[0].text) for i in items] == [("message", "user", "Capital of France?")]


def test_stream_helper_sees_text_then_completed(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("Hello there", pieces=["Hel", "lo there"]))
    with sdk.responses.stream(model="local", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [d.delta for d in deltas] == ["Hel", "lo there"]
    assert all(d.logprobs == [] and d.output_index == 0 and d.content_index == 0 for d in deltas)
    assert final.output_text == "Hello there" and final.status == "completed"


def test_function_call_round_trip_with_previous_response_id(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]), Text("It is sunny in Oslo."))
    with sdk.responses.stream(model="local", input="Weather in Oslo?", tools=[WEATHER]) as stream:  # type: ignore[list-item]
        kinds = [e.type for e in stream]
        first = stream.get_final_response()
    assert (
        "response.function_call_arguments.delta" in kinds and "response.function_call_arguments.done" in kinds
    )
    assert first.status == "completed"
    call = first.output[0]
    assert call.type == "function_call" and call.name == "get_weather" and call.status == "completed"
    assert json.loads(call.arguments) == {"city": "Oslo"} and call.call_id.startswith("call_")
    assert call.id.startswith("fc_")
    second = sdk.responses.create(
        model="local",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}],
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert second.output_text == "It is sunny in Oslo." and second.previous_response_id == first.id
    sent = model.requests[1]["messages"]
    assert sent[0] == {"role": "user", "content": "Weather in Oslo?"}
    assert sent[1]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert sent[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 21C"}


def test_a_call_without_its_output_is_refused(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("get_weather", {"city": "Oslo"})]))
    first = sdk.responses.create(model="local", input="Weather?", tools=[WEATHER])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError, match="No tool output found for function call"):
        sdk.responses.create(model="local", previous_response_id=first.id, input="and?", tools=[WEATHER])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError, match="No tool call found for function call output"):
        sdk.responses.create(
            model="local", input=[{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]
        )


def test_previous_response_chain_carries_the_history(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("Hi Ada."), Text("Your name is Ada."))
    one = sdk.responses.create(model="local", input="My name is Ada.", instructions="first")
    two = sdk.responses.create(model="local", input="What is my name?", previous_response_id=one.id)
    assert two.output_text == "Your name is Ada." and two.instructions is None
    assert model.requests[1]["messages"] == [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": "Hi Ada."},
        {"role": "user", "content": "What is my name?"},
    ]  # instructions are not inherited


def test_store_false_keeps_nothing(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("ok"))
    resp = sdk.responses.create(model="local", input="hi", store=False)
    assert resp.output_text == "ok" and resp.status == "completed"
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(resp.id)
    with pytest.raises(openai.BadRequestError) as err:
        sdk.responses.create(model="local", input="again", previous_response_id=resp.id)
    assert err.value.code == "previous_response_not_found"


def test_max_output_tokens_makes_it_incomplete(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("a b c d", finish_reason="length"))
    with sdk.responses.stream(model="local", input="talk", max_output_tokens=16) as stream:
        events = list(stream)
    assert events[-1].type == "response.incomplete"
    final = events[-1].response  # type: ignore[union-attr]
    assert final.status == "incomplete" and final.incomplete_details.reason == "max_output_tokens"
    done = [e for e in events if e.type == "response.output_item.done"]
    assert done[0].item.status == "incomplete"  # type: ignore[union-attr]


def test_model_failure_fails_the_response_with_an_error_event(
    sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    model.script(*[HttpError(500)] * 3)
    resp = sdk.responses.create(model="local", input="hi")
    assert resp.status == "failed" and resp.error and resp.error.code == "server_error"
    model.script(*[HttpError(500)] * 3)
    with pytest.raises(openai.APIError), sdk.responses.stream(model="local", input="hi") as stream:
        for _ in stream:
            pass


def test_background_cancel_and_resumed_stream(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    gate = Gate()
    model.script(Text("one two three", pause=gate, pause_after=1))
    resp = sdk.responses.create(model="local", input="count", background=True)
    assert resp.status == "queued" and resp.background is True and resp.output == [] and resp.usage is None
    events = []
    with sdk.responses.retrieve(resp.id, stream=True) as stream:  # type: ignore[call-overload]
        for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta":
                break
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].type == "response.created" and events[1].type == "response.queued"
    gate.set()
    resumed = list(
        sdk.responses.retrieve(resp.id, stream=True, starting_after=events[-1].sequence_number)  # type: ignore[call-overload]
    )
    assert resumed[0].sequence_number == events[-1].sequence_number + 1
    assert resumed[-1].type == "response.completed"
    text = "".join(e.delta for e in [*events, *resumed] if e.type == "response.output_text.delta")
    assert text == "one two three"
    assert sdk.responses.cancel(resp.id).status == "completed"  # a finished response stays as it is

    gate2 = Gate()
    model.script(Text("never", gate=gate2))
    slow = sdk.responses.create(model="local", input="wait", background=True)
    cancelled = sdk.responses.cancel(slow.id)
    gate2.set()
    assert cancelled.status == "cancelled"
    assert sdk.responses.retrieve(slow.id).status == "cancelled"


def test_cancel_of_a_foreground_response_is_refused(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("ok"))
    resp = sdk.responses.create(model="local", input="hi")
    with pytest.raises(openai.BadRequestError, match="background"):
        sdk.responses.cancel(resp.id)


def test_delete_and_bad_input(sdk: openai.OpenAI, model: ScriptedModel, engine_server: LiveServer) -> None:
    model.script(Text("ok"))
    resp = sdk.responses.create(model="local", input="hi")
    sdk.responses.delete(resp.id)
    with pytest.raises(openai.NotFoundError):
        sdk.responses.retrieve(resp.id)
    with pytest.raises(openai.BadRequestError) as err:
        sdk.responses.create(model="local", input="x", previous_response_id="resp_x", conversation="conv_x")
    assert err.value.code == "mutually_exclusive_parameters"
    bad = [
        {"model": "local", "input": [{"role": "wizard", "content": "x"}]},
        {"model": "local", "input": "x", "temperature": 9},
        {"model": "local", "input": 5},
        {"input": "x"},
        {"model": "local", "input": "x", "tools": [{"type": "function"}]},
        {"model": "local", "input": "x", "tool_choice": {"type": "function", "name": "nope"}},
        {"model": "local", "input": "x", "background": True, "store": False},
        {"model": "local", "input": [{"type": "item_reference", "id": "msg_nope"}]},
    ]
    for body in bad:
        r = httpx.post(f"{engine_server.url}/v1/responses", json=body, headers={"Authorization": "Bearer k"})
        assert r.status_code in (400, 404), (body, r.text)
        assert set(r.json()["error"]) == {"message", "type", "param", "code"}


def test_input_tokens_counts(sdk: openai.OpenAI) -> None:
    small = sdk.responses.input_tokens.count(model="local", input="hi")
    big = sdk.responses.input_tokens.count(model="local", input="hi " * 400, instructions="be brief")
    assert small.object == "response.input_tokens" and 0 < small.input_tokens < big.input_tokens


def test_input_over_the_context_fails_as_the_clients_fault(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(HttpError.context_overflow())
    resp = sdk.responses.create(model="local", input="hi", truncation="disabled")
    assert resp.status == "failed" and resp.error and resp.error.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        sdk.responses.create(model="local", input="word " * 40_000)
    assert err.value.code == "context_length_exceeded"
