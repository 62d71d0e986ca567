"""The client on exactly the recorded bytes: each recorded response body is replayed, split where the
recording's chunked encoding split it, by a real aiohttp server (the fake's `Raw` turn)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.llm import Completion, ContextOverflowError, ModelError, OpenAICompatModel, ToolCallDelta
from tests.fakes.model_server import Raw, ScriptedModel

from .helpers import TOOLS, calls, collect, request
from .recorded import RECORDED, load

BACKENDS = Path(__file__).parent / "fixtures"


async def test_text_stream(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Raw.from_fixture(RECORDED / "11_chat_stream.txt"))
    done = (await collect(client, request()))[-1]
    assert isinstance(done, Completion)
    assert (done.text, done.finish_reason, done.usage) == ('"Here!" Asked P', "length", None)


async def test_text_stream_with_usage(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Raw.from_fixture(RECORDED / "12_chat_stream_usage.txt"))
    done = (await collect(client, request()))[-1]
    assert isinstance(done, Completion) and done.usage is not None and done.usage.total_tokens == 109


async def test_parallel_tool_call_stream(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Raw.from_fixture(RECORDED / "41_prefill_eosbias_parallel_stream.txt"))
    events = await collect(client, request(tools=TOOLS))
    done = events[-1]
    assert isinstance(done, Completion) and len(done.tool_calls) == 6
    assert [c.error is None for c in done.tool_calls] == [True] * 5 + [False]
    first = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == 0)
    assert first == '{ "tz" : "Yes," }'


async def test_single_tool_call_stream(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Raw.from_fixture(RECORDED / "39_prefill_eosbias_stream.txt"))
    done = (await collect(client, request(tools=TOOLS, parallel_tool_calls=False)))[-1]
    assert isinstance(done, Completion) and calls(done) == [("get_time", {"tz": "Yes,"})]


async def test_error_event_mid_stream_without_done(fake: ScriptedModel) -> None:
    fake.script(*[Raw.from_fixture(RECORDED / "48_auto_prefill_stream.txt")] * 3)
    model = OpenAICompatModel(fake.url, retry_backoff=0.01)
    try:
        with pytest.raises(ModelError) as err:
            await collect(model, request(tools=TOOLS))
    finally:
        await model.close()
    assert err.value.code == "server_error"
    assert err.value.message == (
        "model server failed mid-stream: The model produced output that does not "
        "match the expected peg-native format"
    )
    assert len(fake.requests) == 3  # nothing was yielded, so it was retried


@pytest.mark.parametrize("name", ["5x_err_overflow.txt", "60_overflow_stream.txt"])
async def test_context_overflow(fake: ScriptedModel, client: OpenAICompatModel, name: str) -> None:
    fake.script(Raw.from_fixture(RECORDED / name))
    with pytest.raises(ContextOverflowError) as err:
        await collect(client, request())
    assert err.value.message == (
        "model server returned 400: request (4613 tokens) exceeds the available "
        "context size (2048 tokens), try increasing it"
    )


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("47_auto_prefill.txt", 500),
        ("92_nojinja_toolchoice.txt", 500),
        ("5x_err_bad_tool_choice.txt", 400),
        ("80_auth_missing.txt", 401),
        ("61_not_found.txt", 404),
    ],
)
async def test_http_errors(fake: ScriptedModel, name: str, code: int) -> None:
    fake.script(*[Raw.from_fixture(RECORDED / name)] * 3)
    model = OpenAICompatModel(fake.url, retry_backoff=0.01)
    try:
        with pytest.raises(ModelError) as err:
            await collect(model, request())
    finally:
        await model.close()
    message = load(name).chunks()[0]["error"]["message"]
    assert err.value.message == f"model server returned {code}: {message}"
    assert not isinstance(err.value, ContextOverflowError)
    assert len(fake.requests) == (3 if code >= 500 else 1)


@pytest.mark.parametrize("name", sorted(p.name for p in BACKENDS.glob("*.sse")))
async def test_backend_streams_through_the_client(
    fake: ScriptedModel, client: OpenAICompatModel, name: str
) -> None:
    fake.script(Raw(chunks=[(BACKENDS / name).read_bytes()]))
    await collect(client, request(tools=TOOLS))
