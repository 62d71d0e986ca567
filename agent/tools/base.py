"""The tool seam: what the model sees (a function schema) and what a run step records.

Server-side tools (code_interpreter, calculator, file_search) run inside the run; a ``function`` tool
belongs to the client and sends the run to ``requires_action``. A tool's own failure is output the model
reads, never an exception that fails the run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ToolContext:
    """What a server-side tool may use while it runs inside one run leg, and what it leaves for the answer."""

    owner: str
    thread_id: str
    run_id: str
    assistant: dict[str, Any]
    thread: dict[str, Any]
    tools: list[dict[str, Any]] = field(default_factory=list)
    attached: list[str] = field(default_factory=list)
    """File ids attached to the thread's messages for code_interpreter."""
    sources: list[str] = field(default_factory=list)
    """file_search results cited as 【n†name】, by n."""
    made: list[dict[str, Any]] = field(default_factory=list)
    """Files code_interpreter produced: {"file": File, "image": True} or {"file": File, "path": "/mnt/data/…"}."""
    working: Callable[[str], Awaitable[None]] | None = None
    """Told by a built-in tool (by name) as it starts its real work: the Responses adapter sends
    ``…interpreting`` / ``…searching`` then."""

    async def started_work(self, tool: str) -> None:
        if self.working is not None:
            await self.working(tool)

    def cite(self, file_id: str, filename: str) -> str:
        self.sources.append(file_id)
        return f"【{len(self.sources) - 1}†{filename}】"

    def code_file_ids(self) -> list[str]:
        ids: list[str] = []
        for obj in (self.assistant, self.thread):
            ci = (obj.get("tool_resources") or {}).get("code_interpreter") or {}
            ids.extend(ci.get("file_ids") or [])
        return list(dict.fromkeys(ids + self.attached))


@dataclass
class ToolOutput:
    text: str
    """What goes back to the model as the tool message."""
    record: dict[str, Any]
    """The step's tool-call body (e.g. ``{"input":…,"outputs":[…]}`` for code_interpreter)."""
    files: list[dict[str, Any]] = field(default_factory=list)
    """Files the call produced (File objects), offered to the assistant's message."""


class ServerTool(Protocol):
    name: str
    step_type: str
    """The tool-call ``type`` in a run step: ``code_interpreter``, ``file_search`` or ``function``."""
    input_field: str | None
    """An argument streamed into the step as ``input`` while the model writes it (``code``)."""

    def schema(self) -> dict[str, Any]: ...

    def start_record(self, call_id: str) -> dict[str, Any]:
        """The first step delta for this call (constant fields, sent once)."""
        ...

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput: ...


def function_schema(name: str, description: str, param: str, param_description: str) -> dict[str, Any]:
    """A one-string-parameter function: how local models see each built-in tool (a contract)."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {param: {"type": "string", "description": param_description}},
                "required": [param],
            },
        },
    }


class StringField:
    """Decodes one string field of a JSON object as its text streams in (``{"code": "print(1)\\n…``)."""

    _ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", '"': '"', "\\": "\\", "/": "/"}

    def __init__(self, name: str) -> None:
        self._prefix = f'"{name}"'
        self._seen = ""
        self._state = "seek"  # seek → value → done
        self._pending = ""  # an incomplete escape sequence

    def feed(self, fragment: str) -> str:
        out: list[str] = []
        for ch in fragment:
            if self._state == "seek":
                self._seen += ch
                head = self._seen.split(self._prefix, 1)
                if len(head) == 2 and head[1].lstrip().startswith(":") and head[1].rstrip().endswith('"'):
                    self._state = "value"
            elif self._state == "value":
                out.append(self._char(ch))
        return "".join(out)

    def _char(self, ch: str) -> str:
        if self._pending:
            self._pending += ch
            if self._pending[1] == "u":
                if len(self._pending) < 6:
                    return ""
                code, self._pending = self._pending[2:], ""
                try:
                    return chr(int(code, 16))
                except ValueError:
                    return ""
            esc, self._pending = self._pending[1], ""
            return self._ESCAPES.get(esc, esc)
        if ch == "\\":
            self._pending = ch
            return ""
        if ch == '"':
            self._state = "done"
            return ""
        return ch
