"""Tool calls that a model wrote into its text instead of the `tool_calls` field.

Recognised (only when tools were offered):

- Hermes / Qwen: ``<tool_call>{"name": …, "arguments": {…}}</tool_call>`` anywhere, any number of them;
- Mistral: ``[TOOL_CALLS][{"name": …, "arguments": {…}}, …]`` or ``[TOOL_CALLS]name[ARGS]{…}``;
- a whole answer that is just a ```` ```json ```` fenced (or bare) ``{"name": …, "arguments": …}``
  object whose name is one of the offered tools.

`TextCallScanner` works on streamed text: ordinary text comes out as soon as it arrives; only text that
may be the start of a call (a partial marker, a leading ```` ``` ```` or ``{``, whitespace next to a call)
is held back until it is clear.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from .repair import loads_lenient, strip_fences

HERMES_OPEN, HERMES_CLOSE = "<tool_call>", "</tool_call>"
MISTRAL = "[TOOL_CALLS]"
_MARKERS = (HERMES_OPEN, MISTRAL)
_CALL_START = '{"name"'
_NAME = re.compile(r'"name"\s*:\s*"([^"]+)"')
_ARGS = re.compile(r'"(?:arguments|parameters)"\s*:\s*')


@dataclass
class EmbeddedCall:
    name: str
    arguments: str
    """Raw argument text (repair is the caller's job)."""


Item = str | EmbeddedCall


class TextCallScanner:
    def __init__(self, tool_names: Collection[str]) -> None:
        self._names = set(tool_names)
        self._buf = ""
        self._state = "start"  # start | text | tag | mistral | whole
        self._found = False  # a call was found
        self._lstrip_next = False  # drop whitespace right after a call

    def feed(self, text: str) -> list[Item]:
        self._buf += text
        return self._scan(final=False)

    def finish(self) -> list[Item]:
        return self._scan(final=True)

    def _scan(self, final: bool) -> list[Item]:
        out: list[Item] = []
        while True:
            state = self._state
            if state == "start":
                progressed = self._scan_start(final)
            elif state == "text":
                progressed = self._scan_text(final, out)
            elif state == "tag":
                progressed = self._scan_tag(final, out)
            elif state == "mistral":
                progressed = self._scan_mistral(final, out)
            else:
                progressed = self._scan_whole(final, out)
            if not progressed:
                return out

    # -- states ---------------------------------------------------------------------------------------

    def _scan_start(self, final: bool) -> bool:
        """Before any text: decide whether the answer may be a whole-answer JSON call."""
        s = self._buf.lstrip()
        if not s and not final:
            return False
        self._state = "whole" if s[:1] in ("`", "{") else "text"
        return True

    def _scan_text(self, final: bool, out: list[Item]) -> bool:
        buf = self._buf
        hits = [(p, m) for m in _MARKERS if (p := buf.find(m)) >= 0]
        if hits:
            p, marker = min(hits)
            self._emit(buf[:p].rstrip(), out)
            self._buf = buf[p + len(marker) :]
            self._state = "tag" if marker == HERMES_OPEN else "mistral"
            return True
        if final:
            self._emit(buf.rstrip() if self._found else buf, out)
            self._buf = ""
            return False
        cut = len(buf) - _partial_marker_len(buf)
        while cut > 0 and buf[cut - 1].isspace():
            cut -= 1
        self._emit(buf[:cut], out)
        self._buf = buf[cut:]
        return False

    def _scan_tag(self, final: bool, out: list[Item]) -> bool:
        q = self._buf.find(HERMES_CLOSE)
        if q < 0 and not final:
            return False
        body = self._buf if q < 0 else self._buf[:q]
        self._buf = "" if q < 0 else self._buf[q + len(HERMES_CLOSE) :]
        call = parse_call_text(body)
        if call is None:
            self._emit(HERMES_OPEN + body + ("" if q < 0 else HERMES_CLOSE), out)
        else:
            self._call(call, out)
        self._state = "text"
        return True

    def _scan_mistral(self, final: bool, out: list[Item]) -> bool:
        if not final:
            return False
        calls = _parse_mistral(self._buf)
        if calls is None:
            self._emit(MISTRAL + self._buf, out)
        else:
            for call in calls:
                self._call(call, out)
        self._buf = ""
        self._state = "text"
        return True

    def _scan_whole(self, final: bool, out: list[Item]) -> bool:
        s = self._buf.strip()
        if not final:
            if _may_be_whole_call(self._buf.lstrip()):
                return False
            self._state = "text"  # not a call: stream it as text from here on
            return True
        call = parse_call_text(strip_fences(s))
        if call is not None and call.name in self._names:
            self._call(call, out)
            self._buf = ""
        self._state = "text"
        return True

    # -- output ---------------------------------------------------------------------------------------

    def _emit(self, text: str, out: list[Item]) -> None:
        if self._lstrip_next:
            text = text.lstrip()
        if text:
            self._lstrip_next = False
            out.append(text)

    def _call(self, call: EmbeddedCall, out: list[Item]) -> None:
        self._found = True
        self._lstrip_next = True
        out.append(call)


def parse_call_text(text: str) -> EmbeddedCall | None:
    """`{"name": …, "arguments": …}` (also "parameters", or OpenAI's {"function": {…}}) → a call."""
    try:
        value, _ = loads_lenient(text.strip())
    except ValueError:
        return _salvage_call(text)
    return call_from_object(value)


def call_from_object(value: Any) -> EmbeddedCall | None:
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name:
        return None
    args = value.get("arguments", value.get("parameters"))
    if args is None:
        text = "{}"
    elif isinstance(args, str):
        text = args
    else:
        text = json.dumps(args, ensure_ascii=False)
    return EmbeddedCall(name, text)


def _salvage_call(text: str) -> EmbeddedCall | None:
    """The object is broken (usually inside its arguments): keep the name and the raw arguments so the
    call is still reported, with an error, instead of leaking into the text."""
    name, args = _NAME.search(text), _ARGS.search(text)
    if name is None or args is None:
        return None
    rest = text[args.end() :].rstrip()
    if rest.endswith("}") and rest.count("}") > rest.count("{"):
        rest = rest[:-1].rstrip()
    return EmbeddedCall(name.group(1), rest)


def _parse_mistral(payload: str) -> list[EmbeddedCall] | None:
    payload = payload.strip()
    calls: list[EmbeddedCall] = []
    if payload.startswith(("[", "{")):
        try:
            value, _ = loads_lenient(payload)
        except ValueError:
            return None
        for obj in value if isinstance(value, list) else [value]:
            call = call_from_object(obj)
            if call is None:
                return None
            calls.append(call)
        return calls or None
    for segment in payload.split(MISTRAL):  # v11 tokenizer: name[ARGS]{…}[TOOL_CALLS]name[ARGS]{…}
        if not segment.strip():
            continue
        name, sep, args = segment.partition("[ARGS]")
        name = name.split("[CALL_ID]")[0].strip()
        if not sep or not name:
            return None
        calls.append(EmbeddedCall(name, args.strip()))
    return calls or None


def _partial_marker_len(buf: str) -> int:
    """Length of the longest suffix of `buf` that is a proper prefix of a marker."""
    best = 0
    for marker in _MARKERS:
        for k in range(min(len(marker) - 1, len(buf)), best, -1):
            if buf.endswith(marker[:k]):
                best = k
                break
    return best


def _may_be_whole_call(s: str) -> bool:
    """Could `s` (the answer so far, left-stripped) still turn out to be one fenced or bare call object?"""
    if s.startswith("`"):
        if not s.startswith("```"):
            return "```".startswith(s)
        nl = s.find("\n")
        header = (s[3:] if nl < 0 else s[3:nl]).strip().lower()
        if nl < 0:
            return "json".startswith(header)
        if header not in ("", "json"):
            return False
        body = s[nl + 1 :]
        close = body.find("```")
        if close >= 0 and body[close + 3 :].strip():
            return False
        return _may_be_call_object(body.lstrip())
    return _may_be_call_object(s)


def _may_be_call_object(s: str) -> bool:
    compact = re.sub(r"\s+", "", s[:64])[: len(_CALL_START)]
    return compact.startswith(_CALL_START) or _CALL_START.startswith(compact)
