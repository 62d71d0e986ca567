"""Calls written into text: which text is held back, and when it is let go."""

from __future__ import annotations

import pytest

from agent.llm.textcalls import EmbeddedCall, TextCallScanner

NAMES = ["get_weather", "get_time"]


def scan(pieces: list[str]) -> list[list[str | EmbeddedCall]]:
    """What the scanner gives out after each piece, and (last) at the end."""
    scanner = TextCallScanner(NAMES)
    return [scanner.feed(p) for p in pieces] + [scanner.finish()]


def test_ordinary_text_streams_at_once() -> None:
    assert scan(["Hello", " world", ", how", " are you?"]) == [
        ["Hello"],
        [" world"],
        [", how"],
        [" are you?"],
        [],
    ]


def test_trailing_whitespace_waits_for_the_next_word() -> None:
    assert scan(["Hello ", "world\n", ""]) == [["Hello"], [" world"], [], ["\n"]]


def test_a_partial_marker_is_held_until_it_is_clear() -> None:
    assert scan(["a <", "b"]) == [["a"], [" <b"], []]
    assert scan(["a [TOOL", " is not"]) == [["a"], [" [TOOL is not"], []]


def test_hermes_call_split_across_pieces() -> None:
    out = scan(
        ["<tool", "_call>", '{"name": "get_weather", "arg', 'uments": {"city": "Paris"}}</tool_', "call>"]
    )
    assert out == [[], [], [], [], [EmbeddedCall("get_weather", '{"city": "Paris"}')], []]


def test_text_after_a_call_keeps_streaming() -> None:
    out = scan(['<tool_call>{"name": "get_time", "arguments": {}}</tool_call>\n\nDone', " now"])
    assert out == [[EmbeddedCall("get_time", "{}"), "Done"], [" now"], []]


def test_unterminated_call_at_the_end_is_still_a_call() -> None:
    assert scan(['<tool_call>\n{"name": "get_time", "arguments": {"tz": "CET"}}'])[-1] == [
        EmbeddedCall("get_time", '{"tz": "CET"}')
    ]


def test_broken_call_keeps_its_name_and_raw_arguments() -> None:
    out = scan(['<tool_call>{"name": "get_time", "arguments": {"tz": "CE</tool_call>'])
    assert out[0] == [EmbeddedCall("get_time", '{"tz": "CE')]


def test_a_tag_without_a_call_inside_is_text() -> None:
    assert scan(["<tool_call>not json at all</tool_call> ok"]) == [
        ["<tool_call>not json at all</tool_call>", " ok"],
        [],
    ]


def test_names_not_offered_are_still_calls_in_tags() -> None:
    assert scan(['<tool_call>{"name": "launch", "arguments": {}}</tool_call>'])[0] == [
        EmbeddedCall("launch", "{}")
    ]


@pytest.mark.parametrize(
    "answer",
    [
        '```json\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```',
        '```\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n```\n',
        '{"name": "get_weather", "parameters": {"city": "Paris"}}',
    ],
)
def test_a_whole_answer_call_is_held_to_the_end(answer: str) -> None:
    pieces = [answer[i : i + 5] for i in range(0, len(answer), 5)]
    out = scan(pieces)
    assert all(o == [] for o in out[:-1])
    assert out[-1] == [EmbeddedCall("get_weather", '{"city": "Paris"}')]


@pytest.mark.parametrize(
    ("answer", "released_after"),
    [
        ('```python\nprint("hi")\n```', 1),  # released once the fence's language is not json
        ('{"answer": 42, "name": "get_time"}', 1),  # released once the first key is not "name"
        ("`code` spans", 1),
        ('```json\n{"name": "get_weather", "arguments": {}}\n```\nand more text', 11),
    ],
)
def test_other_leading_code_or_json_is_released_early(answer: str, released_after: int) -> None:
    pieces = [answer[i : i + 5] for i in range(0, len(answer), 5)]
    out = scan(pieces)
    first = next(i for i, o in enumerate(out) if o)
    assert first == released_after - 1
    assert "".join(x for o in out for x in o if isinstance(x, str)) == answer


def test_a_whole_answer_call_needs_an_offered_name() -> None:
    answer = '```json\n{"name": "Ada", "arguments": {}}\n```'
    assert scan([answer]) == [[], [answer]]


def test_mistral_formats() -> None:
    assert scan(['[TOOL_CALLS] [{"name": "get_time", "arguments": {"tz": "CET"}}]'])[-1] == [
        EmbeddedCall("get_time", '{"tz": "CET"}')
    ]
    assert scan(['[TOOL_CALLS]get_time[ARGS]{"tz": "CET"}[TOOL_CALLS]get_weather[ARGS]{}'])[-1] == [
        EmbeddedCall("get_time", '{"tz": "CET"}'),
        EmbeddedCall("get_weather", "{}"),
    ]
    assert scan(["[TOOL_CALLS] nonsense"])[-1] == ["[TOOL_CALLS] nonsense"]
