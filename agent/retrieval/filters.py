"""Attribute filters of ``vector_stores.search`` / the file_search tool.

* comparison: ``{"type": "eq|ne|gt|gte|lt|lte|in|nin", "key": str, "value": str|number|bool|array}``
* compound: ``{"type": "and|or", "filters": [filter, ...]}`` (nestable)

Semantics (applied to a file's ``attributes`` map of string/number/bool values):

* types never mix: a bool equals only a bool, a number only a number (``1 == 1.0``), a string only a
  string. ``gt/gte/lt/lte`` compare numbers numerically and strings lexicographically (ISO dates work);
  a comparison between different types, or involving a bool, is false.
* ``in``/``nin`` take an array (a scalar is treated as a one-element array).
* a missing key (or a ``null`` attribute) fails every comparison except ``ne`` and ``nin``, which it
  satisfies (as in MongoDB).
* an empty ``and`` is true, an empty ``or`` is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["COMPARISON_TYPES", "COMPOUND_TYPES", "InvalidFilter", "matches_filter", "validate_filter"]

COMPARISON_TYPES = frozenset({"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin"})
COMPOUND_TYPES = frozenset({"and", "or"})
_MAX_DEPTH = 32


class InvalidFilter(ValueError):
    """The filter object is malformed (an HTTP 400 for the API)."""


def _is_scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def validate_filter(flt: Any, _depth: int = 0) -> None:
    """Raise :class:`InvalidFilter` unless ``flt`` is a well-formed comparison or compound filter."""
    if _depth > _MAX_DEPTH:
        raise InvalidFilter("filters are nested too deeply")
    if not isinstance(flt, Mapping):
        raise InvalidFilter("a filter must be an object")
    kind = flt.get("type")
    if not isinstance(kind, str):
        raise InvalidFilter(f"filter 'type' must be a string, got {type(kind).__name__}")
    if kind in COMPOUND_TYPES:
        subs = flt.get("filters")
        if not isinstance(subs, list):
            raise InvalidFilter(f"compound filter '{kind}' needs a 'filters' array")
        for sub in subs:
            validate_filter(sub, _depth + 1)
        return
    if kind not in COMPARISON_TYPES:
        raise InvalidFilter(f"unknown filter type: {kind!r}")
    if not isinstance(flt.get("key"), str):
        raise InvalidFilter(f"comparison filter '{kind}' needs a string 'key'")
    if "value" not in flt:
        raise InvalidFilter(f"comparison filter '{kind}' needs a 'value'")
    value = flt["value"]
    if kind in ("in", "nin"):
        items = value if isinstance(value, list) else [value]
        if not all(_is_scalar(v) for v in items):
            raise InvalidFilter(f"'{kind}' values must be strings, numbers or booleans")
    elif not _is_scalar(value):
        raise InvalidFilter(f"'{kind}' value must be a string, number or boolean")


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "other"


def _equal(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) != "other" and a == b


def _ordered(a: Any, b: Any, op: str) -> bool:
    kind = _kind(a)
    if kind != _kind(b) or kind not in ("number", "string"):
        return False
    if op == "gt":
        return bool(a > b)
    if op == "gte":
        return bool(a >= b)
    if op == "lt":
        return bool(a < b)
    return bool(a <= b)


def matches_filter(flt: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None) -> bool:
    """Evaluate a (validated) filter against a file's attributes; ``None`` matches everything."""
    if flt is None:
        return True
    attrs = attributes or {}
    kind = flt["type"]
    if kind == "and":
        return all(matches_filter(sub, attrs) for sub in flt["filters"])
    if kind == "or":
        return any(matches_filter(sub, attrs) for sub in flt["filters"])
    actual = attrs.get(flt["key"])
    value = flt["value"]
    if actual is None:
        return kind in ("ne", "nin")
    if kind == "eq":
        return _equal(actual, value)
    if kind == "ne":
        return not _equal(actual, value)
    if kind in ("in", "nin"):
        items = value if isinstance(value, list) else [value]
        found = any(_equal(actual, item) for item in items)
        return found if kind == "in" else not found
    return _ordered(actual, value, kind)
