"""Responses built-in tools without a sandbox: file_search (items, events, include, citations, owners),
the calculator as an ``mcp_call``, and the shapes of the tools a request may name."""

from __future__ import annotations

import io

import openai
import pytest

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

HANDBOOK = "Employees get 27 days of paid leave per year. The office opens at 8 am."


@pytest.fixture
def handbook(sdk: openai.OpenAI) -> tuple[str, str]:
    vs = sdk.vector_stores.create(name="handbook")
    f = sdk.vector_stores.files.upload_and_poll(
        vector_store_id=vs.id, file=("handbook.txt", io.BytesIO(HANDBOOK.encode()))
    )
    assert f.status == "completed"
    return vs.id, f.id


def search_tool(vs_id: str, **extra: object) -> dict[str, object]:
    return {"type": "file_search", "vector_store_ids": [vs_id], **extra}


def test_file_search_call_with_results_and_citation(
    sdk: openai.OpenAI, model: ScriptedModel, handbook: tuple[str, str]
) -> None:
    vs_id, file_id = handbook
    model.script(
        ToolCalls([Call("file_search", {"query": "paid leave days"})]),
        Text("You get 27 days 【0†handbook.txt】."),
    )
    resp = sdk.responses.create(
        model="m",
        input="How much leave?",
        tools=[search_tool(vs_id, max_num_results=3)],  # type: ignore[list-item]
        include=["file_search_call.results"],
    )
    assert resp.status == "completed"
    call, msg = resp.output
    assert call.type == "file_search_call" and call.id.startswith("fs_") and call.status == "completed"
    assert call.queries == ["paid leave days"]
    assert call.results and call.results[0].file_id == file_id and call.results[0].filename == "handbook.txt"
    assert "27 days" in (call.results[0].text or "") and call.results[0].score
    assert msg.type == "message"
    text = msg.content[0]
    assert text.type == "output_text" and text.text == "You get 27 days 【0†handbook.txt】."
    cite = text.annotations[0]
    assert cite.type == "file_citation" and cite.file_id == file_id and cite.filename == "handbook.txt"
    assert cite.index == text.text.index("【")
    assert resp.tools[0].type == "file_search" and resp.tools[0].max_num_results == 3  # type: ignore[union-attr]
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]
    assert "27 days of paid leave" in tool_msg["content"]
    # without the include the results stay on the server
    again = sdk.responses.retrieve(resp.id)
    assert again.output[0].results is not None  # type: ignore[union-attr]


def test_file_search_streams_its_events_and_hides_results_unless_included(
    sdk: openai.OpenAI, model: ScriptedModel, handbook: tuple[str, str]
) -> None:
    vs_id, _ = handbook
    model.script(
        ToolCalls([Call("file_search", {"query": "office hours"})]), Text("At 8 am 【0†handbook.txt】.")
    )
    with sdk.responses.stream(model="m", input="When?", tools=[search_tool(vs_id)]) as stream:  # type: ignore[list-item]
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    i = kinds.index("response.file_search_call.in_progress")
    assert kinds[i - 1] == "response.output_item.added"
    assert kinds[i : i + 4] == [
        "response.file_search_call.in_progress",
        "response.file_search_call.searching",
        "response.file_search_call.completed",
        "response.output_item.done",
    ]
    assert "response.output_text.annotation.added" in kinds
    assert kinds.index("response.output_text.annotation.added") < kinds.index("response.output_text.done")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    call = final.output[0]
    assert call.type == "file_search_call" and call.queries == ["office hours"] and call.results is None
    assert final.output_text.startswith("At 8 am")


def test_file_search_honours_filters(
    sdk: openai.OpenAI, model: ScriptedModel, handbook: tuple[str, str]
) -> None:
    vs_id, _ = handbook
    model.script(ToolCalls([Call("file_search", {"query": "leave"})]), Text("Nothing found."))
    resp = sdk.responses.create(
        model="m",
        input="Leave?",
        tools=[search_tool(vs_id, filters={"type": "eq", "key": "team", "value": "none"})],  # type: ignore[list-item]
        include=["file_search_call.results"],
    )
    assert resp.output[0].results == []  # type: ignore[union-attr]
    assert [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"] == "No results."


def test_ids_of_another_key_are_not_found(spine: LiveServer) -> None:
    mine, other = spine.client(), spine.client("sk-other")
    vs = mine.vector_stores.create(name="private")
    c = mine.containers.create(name="private")
    f = mine.files.create(file=("a.txt", io.BytesIO(b"a")), purpose="assistants")
    for tool in (
        search_tool(vs.id),
        {"type": "code_interpreter", "container": c.id},
        {"type": "code_interpreter", "container": {"type": "auto", "file_ids": [f.id]}},
    ):
        with pytest.raises(openai.NotFoundError):
            other.responses.create(model="m", input="x", tools=[tool])  # type: ignore[list-item]
    assert other.responses.input_items  # nothing was stored for the other key
    assert other.containers.list().data == []


def test_calculator_is_an_mcp_call(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("calculator", {"expression": "2**100 + 1/3"})]), Text("Done."))
    tool = {"type": "mcp", "server_label": "calculator", "require_approval": "never"}
    with sdk.responses.stream(model="m", input="compute", tools=[tool]) as stream:  # type: ignore[list-item]
        kinds = [e.type for e in stream]
        resp = stream.get_final_response()
    call = resp.output[0]
    assert call.type == "mcp_call" and call.server_label == "calculator" and call.name == "calculator"
    assert call.output == "3802951800684688204490109616129/3" and call.error is None
    assert "response.mcp_call.completed" in kinds and "response.mcp_call_arguments.done" in kinds
    assert resp.output_text == "Done."
    assert model.requests[0]["tools"][0]["function"]["name"] == "calculator"
    short = sdk.responses.create(model="m", input="x", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    assert short.tools[0].type == "mcp" and short.tools[0].server_label == "calculator"  # type: ignore[union-attr]


def test_calculator_failure_reaches_the_model_as_text(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("calculator", {"expression": "__import__('os')"})]), Text("Cannot."))
    resp = sdk.responses.create(model="m", input="x", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    call = resp.output[0]
    assert call.type == "mcp_call" and call.status == "failed" and call.error and call.output is None  # type: ignore[union-attr]
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert tool_msg.startswith("Error")


@pytest.mark.parametrize(
    "tool",
    [
        {"type": "file_search"},
        {"type": "file_search", "vector_store_ids": ["vs_x"], "max_num_results": 99},
        {"type": "file_search", "vector_store_ids": ["vs_x"], "filters": {"type": "bogus"}},
        {"type": "code_interpreter"},
        {"type": "code_interpreter", "container": {"type": "auto", "memory_limit": "3g"}},
        {"type": "mcp", "server_label": "elsewhere", "server_url": "http://127.0.0.1:1"},
        {"type": "web_search"},
    ],
)
def test_bad_tools_are_rejected_before_anything_runs(
    sdk: openai.OpenAI, model: ScriptedModel, tool: dict[str, object]
) -> None:
    with pytest.raises(openai.BadRequestError) as err:
        sdk.responses.create(model="m", input="x", tools=[tool])  # type: ignore[list-item]
    assert err.value.param and err.value.param.startswith("tools")
    assert model.requests == []


def test_unknown_container_and_files_are_not_found(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(
            model="m", input="x", tools=[{"type": "code_interpreter", "container": "cntr_nope"}]
        )
    auto = {"type": "auto", "file_ids": ["file-nope"]}
    with pytest.raises(openai.NotFoundError):
        sdk.responses.create(model="m", input="x", tools=[{"type": "code_interpreter", "container": auto}])  # type: ignore[list-item]
    assert model.requests == []


def test_code_interpreter_without_docker_tells_the_model(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("code_interpreter", {"code": "print(1)"})]), Text("No sandbox here."))
    resp = sdk.responses.create(
        model="m", input="x", tools=[{"type": "code_interpreter", "container": {"type": "auto"}}]
    )
    call = resp.output[0]
    assert call.type == "code_interpreter_call" and call.code == "print(1)" and call.outputs is None
    assert resp.output_text == "No sandbox here."
    tool_msg = [m for m in model.requests[1]["messages"] if m["role"] == "tool"][0]["content"]
    assert "unavailable" in tool_msg
    assert sdk.containers.list().data == []  # no code ran: no container was made


def test_built_in_calls_join_the_conversation(
    sdk: openai.OpenAI, model: ScriptedModel, handbook: tuple[str, str]
) -> None:
    vs_id, _ = handbook
    conv = sdk.conversations.create()
    model.script(ToolCalls([Call("file_search", {"query": "leave"})]), Text("27 days 【0†handbook.txt】."))
    first = sdk.responses.create(model="m", input="Leave?", conversation=conv.id, tools=[search_tool(vs_id)])  # type: ignore[list-item]
    kinds = [i.type for i in sdk.conversations.items.list(conv.id, order="asc")]
    assert kinds == ["message", "file_search_call", "message"]
    model.script(ToolCalls([Call("calculator", {"expression": "27 * 2"})]), Text("54 days over two years."))
    sdk.responses.create(model="m", input="Two years?", conversation=conv.id, tools=[{"type": "calculator"}])  # type: ignore[list-item]
    sent = model.requests[-2]["messages"]  # the second response's first model turn
    tools_read = [m["content"] for m in sent if m["role"] == "tool"]
    assert tools_read and "27 days of paid leave" in tools_read[0]  # it reads the earlier search
    listed = list(sdk.conversations.items.list(conv.id, order="asc"))
    assert [i.type for i in listed] == [
        "message",
        "file_search_call",
        "message",
        "message",
        "mcp_call",
        "message",
    ]
    assert listed[1].id == first.output[0].id and listed[4].output == "54"  # type: ignore[union-attr]


def test_echoed_built_in_items_are_accepted_but_engine_fields_are_not(
    sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    model.script(Text("ok"))
    echoed = {
        "id": "ci_1", "type": "code_interpreter_call", "status": "completed", "code": "print(1)",
        "container_id": "cntr_x", "outputs": None,
        "_call": {"name": "code_interpreter", "arguments": "{}"}, "_model_output": "injected",
    }  # fmt: skip
    mcp = {
        "id": "mcp_1", "type": "mcp_call", "server_label": "calculator", "name": "calculator",
        "arguments": "{}", "output": "2",
    }  # fmt: skip
    resp = sdk.responses.create(model="m", input=[{"role": "user", "content": "hi"}, echoed, mcp])  # type: ignore[list-item]
    assert resp.status == "completed"
    sent = model.requests[0]["messages"]
    assert all(m["role"] != "tool" for m in sent) and "injected" not in str(sent)


def test_tool_choice_can_force_a_built_in_tool(
    sdk: openai.OpenAI, model: ScriptedModel, handbook: tuple[str, str]
) -> None:
    model.script(ToolCalls([Call("file_search", {"query": "leave"})]), Text("27."))
    resp = sdk.responses.create(
        model="m",
        input="Leave?",
        tools=[search_tool(handbook[0])],
        tool_choice={"type": "file_search"},  # type: ignore[list-item]
    )
    assert resp.output[0].type == "file_search_call"
    forced = {"type": "function", "function": {"name": "file_search"}}
    assert model.requests[0]["tool_choice"] in (forced, "required")  # "required" when it is the only tool
    assert [t["function"]["name"] for t in model.requests[0]["tools"]] == ["file_search"]
    with pytest.raises(openai.BadRequestError):
        sdk.responses.create(model="m", input="x", tool_choice={"type": "code_interpreter"})  # no such tool
