"""/v1/conversations through the official SDK; a thread is a conversation and the other way round."""

from __future__ import annotations

import openai
import pytest

from tests.api.test_responses import WEATHER
from tests.conftest import LiveServer
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls


def test_conversation_crud_and_items(sdk: openai.OpenAI) -> None:
    conv = sdk.conversations.create(
        items=[{"type": "message", "role": "user", "content": "hello"}], metadata={"topic": "demo"}
    )
    assert (
        conv.id.startswith("conv_") and conv.object == "conversation" and conv.metadata == {"topic": "demo"}
    )
    assert sdk.conversations.retrieve(conv.id).id == conv.id
    assert sdk.conversations.update(conv.id, metadata={"topic": "other"}).metadata == {"topic": "other"}
    added = sdk.conversations.items.create(
        conv.id,
        items=[
            {"type": "message", "role": "assistant", "content": "hi!"},
            {"type": "message", "role": "user", "content": "bye"},
        ],
    )
    assert [i.type for i in added.data] == ["message", "message"]
    listed = sdk.conversations.items.list(conv.id, order="asc").data
    assert [(i.role, i.content[0].type) for i in listed] == [  # type: ignore[union-attr]
        ("user", "input_text"),
        ("assistant", "output_text"),
        ("user", "input_text"),
    ]
    first = sdk.conversations.items.list(conv.id, limit=1)  # desc by default, cursor pages
    assert first.data[0].id == listed[-1].id and first.has_more
    paged = [i.id for i in sdk.conversations.items.list(conv.id, limit=2, order="asc")]
    assert paged == [i.id for i in listed]
    got = sdk.conversations.items.retrieve(listed[1].id, conversation_id=conv.id)
    assert got.id == listed[1].id
    after_delete = sdk.conversations.items.delete(listed[1].id, conversation_id=conv.id)
    assert after_delete.id == conv.id
    assert len(sdk.conversations.items.list(conv.id).data) == 2
    deleted = sdk.conversations.delete(conv.id)
    assert deleted.deleted and deleted.object == "conversation.deleted"
    with pytest.raises(openai.NotFoundError):
        sdk.conversations.retrieve(conv.id)


def test_a_response_in_a_conversation_appends_its_items(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(
        ToolCalls([Call("get_weather", {"city": "Oslo"})]),
        Text("Sunny in Oslo."),
        Text("You asked about Oslo."),
    )
    conv = sdk.conversations.create()
    one = sdk.responses.create(model="local", input="Weather in Oslo?", conversation=conv.id, tools=[WEATHER])  # type: ignore[list-item]
    assert one.conversation and one.conversation.id == conv.id
    call = one.output[0]
    two = sdk.responses.create(
        model="local",
        conversation={"id": conv.id},
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],  # type: ignore[union-attr]
        tools=[WEATHER],  # type: ignore[list-item]
    )
    assert two.output_text == "Sunny in Oslo."
    three = sdk.responses.create(model="local", input="What did I ask?", conversation=conv.id)
    assert three.output_text == "You asked about Oslo."
    kinds = [(i.type, getattr(i, "role", None)) for i in sdk.conversations.items.list(conv.id, order="asc")]
    assert kinds == [
        ("message", "user"),
        ("function_call", None),
        ("function_call_output", None),
        ("message", "assistant"),
        ("message", "user"),
        ("message", "assistant"),
    ]
    sent = model.requests[2]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "assistant", "user"]


def test_a_thread_is_a_conversation(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(Text("Hi, I am the assistant."), Text("We said hello."))
    asst = sdk.beta.assistants.create(model="local")
    thread = sdk.beta.threads.create(messages=[{"role": "user", "content": "Hello"}])
    sdk.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id)
    items = sdk.conversations.items.list(thread.id, order="asc").data
    assert [(i.type, i.role) for i in items] == [("message", "user"), ("message", "assistant")]  # type: ignore[union-attr]
    resp = sdk.responses.create(model="local", input="What did we say?", conversation=thread.id)
    assert resp.output_text == "We said hello."
    assert [m["role"] for m in model.requests[1]["messages"]] == ["user", "assistant", "user"]
    msgs = sdk.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.content[0].text.value for m in msgs] == [  # type: ignore[union-attr]
        "Hello",
        "Hi, I am the assistant.",
        "What did we say?",
        "We said hello.",
    ]
    assert [r.id for r in sdk.beta.threads.runs.list(thread.id)] != [resp.id]  # responses are not runs


def test_conversations_belong_to_their_key(spine: LiveServer) -> None:
    conv = spine.client().conversations.create()
    other = spine.client(key="sk-other")
    with pytest.raises(openai.NotFoundError):
        other.conversations.retrieve(conv.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="local", input="hi", conversation=conv.id)
    with pytest.raises(openai.NotFoundError):
        other.conversations.items.list(conv.id)


def test_input_files_and_references_are_checked_for_their_owner(spine: LiveServer) -> None:
    mine = spine.client()
    other = spine.client(key="sk-other")
    f = mine.files.create(file=("notes.txt", b"secret notes"), purpose="assistants")
    part = {"type": "input_file", "file_id": f.id}
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="m", input=[{"role": "user", "content": [part]}])  # type: ignore[list-item]
    with pytest.raises(openai.NotFoundError):
        other.conversations.create(items=[{"type": "message", "role": "user", "content": [part]}])  # type: ignore[list-item]
    with pytest.raises(openai.BadRequestError) as err:
        other.responses.create(model="m", input="hi", previous_response_id="resp_" + "x" * 24)
    assert err.value.code == "previous_response_not_found"
