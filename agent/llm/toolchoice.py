"""Tool-choice semantics that local backends do not enforce, enforced by shaping the request.

llama-server (measured with the tiny models, see tests/fixtures/llama-server/) treats a named `tool_choice` as "auto", does not
make "required" start a call, and ignores `parallel_tool_calls: false`. So:

- "none"      → no tools are sent at all (and text is never parsed for calls);
- named       → only that tool is sent, with tool_choice "required";
- "required" / named, when the answer has no call → one more request with no tools and a
  `response_format` JSON schema `{"name": enum of allowed names, "arguments": that tool's parameters}`,
  which llama-server (and vLLM, Ollama) enforce by grammar; the JSON is read back as the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .textcalls import EmbeddedCall, parse_call_text
from .types import ChatRequest

FORCED_INSTRUCTION = (
    "Call one of the available tools now. Answer with a single JSON object of the form "
    '{"name": <tool name>, "arguments": <the arguments object>} and nothing else.'
)


@dataclass
class ToolPlan:
    """What to offer the backend for one request."""

    tools: list[dict[str, Any]]
    """The tools to offer (empty: none)."""
    tool_choice: str | None
    """"auto" | "required" | None (no tools)."""
    forced: bool
    """A call is required: fall back to constrained decoding if the model answers without one."""


def plan_tools(request: ChatRequest) -> ToolPlan:
    tools = [t for t in request.tools or [] if isinstance(t.get("function"), dict)]
    choice = request.tool_choice
    if not tools or choice == "none":
        return ToolPlan([], None, False)
    if isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        named = [t for t in tools if t["function"].get("name") == name]
        return ToolPlan(named, "required", True) if named else ToolPlan([], None, False)
    if choice == "required":
        return ToolPlan(tools, "required", True)
    return ToolPlan(tools, "auto", False)


def forced_response_format(tools: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON schema that only admits a call of one of `tools`."""
    names = [t["function"]["name"] for t in tools]
    if len(tools) == 1:
        arguments = _object_schema(tools[0]["function"].get("parameters"))
    else:
        arguments = {"type": "object"}
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "enum": names}, "arguments": arguments},
        "required": ["name", "arguments"],
        "additionalProperties": False,
    }
    return {"type": "json_schema", "json_schema": {"name": "tool_call", "strict": True, "schema": schema}}


def forced_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation plus the instruction to answer with a call (appended to the system prompt, as
    some chat templates accept a system message only first)."""
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system" and isinstance(out[0].get("content"), str):
        out[0]["content"] = out[0]["content"].rstrip() + "\n\n" + FORCED_INSTRUCTION
    else:
        out.insert(0, {"role": "system", "content": FORCED_INSTRUCTION})
    return out


def parse_forced(text: str, tools: list[dict[str, Any]]) -> EmbeddedCall | None:
    """The constrained answer → a call of one of `tools`, or None."""
    call = parse_call_text(text)
    names = {t["function"]["name"] for t in tools}
    return call if call is not None and call.name in names else None


def _object_schema(parameters: Any) -> dict[str, Any]:
    if isinstance(parameters, dict) and parameters.get("type") == "object":
        return parameters
    return {"type": "object"}
