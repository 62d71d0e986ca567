"""Lenient JSON for model output: repair only what is unambiguous.

Fixed: literal control characters inside strings, trailing text after one complete value, single-quoted
strings, Python `True`/`False`/`None`, unquoted object keys, trailing commas, and missing closing
brackets when the text stops right after a complete value. Not fixed (ambiguous): text cut off inside a
string or after a `,` / `:` / key, or several values in a row.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

_FENCE = re.compile(r"^```[ \t]*(?:json|JSON)?[ \t]*\n(.*?)\n?[ \t]*```\s*$", re.DOTALL)
_PY_CONSTANTS = {
    "True": "true",
    "False": "false",
    "None": "null",
    "true": "true",
    "false": "false",
    "null": "null",
}
_CLOSERS = {"{": "}", "[": "]"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_fences(text: str) -> str:
    """The body of a ```json fenced block if `text` is just that block, else `text`."""
    m = _FENCE.match(text.strip())
    return m.group(1) if m else text


def loads_lenient(text: str) -> tuple[Any, str]:
    """Parse `text` as JSON, repairing when unambiguous. Returns (value, json_text), where json_text is
    `text` itself when it was valid. Raises `ValueError` (a `json.JSONDecodeError` when the text
    was not repairable) with the original parse error."""
    try:
        return json.loads(text), text
    except json.JSONDecodeError as e:
        first_error = e
    s = strip_fences(text).strip()
    for candidate in (s, _fix(s)):
        if candidate is None:
            continue
        try:
            value = json.loads(candidate, strict=False)
        except json.JSONDecodeError:
            value = _prefix_value(candidate)
            if value is None:
                continue
            return value, json.dumps(value, ensure_ascii=False)
        if candidate.startswith(text) and _is_strict_json(candidate):
            return value, candidate  # only closers appended: keep the model's own text as a prefix
        return value, json.dumps(value, ensure_ascii=False)
    raise first_error


def repair_arguments(raw: str) -> tuple[str, str | None]:
    """Tool-call arguments → (JSON object text, error). Empty → "{}". On error the text is `raw`."""
    if not raw.strip():
        return "{}", None
    try:
        value, text = loads_lenient(raw)
    except json.JSONDecodeError as e:
        return raw, f"arguments are not valid JSON ({e.msg} at position {e.pos}): {_preview(raw)}"
    if isinstance(value, str):  # double-encoded: "{\"city\": \"Paris\"}"
        with contextlib.suppress(json.JSONDecodeError):
            value, text = loads_lenient(value)
    if not isinstance(value, dict):
        return raw, f"arguments must be a JSON object, got {type(value).__name__}: {_preview(raw)}"
    return text, None


def _is_strict_json(s: str) -> bool:
    try:
        json.loads(s)
    except json.JSONDecodeError:
        return False
    return True


def _preview(raw: str, limit: int = 200) -> str:
    return raw if len(raw) <= limit else raw[:limit] + "…"


def _prefix_value(s: str) -> Any:
    """One complete value followed by non-JSON trailing text (not by another value)."""
    try:
        value, end = json.JSONDecoder(strict=False).raw_decode(s)
    except json.JSONDecodeError:
        return None
    rest = s[end:].lstrip()
    if rest[:1] in ("{", "[", '"'):
        return None  # several values: ambiguous
    return value


def _fix(s: str) -> str | None:
    """Rewrite near-JSON (Python literals, single quotes, bare keys, trailing commas, missing closers)
    into JSON text, or None when the text is ambiguous."""
    out: list[str] = []
    stack: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c in "\"'":
            j, body = _read_string(s, i)
            if j < 0:
                return None  # cut off inside a string
            out.append(body)
            i = j
        elif c in "{[":
            stack.append(c)
            out.append(c)
            i += 1
        elif c in "}]":
            if not stack or _CLOSERS[stack.pop()] != c:
                return None
            _drop_trailing_comma(out)
            out.append(c)
            i += 1
            if not stack:
                if s[i:].lstrip()[:1] in ("{", "[", '"', "'"):
                    return None  # several values: ambiguous
                break  # one complete value; anything after it is trailing text
        elif c.isalpha() or c == "_":
            m = _WORD.match(s, i)
            assert m is not None
            word = m.group(0)
            if word in _PY_CONSTANTS:
                out.append(_PY_CONSTANTS[word])
            elif s[m.end() :].lstrip().startswith(":") and stack and stack[-1] == "{":
                out.append(json.dumps(word))  # bare key
            else:
                return None
            i = m.end()
        else:
            out.append(c)
            i += 1
    if stack:
        last = "".join(out).rstrip()[-1:]
        if not last or last in ",:{[":
            return None  # cut off where more was meant to follow
        out.extend(_CLOSERS[b] for b in reversed(stack))
    return "".join(out)


def _read_string(s: str, i: int) -> tuple[int, str]:
    """Read the string starting at s[i] (either quote); return (end index, JSON string) or (-1, "")."""
    quote = s[i]
    j = i + 1
    body: list[str] = []
    while j < len(s):
        c = s[j]
        if c == "\\" and j + 1 < len(s):
            nxt = s[j + 1]
            body.append("'" if nxt == "'" else s[j : j + 2])
            j += 2
            continue
        if c == quote:
            return j + 1, '"' + "".join(body) + '"'
        body.append('\\"' if c == '"' else c)
        j += 1
    return -1, ""


def _drop_trailing_comma(out: list[str]) -> None:
    k = len(out) - 1
    while k >= 0 and out[k].isspace():
        k -= 1
    if k >= 0 and out[k] == ",":
        del out[k]
