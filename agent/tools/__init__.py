"""Tools a run can use: the server-side ones (code_interpreter, calculator, file_search) and client functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.tools.base import ServerTool, ToolContext, ToolOutput, function_schema
from agent.tools.strict import violation

__all__ = ["ServerTool", "ToolContext", "ToolOutput", "Toolbox", "function_schema"]


@dataclass
class Toolbox:
    """The tools of one run: what the model is offered and how each name is dispatched."""

    schemas: list[dict[str, Any]] = field(default_factory=list)
    server: dict[str, ServerTool] = field(default_factory=dict)
    functions: set[str] = field(default_factory=set)
    strict: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Schemas of the ``strict`` client functions, whose arguments must match them."""

    @classmethod
    def build(cls, tools: list[dict[str, Any]], available: dict[str, ServerTool]) -> Toolbox:
        box = cls()
        for tool in tools:
            kind = tool["type"]
            if kind == "function":
                name = tool["function"]["name"]
                if name == "calculator" and "calculator" in available:
                    kind = "calculator"  # a function named calculator is our calculator
                else:
                    box.functions.add(name)
                    if tool["function"].get("strict"):
                        box.strict[name] = tool["function"].get("parameters") or {"type": "object"}
                    box.schemas.append({"type": "function", "function": tool["function"]})
                    continue
            server = available.get(kind)
            if server is not None and server.name not in box.server:
                box.server[server.name] = server
                box.schemas.append(server.schema())
        return box

    def knows(self, name: str) -> bool:
        return name in self.server or name in self.functions

    def mistake(self, name: str, arguments: str) -> str | None:
        """Why a call to a strict function does not match its schema (None when it does)."""
        found = violation(self.strict[name], arguments) if name in self.strict else None
        return f"the call does not match the schema of {name}: {found}" if found else None
