"""The tool seam: what the model sees (a function schema) and what a run step records.

Server-side tools (code_interpreter, calculator, file_search) run inside the run; a ``function`` tool
belongs to the client and sends the run to ``requires_action``. A tool's own failure is output the model
reads, never an exception that fails the run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass
class ToolContext:
    """What a server-side tool may use while it runs inside one run."""

    owner: str
    thread_id: str
    run_id: str
    assistant: dict[str, Any]
    thread: dict[str, Any]


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
