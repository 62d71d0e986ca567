"""Prompted tool calling, for models without native tool calling (tool_mode="prompted").

No `tools` are sent. The tool schemas go into the system prompt with the Hermes/Qwen convention: answer
with ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``. Earlier calls and their results in the
history are rendered as text in the same convention, so the model sees a consistent transcript; the
answer is parsed by the same normaliser as native output.
"""

from __future__ import annotations

import json
from typing import Any

from .textcalls import HERMES_CLOSE, HERMES_OPEN

_HEADER = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""


def tools_prompt(tools: list[dict[str, Any]], tool_choice: str | None) -> str:
    lines = "\n".join(json.dumps(t, ensure_ascii=False) for t in tools)
    text = _HEADER.format(tools=lines)
    if tool_choice == "required":
        names = [t["function"]["name"] for t in tools]
        text += (
            f"\n\nYou must call the function `{names[0]}` now."
            if len(names) == 1
            else "\n\nYou must call at least one function now."
        )
    return text


def render_messages(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]], tool_choice: str | None
) -> list[dict[str, Any]]:
    """The conversation with the tools in the system prompt and tool traffic as plain text."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "assistant" and m.get("tool_calls"):
            out.append({"role": "assistant", "content": _assistant_text(m)})
        elif role == "tool":
            block = f"<tool_response>\n{content_text(m.get('content'))}\n</tool_response>"
            if out and out[-1].get("_tool_results"):
                out[-1]["content"] += "\n" + block
            else:
                out.append({"role": "user", "content": block, "_tool_results": True})
        else:
            out.append(dict(m))
    for m in out:
        m.pop("_tool_results", None)
    if tools:
        prompt = tools_prompt(tools, tool_choice)
        if out and out[0].get("role") == "system":
            out[0] = {**out[0], "content": content_text(out[0].get("content")).rstrip() + "\n\n" + prompt}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


def content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of a content-part list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return str(content)


def _assistant_text(message: dict[str, Any]) -> str:
    parts = [content_text(message.get("content")).strip()]
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        args = fn.get("arguments") or "{}"
        try:
            parsed: Any = json.loads(args) if isinstance(args, str) else args
        except ValueError:
            parsed = args
        body = json.dumps({"name": fn.get("name", ""), "arguments": parsed}, ensure_ascii=False)
        parts.append(f"{HERMES_OPEN}\n{body}\n{HERMES_CLOSE}")
    return "\n".join(p for p in parts if p)
