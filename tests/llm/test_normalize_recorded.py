"""The normaliser on every recorded llama-server chat answer (tests/fixtures/llama-server/)."""

from __future__ import annotations

import pytest

from agent.llm import Completion, ToolCallDelta
from agent.llm.normalize import normalize_chunks

from .helpers import assert_well_formed, calls
from .recorded import chat_fixtures, load

YES = {"tz": "Yes,"}
# name → (text starts with, calls as (name, arguments | "error"), finish_reason)
EXPECTED: dict[str, tuple[str, list[tuple[str, object]], str]] = {
    "10_chat_basic.txt": ('"Here!" Asked Pictor.\nThey dec', [], "length"),
    "11_chat_stream.txt": ('"Here!" Asked P', [], "length"),
    "12_chat_stream_usage.txt": ('"Here!" Asked P', [], "length"),
    "20_tools_auto.txt": ('"Here!" Asked Pictor.', [], "length"),
    "21_tools_required.txt": ('"Here!" Asked Pictor.', [], "length"),
    "30_qwen_tools_auto.txt": ('"Hey," Asked Allief.', [], "length"),
    "31_qwen_tools_required.txt": ('"" Annexter,"', [], "length"),
    # finish_reason "length" from the backend, but calls were made: we report "tool_calls"; the call
    # cut off by max_tokens carries an error.
    "33_qwen_required_prefill.txt": ("", [("get_time", YES), ("get_time", "error")], "tool_calls"),
    "34_json_schema.txt": ('{ "city" : "It\'s a spect"', [], "length"),
    # parallel_tool_calls=false (ignored by llama-server): only the first of three calls is kept.
    "35_qwen_required_prefill_single.txt": ("", [("get_time", YES)], "tool_calls"),
    "36_json_schema_300.txt": ('{ "city" : "It\'s a spect", "unit" : "f" }', [], "stop"),
    "37_prefill_stop.txt": ("", [("get_time", YES)], "tool_calls"),
    "38_prefill_eosbias.txt": ("", [("get_time", YES)], "tool_calls"),
    "39_prefill_eosbias_stream.txt": ("", [("get_time", YES)], "tool_calls"),
    "40_prefill_eosbias_parallel.txt": ("", [("get_time", YES)] * 5 + [("get_time", "error")], "tool_calls"),
    "41_prefill_eosbias_parallel_stream.txt": (
        "",
        [("get_time", YES)] * 5 + [("get_time", "error")],
        "tool_calls",
    ),
    "42_qwen_tools_named.txt": ('"" Annexter,"', [], "length"),
    "43_qwen_tools_none.txt": ('"" Annexter,"', [], "length"),
    "44_named_emulated.txt": ("", [("get_weather", {"city": "Yes,"})], "tool_calls"),
    "45_roundtrip.txt": ('" A mank yourself,"', [], "length"),
    "5x_err_bad_role.txt": ("When they", [], "length"),
    "5x_err_logprobs.txt": ('"What', [], "length"),
    "5x_err_unknown_fields.txt": ("Shen he", [], "length"),
    "72_chat_on_embedding_server.txt": ('"Here!" Asked Pictor.', [], "length"),
    "82_auth_ok_alias.txt": ('"Here!" Asked Pictor.', [], "length"),
    "91_nojinja_basic.txt": ('"Here!" Asked Pictor.', [], "length"),
    "100_tinyrandom_chat.txt": ("alph zesificate", [], "length"),
    "103_tinyrandomq_tools_prefill.txt": ("", [("get_time", "error")], "tool_calls"),
    "104_tinyrandomq_required.txt": ("alph Floricane", [], "length"),
    "105_storiesq_tools_prefill.txt": ("", [("get_time", YES)], "tool_calls"),
}
MID_STREAM_ERROR = {"48_auto_prefill_stream.txt"}  # tested through the client (test_replay.py)


def test_every_recorded_chat_answer_is_covered() -> None:
    assert set(chat_fixtures()) == set(EXPECTED) | MID_STREAM_ERROR


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_answer(name: str) -> None:
    rec = load(name)
    req = rec.request or {}
    events = normalize_chunks(
        rec.chunks(), tools=req.get("tools"), parallel_tool_calls=req.get("parallel_tool_calls", True)
    )
    done = assert_well_formed(events)
    text, expected_calls, finish = EXPECTED[name]
    assert done.text.startswith(text)
    assert [(n, "error" if isinstance(a, str) else a) for n, a in calls(done)] == expected_calls
    assert done.finish_reason == finish
    for call in done.tool_calls:
        if call.error is not None:
            assert call.error.startswith("arguments are not valid JSON")


def test_usage_is_read_from_the_last_chunk() -> None:
    done = normalize_chunks(load("12_chat_stream_usage.txt").chunks())[-1]
    assert isinstance(done, Completion) and done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens, done.usage.total_tokens) == (97, 12, 109)
    done = normalize_chunks(load("11_chat_stream.txt").chunks())[-1]
    assert isinstance(done, Completion) and done.usage is None


def test_streamed_call_deltas_are_the_backend_pieces() -> None:
    rec = load("39_prefill_eosbias_stream.txt")
    events = normalize_chunks(rec.chunks(), tools=rec.request and rec.request["tools"])
    deltas = [e.arguments for e in events if isinstance(e, ToolCallDelta)]
    assert deltas[:3] == ["{", ' "', "t"] and "".join(deltas) == '{ "tz" : "Yes," }'


def test_stream_and_non_stream_agree() -> None:
    one = normalize_chunks(load("40_prefill_eosbias_parallel.txt").chunks(), tools=None)[-1]
    other = normalize_chunks(load("41_prefill_eosbias_parallel_stream.txt").chunks(), tools=None)[-1]
    assert isinstance(one, Completion) and isinstance(other, Completion)
    assert [(c.name, c.arguments, c.error is None) for c in one.tool_calls] == [
        (c.name, c.arguments, c.error is None) for c in other.tool_calls
    ]


def test_backend_ids_are_replaced_by_ours() -> None:
    rec = load("38_prefill_eosbias.txt")
    backend_id = rec.chunks()[0]["choices"][0]["message"]["tool_calls"][0]["id"]
    done = normalize_chunks(rec.chunks())[-1]
    assert isinstance(done, Completion)
    assert done.tool_calls[0].id != backend_id and done.tool_calls[0].id.startswith("call_")
