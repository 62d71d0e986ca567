"""The OpenAI Agents SDK end to end against our base URL: its Responses model with an AsyncOpenAI client,
hosted CodeInterpreterTool and FileSearchTool running here (the scripted model decides the calls, the real
Docker sandbox runs the code). Tracing is disabled: nothing leaves the machine."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from agents import (
    Agent,
    CodeInterpreterTool,
    FileSearchTool,
    ModelSettings,
    OpenAIResponsesModel,
    Runner,
    set_tracing_disabled,
)
from agents.items import MessageOutputItem, ToolCallItem
from openai.types.responses import ResponseCodeInterpreterToolCall, ResponseFileSearchToolCall

from tests.conftest import LiveServer
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls

set_tracing_disabled(True)
CHART = (
    "import matplotlib.pyplot as plt\nprimes = [2, 3, 5, 7, 11]\nprint('sum', sum(primes))\n"
    "plt.bar(range(5), primes)\nplt.savefig('/mnt/data/primes.png')\nplt.show()"
)


async def client_for(server: LiveServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def async_ci(ci_server: LiveServer, model: ScriptedModel) -> AsyncIterator[openai.AsyncOpenAI]:
    async for c in client_for(ci_server):
        yield c


@pytest.fixture
async def async_engine(engine_server: LiveServer, model: ScriptedModel) -> AsyncIterator[openai.AsyncOpenAI]:
    async for c in client_for(engine_server):
        yield c


def analyst(client: openai.AsyncOpenAI) -> Agent:
    return Agent(
        name="analyst",
        instructions="Compute with code and draw charts.",
        model=OpenAIResponsesModel(model="local", openai_client=client),
        model_settings=ModelSettings(response_include=["code_interpreter_call.outputs"]),
        tools=[CodeInterpreterTool(tool_config={"type": "code_interpreter", "container": {"type": "auto"}})],
    )


def chart_turns() -> list[ToolCalls | Text]:
    return [
        ToolCalls([Call("code_interpreter", {"code": CHART})]),
        Text("The primes sum to 28; chart drawn."),
    ]


def image_url(call: ResponseCodeInterpreterToolCall) -> str:
    images = [o for o in call.outputs or [] if o.type == "image"]
    assert images, call.outputs
    return images[0].url  # type: ignore[union-attr]


def check_chart(server: LiveServer, items: list[object]) -> None:
    calls = [i.raw_item for i in items if isinstance(i, ToolCallItem)]
    call = calls[0]
    assert isinstance(call, ResponseCodeInterpreterToolCall) and call.code == CHART
    logs = [o.logs for o in call.outputs or [] if o.type == "logs"]  # type: ignore[union-attr]
    assert logs and "sum 28" in logs[0]
    png = httpx.get(image_url(call), headers={"Authorization": "Bearer sk-test"}, timeout=30)
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    sync = server.client()
    files = {f.path for f in sync.containers.files.list(call.container_id)}
    assert "/mnt/data/primes.png" in files


@pytest.mark.docker
async def test_code_interpreter_agent_draws_a_chart(
    ci_server: LiveServer, async_ci: openai.AsyncOpenAI, model: ScriptedModel
) -> None:
    model.script(*chart_turns())
    result = await Runner.run(analyst(async_ci), "Sum the first five primes and chart them.")
    assert result.final_output == "The primes sum to 28; chart drawn."
    check_chart(ci_server, result.new_items)
    sent = model.requests[0]
    assert sent["tools"][0]["function"]["name"] == "code_interpreter"


@pytest.mark.docker
async def test_code_interpreter_agent_streamed(
    ci_server: LiveServer, async_ci: openai.AsyncOpenAI, model: ScriptedModel
) -> None:
    model.script(*chart_turns())
    result = Runner.run_streamed(analyst(async_ci), "Sum the first five primes and chart them.")
    kinds = [e.data.type async for e in result.stream_events() if e.type == "raw_response_event"]
    assert "response.code_interpreter_call_code.delta" in kinds
    assert kinds.index("response.code_interpreter_call.interpreting") < kinds.index(
        "response.code_interpreter_call.completed"
    )
    assert result.final_output == "The primes sum to 28; chart drawn."
    check_chart(ci_server, result.new_items)


POLICY = "Refunds are accepted within 45 days of purchase with a receipt."


def librarian(client: openai.AsyncOpenAI, vs_id: str) -> Agent:
    return Agent(
        name="librarian",
        instructions="Answer from the files and cite them.",
        model=OpenAIResponsesModel(model="local", openai_client=client),
        tools=[FileSearchTool(vector_store_ids=[vs_id], max_num_results=3, include_search_results=True)],
    )


def upload_policy(server: LiveServer) -> tuple[str, str]:
    sync = server.client()
    vs = sync.vector_stores.create(name="policies")
    f = sync.vector_stores.files.upload_and_poll(
        vector_store_id=vs.id, file=("refunds.txt", io.BytesIO(POLICY.encode()))
    )
    assert f.status == "completed"
    return vs.id, f.id


def check_citation(items: list[object], file_id: str) -> None:
    call = next(i.raw_item for i in items if isinstance(i, ToolCallItem))
    assert isinstance(call, ResponseFileSearchToolCall) and call.queries == ["refund window"]
    assert call.results and call.results[0].file_id == file_id and "45 days" in (call.results[0].text or "")
    message = next(i.raw_item for i in items if isinstance(i, MessageOutputItem))
    part = message.content[0]
    assert part.type == "output_text" and "45 days" in part.text
    cites = [a for a in part.annotations if a.type == "file_citation"]
    assert cites and cites[0].file_id == file_id and cites[0].filename == "refunds.txt"


SEARCH_TURNS = (
    ToolCalls([Call("file_search", {"query": "refund window"})]),
    Text("Within 45 days 【0†refunds.txt】."),
)


async def test_file_search_agent_answers_with_a_citation(
    engine_server: LiveServer, async_engine: openai.AsyncOpenAI, model: ScriptedModel
) -> None:
    vs_id, file_id = upload_policy(engine_server)
    model.script(*SEARCH_TURNS)
    result = await Runner.run(librarian(async_engine, vs_id), "How long do I have for a refund?")
    assert result.final_output == "Within 45 days 【0†refunds.txt】."
    check_citation(result.new_items, file_id)


async def test_file_search_agent_streamed(
    engine_server: LiveServer, async_engine: openai.AsyncOpenAI, model: ScriptedModel
) -> None:
    vs_id, file_id = upload_policy(engine_server)
    model.script(*SEARCH_TURNS)
    result = Runner.run_streamed(librarian(async_engine, vs_id), "How long do I have for a refund?")
    kinds = [e.data.type async for e in result.stream_events() if e.type == "raw_response_event"]
    assert "response.file_search_call.searching" in kinds and "response.output_text.annotation.added" in kinds
    check_citation(result.new_items, file_id)
