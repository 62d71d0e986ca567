"""The normaliser on each backend's documented stream shape (tests/llm/fixtures/, see its README)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent.llm import TextDelta, ToolCallDelta, ToolCallStart
from agent.llm.normalize import normalize_chunks

from .helpers import TOOLS, assert_well_formed, calls

FIXTURES = Path(__file__).parent / "fixtures"
PARIS = ("get_weather", {"city": "Paris"})
CET = ("get_time", {"tz": "CET"})

# file → (text, calls, usage (prompt, completion) or None)
EXPECTED: dict[str, tuple[str, list[tuple[str, Any]], tuple[int, int] | None]] = {
    "ollama_stream_tool_call.sse": ("", [PARIS], (152, 21)),
    "ollama_parallel_noindex.sse": ("", [PARIS, ("get_time", {"tz": "Europe/Paris"})], None),
    "ollama_nonstream_dict_args.json": ("", [PARIS, CET], (90, 30)),
    "vllm_stream_tool_calls.sse": ("", [PARIS, CET], (301, 44)),
    "vllm_python_literal_args.sse": ("", [("get_weather", {"city": "Paris", "metric": True})], None),
    "llama_cpp_python_repeated.sse": ("", [("get_weather", {"city": "Paris", "unit": "c"})], None),
    "legacy_function_call.sse": ("", [PARIS], None),
    "hermes_text_calls.sse": ("Let me check both.", [PARIS, CET], None),
    "mistral_text_calls.sse": ("", [PARIS, CET], None),
    "mistral_v11_text_call.sse": ("", [PARIS], None),
    "fenced_json_call.sse": ("", [PARIS], None),
    "fenced_json_not_a_call.sse": ('```json\n{"name": "Ada", "arguments": []}\n```', [], None),
}


def chunks(name: str) -> list[dict[str, Any]]:
    text = (FIXTURES / name).read_text()
    if name.endswith(".json"):
        return [json.loads(text)]
    data = [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]
    return [json.loads(d) for d in data if d != "[DONE]"]


def test_every_fixture_is_covered() -> None:
    assert {p.name for p in FIXTURES.iterdir() if p.suffix in (".sse", ".json")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_backend_shape(name: str) -> None:
    done = assert_well_formed(normalize_chunks(chunks(name), tools=TOOLS))
    text, expected_calls, usage = EXPECTED[name]
    assert done.text == text
    assert calls(done) == expected_calls
    assert (None if done.usage is None else (done.usage.prompt_tokens, done.usage.completion_tokens)) == usage


@pytest.mark.parametrize("name", ["hermes_text_calls.sse", "mistral_text_calls.sse", "fenced_json_call.sse"])
def test_text_calls_are_plain_text_when_no_tools_were_offered(name: str) -> None:
    done = assert_well_formed(normalize_chunks(chunks(name), tools=None))
    assert done.tool_calls == [] and (
        "<tool_call>" in done.text or "[TOOL_CALLS]" in done.text or done.text.startswith("```json")
    )


def test_parallel_false_keeps_only_the_first_call() -> None:
    done = assert_well_formed(
        normalize_chunks(chunks("vllm_stream_tool_calls.sse"), tools=TOOLS, parallel_tool_calls=False)
    )
    assert calls(done) == [PARIS]


def test_unknown_tool_names_are_still_reported() -> None:
    done = assert_well_formed(normalize_chunks(chunks("vllm_stream_tool_calls.sse"), tools=[TOOLS[1]]))
    assert [c.name for c in done.tool_calls] == ["get_weather", "get_time"]


def test_vllm_call_starts_before_its_arguments_arrive() -> None:
    events = normalize_chunks(chunks("vllm_stream_tool_calls.sse"), tools=TOOLS)
    kinds = [type(e).__name__ for e in events[:3]]
    assert kinds == ["ToolCallStart", "ToolCallDelta", "ToolCallDelta"]
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta) and e.index == 0] == [
        '{"city": "',
        "Paris",
        '"}',
    ]


def test_hermes_text_before_the_calls_streams_and_whitespace_around_them_is_dropped() -> None:
    events = normalize_chunks(chunks("hermes_text_calls.sse"), tools=TOOLS)
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["Let me check", " both."]
    assert isinstance(events[2], ToolCallStart)
