"""The client against a real llama.cpp `llama-server` (built and started by .ci/llama-server.sh) serving
the tiny stories260K model with the Qwen tool template. Skipped when the binary is not built, unless
CI=true (then it is a failure)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.llm import Completion, ContextOverflowError, OpenAICompatModel

from .helpers import collect, request

pytestmark = pytest.mark.llama
CITY: dict[str, Any] = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the weather for a city",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["city", "unit"],
                   "properties": {"city": {"type": "string", "maxLength": 12},
                                  "unit": {"type": "string", "enum": ["c", "f"]}}}}}  # fmt: skip


@pytest.fixture
async def llama(llama_url: str) -> AsyncIterator[OpenAICompatModel]:
    model = OpenAICompatModel(llama_url, aliases={"*": "stories"})
    yield model
    await model.close()


async def test_text_stream(llama: OpenAICompatModel) -> None:
    events = await collect(llama, request(max_tokens=12, temperature=0))
    done = events[-1]
    assert isinstance(done, Completion) and done.text and done.finish_reason == "length"
    assert done.usage is not None and done.usage.completion_tokens == 12 and done.usage.prompt_tokens > 0


async def test_named_tool_choice_is_forced_by_json_schema(llama: OpenAICompatModel) -> None:
    # The model never starts a call by itself (see models/README.md): this is the fallback.
    req = request(tools=[CITY], tool_choice={"type": "function", "function": {"name": "get_weather"}},
                  max_tokens=300, temperature=0)  # fmt: skip
    done = (await collect(llama, req))[-1]
    assert isinstance(done, Completion) and done.finish_reason == "tool_calls"
    (call,) = done.tool_calls
    assert call.name == "get_weather" and call.error is None


async def test_context_overflow(llama: OpenAICompatModel) -> None:
    long = [{"role": "user", "content": "word " * 5000}]
    with pytest.raises(ContextOverflowError, match="exceeds the available context size"):
        await collect(llama, request(messages=long, max_tokens=4))


async def test_prompted_mode_round_trip(llama_url: str) -> None:
    model = OpenAICompatModel(llama_url, tool_mode="prompted")
    history = [
        {"role": "user", "content": "What is the weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_abc", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'}}]},
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp": 21}'},
    ]  # fmt: skip
    try:
        done = (await collect(model, request(messages=history, tools=[CITY], max_tokens=16, temperature=0)))[
            -1
        ]
    finally:
        await model.close()
    assert isinstance(done, Completion) and done.finish_reason in ("stop", "length", "tool_calls")
