"""Responses items as data: to the chat transcript the model reads, and to and from a thread's rows.

A thread is a conversation: a message item is a thread message, a ``function_call`` item is a call in
a ``tool_calls`` run step and its ``function_call_output`` is that call's ``output``. Ids of call items
are derived from the call id (``call_X`` → ``fc_X`` / ``fco_X``), so nothing else needs storing.
"""

from __future__ import annotations

import json
from typing import Any

from agent.domain import new_id, new_message, now

INPUT_ROLES = ("user", "system", "developer")


# --- items → the chat transcript ---------------------------------------------------------------------
def part_text(part: dict[str, Any]) -> str:
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "summary_text", "reasoning_text"):
        return str(part.get("text") or "")
    if kind == "refusal":
        return str(part.get("refusal") or "")
    if kind == "input_image":
        return f"[image: {part.get('image_url') or part.get('file_id')}]"
    if kind == "input_file":
        body = part.get("_text")
        name = part.get("filename") or part.get("file_id") or "file"
        return f"[file {name}]\n{body}" if body else f"[file: {name}]"
    return ""


def content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "\n".join(t for t in (part_text(p) for p in content or []) if t)


def to_chat(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items in order as chat messages; consecutive calls share one assistant message."""
    out: list[dict[str, Any]] = []
    for item in items:
        kind = item.get("type") or "message"
        if kind == "message":
            role = item.get("role", "user")
            role = "system" if role == "developer" else role
            out.append({"role": role, "content": content_text(item.get("content"))})
        elif kind == "function_call" or "_call" in item:
            call = item.get("_call") or {"name": item["name"], "arguments": item.get("arguments") or "{}"}
            call_id = item.get("call_id") or item.get("_call_id") or item["id"]  # built-in items: their own
            entry = {"id": call_id, "type": "function", "function": call}
            last = out[-1] if out else None
            if last and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(entry)
            else:
                out.append({"role": "assistant", "content": None, "tool_calls": [entry]})
            if "_model_output" in item:  # a server-side call: what the tool answered
                out.append({"role": "tool", "tool_call_id": call_id, "content": item["_model_output"]})
        elif kind == "function_call_output":
            out.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": content_text(item["output"])}
            )
    return _answered(out)


def _answered(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Drop calls that have no output (and outputs without a call): the model reads whole turns only."""
    outputs = {m["tool_call_id"] for m in messages if m["role"] == "tool"}
    calls: set[str] = set()
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.get("tool_calls") is not None:
            kept = [c for c in m["tool_calls"] if c["id"] in outputs]
            calls.update(c["id"] for c in kept)
            if kept:
                out.append({**m, "tool_calls": kept})
        elif m["role"] == "tool":
            if m["tool_call_id"] in calls:
                out.append(m)
        else:
            out.append(m)
    return out


def pending_calls(items: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(calls without an output, outputs without a call), by call id, in order."""
    calls = [i["call_id"] for i in items if i.get("type") == "function_call"]
    outputs = [i["call_id"] for i in items if i.get("type") == "function_call_output"]
    return [c for c in calls if c not in outputs], [o for o in outputs if o not in calls]


# --- output items as the engine writes them ------------------------------------------------------------
def message_item(status: str = "in_progress") -> dict[str, Any]:
    return {"id": new_id("msg_"), "type": "message", "status": status, "role": "assistant", "content": []}


def output_text(text: str = "") -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(call_id: str, name: str, arguments: str = "") -> dict[str, Any]:
    return {
        "id": call_item_id(call_id, "fc_"),
        "type": "function_call",
        "status": "in_progress",
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def call_item_id(call_id: str, prefix: str) -> str:
    return prefix + call_id.removeprefix("call_")


INCLUDED = {"code_interpreter_call": ("outputs", "code_interpreter_call.outputs"),
            "file_search_call": ("results", "file_search_call.results")}  # fmt: skip
"""Fields of built-in tool items that clients see only when the response's ``include`` asks for them."""


def render(item: dict[str, Any], include: list[str] | None = None) -> dict[str, Any]:
    """An item as clients see it: no engine-only fields (``include`` defaults to the response's)."""
    out = {k: v for k, v in item.items() if not k.startswith("_")}
    hidden = INCLUDED.get(str(out.get("type")))
    if hidden and hidden[1] not in (include if include is not None else item.get("_include") or []):
        out[hidden[0]] = None
    if isinstance(out.get("content"), list):
        out["content"] = [{k: v for k, v in p.items() if not k.startswith("_")} for p in out["content"]]
    return out


# --- a thread's rows ↔ items ---------------------------------------------------------------------------
def message_to_item(msg: dict[str, Any]) -> dict[str, Any]:
    role = msg["role"]
    parts: list[dict[str, Any]] = []
    for part in msg["content"]:
        if part["type"] == "text":
            text = part["text"]["value"]
            parts.append(output_text(text) if role == "assistant" else {"type": "input_text", "text": text})
        elif part["type"] == "image_url":
            parts.append({"type": "input_image", "image_url": part["image_url"]["url"], "detail": "auto"})
        elif part["type"] == "image_file":
            parts.append({"type": "input_image", "file_id": part["image_file"]["file_id"], "detail": "auto"})
    status = msg.get("status") or "completed"
    return {"id": msg["id"], "type": "message", "status": status, "role": role, "content": parts}


def step_to_items(step: dict[str, Any]) -> list[dict[str, Any]]:
    """A tool_calls step's function calls as function_call (+ function_call_output) items."""
    out: list[dict[str, Any]] = []
    for call in step["step_details"].get("tool_calls") or []:
        kept = (call.get(call["type"]) or {}).get("_item")
        if kept is not None:  # a Responses built-in call, kept whole
            out.append(kept)
            continue
        if call["type"] != "function":
            continue  # built-in tool calls become their own item types (Responses built-in tools)
        fn = call["function"]
        item = function_call_item(call["id"], fn["name"], fn.get("arguments") or "")
        item["status"] = "completed"
        out.append(item)
        if fn.get("output") is not None:
            out.append(
                {
                    "id": call_item_id(call["id"], "fco_"),
                    "type": "function_call_output",
                    "status": "completed",
                    "call_id": call["id"],
                    "output": fn["output"],
                }
            )
    return out


def item_to_message(thread_id: str, item: dict[str, Any], run_id: str | None = None) -> dict[str, Any]:
    """A message item as the thread message it is stored as (text and image parts)."""
    content = item.get("content")
    parts: list[dict[str, Any]] = []
    for part in [{"type": "input_text", "text": content}] if isinstance(content, str) else content or []:
        kind = part.get("type")
        if kind == "input_image" and part.get("image_url"):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"], "detail": "auto"}})
        elif kind == "input_image" and part.get("file_id"):
            parts.append({"type": "image_file", "image_file": {"file_id": part["file_id"], "detail": "auto"}})
        else:
            parts.append({"type": "text", "text": {"value": part_text(part), "annotations": []}})
    msg = new_message(thread_id, item.get("role", "user"), parts, run_id=run_id)
    if item.get("id", "").startswith("msg_"):
        msg["id"] = item["id"]
    msg["status"] = item.get("status") or "completed"
    return msg


def calls_step(thread_id: str, run_id: str, calls: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    """function_call items as a completed tool_calls step (``_after``: the message it follows)."""
    created = now()
    return {
        "id": new_id("step_"),
        "object": "thread.run.step",
        "created_at": created,
        "assistant_id": None,
        "thread_id": thread_id,
        "run_id": run_id,
        "type": "tool_calls",
        "status": "completed",
        "step_details": {
            "type": "tool_calls",
            "tool_calls": [
                {
                    "id": c["call_id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": c.get("arguments") or "", "output": None},
                }
                if c["type"] == "function_call"
                else builtin_step_call(c)
                for c in calls
            ],
        },
        "last_error": None,
        "expired_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": created,
        "metadata": {},
        "usage": None,
        "_after": after,
    }


def message_step(thread_id: str, run_id: str, message_id: str) -> dict[str, Any]:
    step = calls_step(thread_id, run_id, [], None)
    step.pop("_after")
    step.update(
        type="message_creation",
        step_details={"type": "message_creation", "message_creation": {"message_id": message_id}},
    )
    return step


def dumps_output(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output)


def builtin_step_call(item: dict[str, Any]) -> dict[str, Any]:
    """A Responses built-in call as a step's tool call: the model reads it as an Assistants run's call
    (``agent.engine.prompt.call_to_chat``); ``_item`` keeps the item for the conversation's item list."""
    call = item.get("_call") or {}
    text = item.get("_model_output") or ""
    call_id = item.get("_call_id") or item["id"]
    whole = {k: v for k, v in item.items() if k not in ("_call", "_model_output")}
    if item["type"] == "code_interpreter_call":
        body: dict[str, Any] = {
            "input": item.get("code") or "",
            "outputs": [],
            "_model_output": text,
            "_item": whole,
        }
        return {"id": call_id, "type": "code_interpreter", "code_interpreter": body}
    if item["type"] == "file_search_call":
        query = (item.get("queries") or [""])[0]
        body = {"_model_input": query, "_model_output": text, "results": [], "_item": whole}
        return {"id": call_id, "type": "file_search", "file_search": body}
    fn = {
        "name": call.get("name", ""),
        "arguments": call.get("arguments", ""),
        "output": text,
        "_item": whole,
    }
    return {"id": call_id, "type": "function", "function": fn}
