"""Backend chunks → our event stream. Pure: no I/O, fed one parsed chunk at a time.

What it smooths over (see tests/llm/fixtures/ for each backend's shape):

- ids: backend ids (llama-server's 32 alphanumerics, Ollama's, none at all) are replaced by our own
  "call_" + 24 alphanumerics;
- `content: ""` or `null` alongside tool calls;
- streamed calls keyed by `index` (OpenAI, llama-server, vLLM), by `id` when `index` is missing, or
  complete in one chunk (Ollama); id/name repeated in every chunk (llama-cpp-python); arguments given
  as an object instead of a string; legacy `function_call`;
- calls written into the text (see `textcalls`), detected only when tools were offered;
- invalid argument JSON, repaired when unambiguous (see `repair`), else `ToolCall.error`;
- `parallel_tool_calls=False`: only the first call is kept.

Event discipline: `ToolCallStart` once per call, then its `ToolCallDelta`s; call i is finished before
call i+1 starts; indexes are contiguous from 0; exactly one `Completion`, last.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .repair import repair_arguments
from .textcalls import EmbeddedCall, TextCallScanner
from .types import ChatEvent, Completion, TextDelta, ToolCall, ToolCallDelta, ToolCallStart, Usage

_ALPHANUM = string.ascii_letters + string.digits


def new_call_id() -> str:
    return "call_" + "".join(secrets.choice(_ALPHANUM) for _ in range(24))


@dataclass
class _Slot:
    """One tool call as it is being assembled."""

    name: str = ""
    raw: str = ""
    index: int = -1  # our index; stays -1 when dropped (parallel_tool_calls=False)
    id: str = ""
    emitted: str = ""  # argument text already sent as deltas
    started: bool = False  # ToolCallStart sent


class StreamNormalizer:
    def __init__(
        self,
        tools: list[dict[str, Any]] | None = None,
        *,
        parallel_tool_calls: bool = True,
        detect_text_calls: bool = True,
        new_id: Callable[[], str] = new_call_id,
    ) -> None:
        names = [t.get("function", {}).get("name", "") for t in tools or []]
        self._scanner = TextCallScanner(names) if (names and detect_text_calls) else None
        self._parallel = parallel_tool_calls
        self._new_id = new_id
        self._slots: list[_Slot] = []  # kept calls, in our index order
        self._keys: dict[tuple[str, Any], _Slot] = {}
        self._active: _Slot | None = None
        self._anon: _Slot | None = None  # the last call of a backend that sends neither index nor id
        self._text: list[str] = []
        self._finish_reason: str | None = None
        self._usage: Usage | None = None
        self._done = False

    # -- input ------------------------------------------------------------------------------------------

    def feed(self, chunk: dict[str, Any]) -> list[ChatEvent]:
        """One parsed `chat.completion.chunk`, or a whole non-stream `chat.completion` (its `message` is
        read as the delta)."""
        out: list[ChatEvent] = []
        if isinstance(chunk.get("usage"), dict):
            self._usage = _usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._feed_text(content, out)
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                for pos, call in enumerate(calls):
                    if isinstance(call, dict):
                        self._feed_call(call, pos, len(calls), out)
            if isinstance(delta.get("function_call"), dict):
                self._feed_call({"index": -1, **delta["function_call"]}, 0, 1, out)
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return out

    def finish(self) -> list[ChatEvent]:
        """End of stream: flush held text, close the open call, and the `Completion`."""
        assert not self._done, "finish() called twice"
        self._done = True
        out: list[ChatEvent] = []
        if self._scanner is not None:
            self._items(self._scanner.finish(), out)
        self._close_active(out)
        calls = []
        for slot in self._slots:
            arguments, error = repair_arguments(slot.raw)
            if not slot.name:
                error = "the tool call has no function name"
            elif error and self._finish_reason == "length" and slot is self._slots[-1]:
                error += " (the answer was cut off at the token limit)"
            calls.append(ToolCall(slot.id, slot.name, arguments, error))
        out.append(Completion("".join(self._text), calls, self._reason(bool(calls)), self._usage))
        return out

    # -- text -------------------------------------------------------------------------------------------

    def _feed_text(self, text: str, out: list[ChatEvent]) -> None:
        if self._scanner is None:
            self._emit_text(text, out)
        else:
            self._items(self._scanner.feed(text), out)

    def _items(self, items: Iterable[str | EmbeddedCall], out: list[ChatEvent]) -> None:
        for item in items:
            if isinstance(item, str):
                self._emit_text(item, out)
            else:
                slot = _Slot(name=item.name, raw=item.arguments)
                self._open(slot, out)
                self._close_active(out)

    def _emit_text(self, text: str, out: list[ChatEvent]) -> None:
        self._text.append(text)
        out.append(TextDelta(text))

    # -- native calls -----------------------------------------------------------------------------------

    def _feed_call(self, call: dict[str, Any], pos: int, count: int, out: list[ChatEvent]) -> None:
        fn = call.get("function") if isinstance(call.get("function"), dict) else call
        assert isinstance(fn, dict)
        name = fn["name"] if isinstance(fn.get("name"), str) else ""
        args = fn.get("arguments")
        piece = args if isinstance(args, str) else ("" if args is None else json.dumps(args))
        slot = self._slot_for(call, name, pos, count)
        if slot is None:  # a new call
            slot = _Slot(name=name, raw=piece)
            self._remember(call, slot)
            self._open(slot, out)
            return
        if name and not slot.name:
            slot.name = name
        if not isinstance(args, str) and args is not None:
            if not slot.raw:  # a complete object (again): take it once
                slot.raw = piece
        else:
            slot.raw += piece
        if slot is self._active:
            self._flush_active(out)

    def _slot_for(self, call: dict[str, Any], name: str, pos: int, count: int) -> _Slot | None:
        if isinstance(call.get("index"), int):
            return self._keys.get(("index", call["index"]))
        if isinstance(call.get("id"), str) and call["id"]:
            return self._keys.get(("id", call["id"]))
        if count > 1 or self._anon is None:
            return None  # several calls in one chunk without keys: each one is new
        if name and name != self._anon.name:
            return None
        return self._anon if (not name or not _complete_json(self._anon.raw)) else None

    def _remember(self, call: dict[str, Any], slot: _Slot) -> None:
        if isinstance(call.get("index"), int):
            self._keys["index", call["index"]] = slot
        elif isinstance(call.get("id"), str) and call["id"]:
            self._keys["id", call["id"]] = slot
        else:
            self._anon = slot

    # -- event discipline -------------------------------------------------------------------------------

    def _open(self, slot: _Slot, out: list[ChatEvent]) -> None:
        """A new call: finish the open one, then start this one (or drop it)."""
        self._close_active(out)
        if self._slots and not self._parallel:
            return  # dropped: later fragments still land in it, but it is never reported
        slot.index = len(self._slots)
        slot.id = self._new_id()
        self._slots.append(slot)
        self._active = slot
        self._flush_active(out)

    def _flush_active(self, out: list[ChatEvent], *, closing: bool = False) -> None:
        """Send what is new of the open call; it starts once its name is known (or when it closes)."""
        slot = self._active
        if slot is None or not (slot.name or closing):
            return
        if not slot.started:
            out.append(ToolCallStart(slot.index, slot.id, slot.name))
            slot.started = True
        if len(slot.raw) > len(slot.emitted) and slot.raw.startswith(slot.emitted):
            out.append(ToolCallDelta(slot.index, slot.raw[len(slot.emitted) :]))
            slot.emitted = slot.raw

    def _close_active(self, out: list[ChatEvent]) -> None:
        """The open call is complete. If repairing its arguments only appends (e.g. a missing "}"),
        that is sent as a last delta, so the deltas add up to the final arguments."""
        slot = self._active
        if slot is None:
            return
        self._flush_active(out, closing=True)
        self._active = None
        repaired, error = repair_arguments(slot.raw)
        if error is None and len(repaired) > len(slot.emitted) and repaired.startswith(slot.emitted):
            out.append(ToolCallDelta(slot.index, repaired[len(slot.emitted) :]))
            slot.emitted = repaired

    def _reason(self, has_calls: bool) -> str:
        if has_calls:
            return "tool_calls"
        return "length" if self._finish_reason == "length" else "stop"


def normalize_chunks(chunks: Iterable[dict[str, Any]], **options: Any) -> list[ChatEvent]:
    """Run a whole recorded stream (or `[response]` for a non-stream body) through a normaliser."""
    norm = StreamNormalizer(**options)
    events: list[ChatEvent] = []
    for chunk in chunks:
        events.extend(norm.feed(chunk))
    events.extend(norm.finish())
    return events


def _usage(raw: dict[str, Any]) -> Usage:
    def num(key: str) -> int:
        value = raw.get(key)
        return value if isinstance(value, int) else 0

    prompt, completion = num("prompt_tokens"), num("completion_tokens")
    return Usage(prompt, completion, num("total_tokens") or prompt + completion)


def _complete_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
