from __future__ import annotations

from typing import Any

import pytest

from agent.retrieval import InvalidFilter, matches_filter, validate_filter

ATTRS = {"author": "ann", "year": 2021, "score": 4.5, "draft": False, "date": "2024-03-01"}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"type": "eq", "key": "author", "value": "ann"}, True),
        ({"type": "eq", "key": "author", "value": "bob"}, False),
        ({"type": "eq", "key": "year", "value": 2021.0}, True),
        ({"type": "eq", "key": "year", "value": "2021"}, False),  # types never mix
        ({"type": "eq", "key": "draft", "value": False}, True),
        ({"type": "eq", "key": "draft", "value": 0}, False),
        ({"type": "ne", "key": "author", "value": "bob"}, True),
        ({"type": "ne", "key": "author", "value": "ann"}, False),
        ({"type": "ne", "key": "missing", "value": "x"}, True),
        ({"type": "gt", "key": "year", "value": 2020}, True),
        ({"type": "gt", "key": "year", "value": 2021}, False),
        ({"type": "gte", "key": "year", "value": 2021}, True),
        ({"type": "lt", "key": "score", "value": 5}, True),
        ({"type": "lt", "key": "score", "value": 4.5}, False),
        ({"type": "lte", "key": "score", "value": 4.5}, True),
        ({"type": "gt", "key": "date", "value": "2024-01-01"}, True),
        ({"type": "lt", "key": "date", "value": "2024-01-01"}, False),
        ({"type": "gt", "key": "year", "value": "1999"}, False),
        ({"type": "gt", "key": "missing", "value": 1}, False),
        ({"type": "in", "key": "author", "value": ["bob", "ann"]}, True),
        ({"type": "in", "key": "author", "value": ["bob"]}, False),
        ({"type": "in", "key": "year", "value": [2020, 2021]}, True),
        ({"type": "nin", "key": "author", "value": ["bob", "cy"]}, True),
        ({"type": "nin", "key": "author", "value": ["ann"]}, False),
        ({"type": "nin", "key": "missing", "value": ["ann"]}, True),
        ({"type": "and", "filters": []}, True),
        ({"type": "or", "filters": []}, False),
        (
            {
                "type": "and",
                "filters": [
                    {"type": "eq", "key": "author", "value": "ann"},
                    {
                        "type": "or",
                        "filters": [
                            {"type": "lt", "key": "year", "value": 2000},
                            {"type": "and", "filters": [{"type": "eq", "key": "draft", "value": False}]},
                        ],
                    },
                ],
            },
            True,
        ),
        (
            {
                "type": "or",
                "filters": [
                    {"type": "eq", "key": "author", "value": "bob"},
                    {"type": "and", "filters": [{"type": "gte", "key": "year", "value": 2022}]},
                ],
            },
            False,
        ),
    ],
)
def test_matches(flt: dict[str, Any], expected: bool) -> None:
    validate_filter(flt)
    assert matches_filter(flt, ATTRS) is expected


def test_no_filter_and_no_attributes() -> None:
    assert matches_filter(None, None)
    assert not matches_filter({"type": "eq", "key": "a", "value": 1}, None)


@pytest.mark.parametrize(
    "bad",
    [
        "nope",
        {"type": "like", "key": "a", "value": "x"},
        {"type": "eq", "value": "x"},
        {"type": "eq", "key": "a"},
        {"type": "eq", "key": "a", "value": {"x": 1}},
        {"type": "in", "key": "a", "value": [[1]]},
        {"type": "and"},
        {"type": "or", "filters": [{"type": "eq"}]},
    ],
)
def test_invalid_filters(bad: Any) -> None:
    with pytest.raises(InvalidFilter):
        validate_filter(bad)
