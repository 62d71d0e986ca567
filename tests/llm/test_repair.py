"""Argument repair: fix what is unambiguous, refuse the rest."""

from __future__ import annotations

import json

import pytest

from agent.llm.repair import repair_arguments


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ('{"city": "Paris"}', '{"city": "Paris"}'),  # valid: untouched
        ("", "{}"),  # no arguments
        ('{"city": "Paris"', '{"city": "Paris"}'),  # missing closing brace
        ('{"a": {"b": [1, 2', '{"a": {"b": [1, 2]}}'),  # several missing closers
        ('{"city": "Paris"} I hope that helps!', '{"city": "Paris"}'),  # trailing text
        ("{'city': 'Paris'}", '{"city": "Paris"}'),  # single quotes
        ('{"a": True, "b": False, "c": None}', '{"a": true, "b": false, "c": null}'),  # Python constants
        ("{'msg': 'say \"hi\"', 'it': 'it\\'s'}", '{"msg": "say \\"hi\\"", "it": "it\'s"}'),
        ('{"a": 1, "b": [1, 2,],}', '{"a": 1, "b": [1, 2]}'),  # trailing commas
        ('{city: "Paris"}', '{"city": "Paris"}'),  # bare key
        ('```json\n{"city": "Paris"}\n```', '{"city": "Paris"}'),  # fenced
        ('"{\\"city\\": \\"Paris\\"}"', '{"city": "Paris"}'),  # double-encoded
        ('{"code": "a\nb"}', '{"code": "a\\nb"}'),  # raw newline inside a string
    ],
)
def test_repaired(raw: str, fixed: str) -> None:
    text, error = repair_arguments(raw)
    assert error is None
    assert json.loads(text) == json.loads(fixed)


def test_appending_closers_keeps_the_models_text_as_a_prefix() -> None:
    assert repair_arguments('{ "tz" : "CET"') == ('{ "tz" : "CET"}', None)


@pytest.mark.parametrize(
    "raw",
    [
        '{ "tz" : "',  # cut off inside a string (fixture 33)
        "{",  # cut off at the start (fixture 35)
        '{"tz"',  # cut off after a key (fixture 40)
        '{"a": 1,',  # cut off after a comma
        '{"a": 1} {"b": 2}',  # two objects
        'Sure: {"a": 1}',  # leading prose
        "get_weather(city='Paris')",
    ],
)
def test_ambiguous_is_an_error(raw: str) -> None:
    text, error = repair_arguments(raw)
    assert text == raw and error is not None and error.startswith("arguments are not valid JSON")


@pytest.mark.parametrize("raw", ["[1, 2]", "42", '"just a string"'])
def test_not_an_object_is_an_error(raw: str) -> None:
    text, error = repair_arguments(raw)
    assert text == raw and error is not None and "must be a JSON object" in error
