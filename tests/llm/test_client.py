"""OpenAICompatModel against the scripted llama-server fake: streaming, errors, retries, timeouts."""

from __future__ import annotations

import socket

import pytest

from agent.llm import (
    ChatRequest,
    Completion,
    ContextOverflowError,
    ModelError,
    OpenAICompatModel,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
)
from tests.fakes.model_server import (
    Call,
    Comments,
    Disconnect,
    Gate,
    HttpError,
    Malformed,
    ScriptedModel,
    StreamError,
    Text,
    ToolCalls,
)

from .helpers import TOOLS, calls, collect, request


async def test_text_streams_piece_by_piece(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Text(pieces=["Hel", "lo", " world"]))
    events = await collect(client, request())
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo", " world"]
    done = events[-1]
    assert isinstance(done, Completion)
    assert (done.text, done.finish_reason, done.tool_calls) == ("Hello world", "stop", [])
    assert done.usage is not None and done.usage.completion_tokens == 3
    assert done.usage.prompt_tokens == 6  # words in the messages, as the fake counts


async def test_the_request_carries_the_options(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fmt = {"type": "json_object"}
    await collect(
        client,
        request(
            tools=TOOLS,
            tool_choice="auto",
            parallel_tool_calls=False,
            temperature=0.5,
            top_p=0.9,
            max_tokens=64,
            response_format=fmt,
        ),
    )
    sent = fake.requests[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["tools"] == TOOLS and sent["tool_choice"] == "auto" and sent["parallel_tool_calls"] is False
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"], sent["response_format"]) == (
        0.5,
        0.9,
        64,
        fmt,
    )
    await collect(client, request())
    assert not {"tools", "tool_choice", "parallel_tool_calls", "temperature", "max_tokens"} & set(
        fake.requests[-1]
    )


async def test_tool_calls_get_our_ids_and_stream_in_order(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    fake.script(ToolCalls([Call("get_weather", {"city": "Paris"}), Call("get_time", '{"tz": "CET"}')]))
    events = await collect(client, request(tools=TOOLS))
    done = events[-1]
    assert isinstance(done, Completion) and done.finish_reason == "tool_calls"
    assert calls(done) == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    kinds = [type(e) for e in events]
    assert kinds.index(ToolCallStart) == 0 and kinds.count(ToolCallStart) == 2
    assert all(e.index == 0 for e in events[: kinds.index(ToolCallStart, 1)] if isinstance(e, ToolCallDelta))


async def test_aliases_map_model_names(fake: ScriptedModel) -> None:
    model = OpenAICompatModel(fake.url, aliases={"gpt-4o": "qwen", "*": "stories"})
    try:
        await collect(model, request(model="gpt-4o"))
        await collect(model, request(model="gpt-4o-mini"))
    finally:
        await model.close()
    assert [r["model"] for r in fake.requests] == ["qwen", "stories"]


async def test_api_key_is_sent_and_never_shown() -> None:
    async with ScriptedModel(api_key="sk-secret") as fake:
        good = OpenAICompatModel(fake.url, api_key="sk-secret")
        bad = OpenAICompatModel(fake.url, api_key="sk-wrong")
        try:
            await collect(good, request())
            with pytest.raises(ModelError) as err:
                await collect(bad, request())
        finally:
            await good.close()
            await bad.close()
    assert fake.headers[0]["Authorization"] == "Bearer sk-secret"
    assert "401" in err.value.message and "Invalid API Key" in err.value.message
    assert "sk-" not in err.value.message and "sk-" not in repr(bad)


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_retries_then_succeeds(fake: ScriptedModel, client: OpenAICompatModel, status: int) -> None:
    fake.script(HttpError(status), HttpError(status), Text("fine"))
    done = (await collect(client, request()))[-1]
    assert isinstance(done, Completion) and done.text == "fine"
    assert len(fake.requests) == 3


async def test_retries_exhausted(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(*[HttpError(500, "boom")] * 3)
    with pytest.raises(ModelError) as err:
        await collect(client, request())
    assert (err.value.code, err.value.message) == ("server_error", "model server returned 500: boom")
    assert len(fake.requests) == 3  # 1 + max_retries


async def test_rate_limit_code(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(*[HttpError(429, "slow down")] * 3)
    with pytest.raises(ModelError) as err:
        await collect(client, request())
    assert err.value.code == "rate_limit_exceeded" and "429" in err.value.message


async def test_client_errors_are_not_retried(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(HttpError(400, "Invalid tool_choice: foo"))
    with pytest.raises(ModelError, match="returned 400: Invalid tool_choice: foo"):
        await collect(client, request())
    assert len(fake.requests) == 1


async def test_context_overflow(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(HttpError.context_overflow())
    with pytest.raises(ContextOverflowError) as err:
        await collect(client, request())
    assert err.value.code == "server_error"
    assert "request (4613 tokens) exceeds the available context size (2048 tokens)" in err.value.message
    assert len(fake.requests) == 1


async def test_context_overflow_from_the_prompt_size() -> None:
    async with ScriptedModel(n_ctx=3) as fake:
        model = OpenAICompatModel(fake.url)
        try:
            with pytest.raises(ContextOverflowError, match="exceeds the available context size"):
                await collect(model, request())
        finally:
            await model.close()


async def test_server_down_fails_fast() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    model = OpenAICompatModel(f"http://127.0.0.1:{port}/v1", retry_backoff=0.01)
    try:
        with pytest.raises(ModelError) as err:
            await collect(model, request())
    finally:
        await model.close()
    assert err.value.code == "server_error"
    assert err.value.message == f"model server unreachable at http://127.0.0.1:{port}/v1: Connection refused"


async def test_error_event_mid_stream_after_text(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(StreamError(pieces=["Once", " upon"]))
    seen: list[object] = []
    with pytest.raises(ModelError, match="failed mid-stream: The model produced output"):
        async for event in client.stream(request()):
            seen.append(event)
    assert seen == [TextDelta("Once"), TextDelta(" upon")]
    assert len(fake.requests) == 1  # text was already yielded: no retry


async def test_error_event_before_any_output_is_retried(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    fake.script(StreamError(), Text("second time lucky"))
    done = (await collect(client, request()))[-1]
    assert isinstance(done, Completion) and done.text == "second time lucky"


async def test_missing_done(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Disconnect(pieces=["partial"]))
    with pytest.raises(ModelError, match=r"closed the stream before \[DONE\]"):
        await collect(client, request())


async def test_malformed_line(fake: ScriptedModel, client: OpenAICompatModel) -> None:
    fake.script(Malformed(pieces=["x"]))
    with pytest.raises(ModelError, match="malformed data"):
        await collect(client, request())
    fake.script(Malformed(line="garbage without a field"))
    with pytest.raises(ModelError, match="malformed stream line: garbage"):
        await collect(client, request())


async def test_read_timeout_before_the_first_byte(fake: ScriptedModel) -> None:
    gate = Gate()
    fake.script(Text("late", gate=gate))
    model = OpenAICompatModel(fake.url, read_timeout=0.2, max_retries=0)
    try:
        with pytest.raises(ModelError, match="read timeout"):
            await collect(model, request())
    finally:
        gate.set()
        await model.close()


async def test_read_timeout_mid_stream(fake: ScriptedModel) -> None:
    gate = Gate()
    fake.script(Text(pieces=["one", " two"], pause=gate, pause_after=1))
    model = OpenAICompatModel(fake.url, read_timeout=0.2)
    seen = []
    try:
        with pytest.raises(ModelError, match="read timeout"):
            async for event in model.stream(request()):
                seen.append(event)
    finally:
        gate.set()
        await model.close()
    assert seen == [TextDelta("one")]
    assert len(fake.requests) == 1


async def test_a_stream_of_only_comments_hits_the_read_timeout(fake: ScriptedModel) -> None:
    """SSE comments keep a connection alive but are no answer: they do not reset the read timeout."""
    fake.script(Comments(every=0.02))
    model = OpenAICompatModel(fake.url, read_timeout=0.3, turn_timeout=60, max_retries=0)
    try:
        with pytest.raises(ModelError, match=r"sent no data for 0.3 s \(read timeout\)"):
            await collect(model, request())
    finally:
        await model.close()


async def test_the_turn_timeout_bounds_a_slow_answer(fake: ScriptedModel) -> None:
    fake.script(Text("word " * 2000, delay=0.02))
    model = OpenAICompatModel(fake.url, read_timeout=30, turn_timeout=0.5)
    seen = []
    try:
        with pytest.raises(ModelError, match=r"did not finish its answer within 0.5 s \(turn timeout\)"):
            async for event in model.stream(request()):
                seen.append(event)
    finally:
        await model.close()
    assert seen and all(isinstance(e, TextDelta) for e in seen)
    assert len(fake.requests) == 1


async def test_a_held_turn_resumes_when_its_gate_opens(
    fake: ScriptedModel, client: OpenAICompatModel
) -> None:
    gate = Gate()
    fake.script(Text(pieces=["a", "b"], pause=gate, pause_after=1))
    stream = client.stream(request())
    assert await anext(stream) == TextDelta("a")
    gate.set()
    rest = [e async for e in stream]
    assert rest[0] == TextDelta("b") and isinstance(rest[-1], Completion)


async def test_non_stream_answer_is_accepted(fake: ScriptedModel) -> None:
    """A server that ignores `stream: true` and answers one JSON body."""
    from tests.fakes.model_server import Raw

    body = (
        b'{"choices":[{"finish_reason":"stop","index":0,"message":{"role":"assistant","content":"hi"}}],'
        b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
    )
    fake.script(Raw(chunks=[body], content_type="application/json"))
    model = OpenAICompatModel(fake.url)
    try:
        done = (await collect(model, request()))[-1]
    finally:
        await model.close()
    assert isinstance(done, Completion) and done.text == "hi" and done.usage is not None


def test_tool_mode_is_checked() -> None:
    with pytest.raises(ValueError, match="tool_mode"):
        OpenAICompatModel("http://127.0.0.1:1/v1", tool_mode="magic")


async def test_chat_request_defaults() -> None:
    req = ChatRequest("m", [])
    assert req.parallel_tool_calls is True and req.tools is None and req.tool_choice is None
