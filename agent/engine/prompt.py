"""Prompt assembly: instructions, the thread as chat messages (with earlier tool calls), truncation."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agent.store import Store

CHARS_PER_TOKEN = 4  # estimate used for truncation; the backend's own count decides usage


def estimate_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(json.dumps(m)) for m in messages) // CHARS_PER_TOKEN + 3 * len(messages)


def message_text(msg: dict[str, Any]) -> str:
    parts = []
    for part in msg["content"]:
        if part["type"] == "text":
            parts.append(part["text"]["value"])
        elif part["type"] == "image_file":
            parts.append(f"[image: {part['image_file']['file_id']}]")
        elif part["type"] == "image_url":
            parts.append(f"[image: {part['image_url']['url']}]")
    return "\n".join(parts)


def call_to_chat(call: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """A step's tool call as the assistant's ``tool_calls`` entry and the tool message content: the
    record's transcript (every server-side result has one); a client function's submitted output."""
    seen = call.get("transcript")
    if seen is not None:
        name, args, output = seen["name"], seen["arguments"], seen["output"]
    elif call["type"] == "function":
        name, args, output = (
            call["function"]["name"],
            call["function"]["arguments"],
            call["function"].get("output"),
        )
    else:  # recorded before transcripts: the engine-only keys of that time
        body = call[call["type"]]
        name = call["type"]
        key = "code" if name == "code_interpreter" else "query"
        args = json.dumps({key: body.get("input") if key == "code" else body.get("_model_input", "")})
        output = body.get("_model_output") or ""
    return {"id": call["id"], "type": "function", "function": {"name": name, "arguments": args}}, output


def steps_to_chat(steps: list[dict[str, Any]], messages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for step in steps:
        details = step["step_details"]
        if step["type"] == "message_creation":
            msg = messages.pop(details["message_creation"]["message_id"], None)
            if msg is not None and msg["content"]:
                out.append({"role": "assistant", "content": message_text(msg)})
            continue
        calls = [call_to_chat(c) for c in details["tool_calls"]]
        answered = [(c, o) for c, o in calls if o is not None]
        if not answered:
            continue
        out.append({"role": "assistant", "content": None, "tool_calls": [c for c, _ in answered]})
        out.extend({"role": "tool", "tool_call_id": c["id"], "content": o} for c, o in answered)
    return out


async def thread_messages(
    store: Store, owner: str, thread_id: str, run_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The thread as chat messages, in order, with each run's steps (tool calls and outputs) where that
    run spoke; and the stored messages it was made from."""
    msgs, steps = await asyncio.gather(
        _all(store, "message", owner, thread_id), _all(store, "step", owner, thread_id)
    )
    by_run: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_run.setdefault(step["run_id"], []).append(step)
    run_messages = {m["id"]: m for m in msgs if m["run_id"]}
    out: list[dict[str, Any]] = []
    for msg in msgs:
        rid = msg["run_id"]
        if rid in by_run:  # a run's first message: everything that run did, in step order
            out.extend(steps_to_chat(by_run.pop(rid), run_messages))
        elif rid is None or run_messages.pop(msg["id"], None) is not None:
            out.append({"role": msg["role"], "content": message_text(msg)})
    out.extend(steps_to_chat(by_run.pop(run_id, []), run_messages))
    return out, msgs


async def _all(store: Store, kind: str, owner: str, thread_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after = None
    while True:
        page = await store.list(kind, owner, parent=thread_id, limit=100, order="asc", after=after)
        out.extend(page.data)
        if not page.has_more:
            return out
        after = page.data[-1]["id"]


def truncate(
    history: list[dict[str, Any]], strategy: dict[str, Any] | None, budget: int
) -> list[dict[str, Any]]:
    """``last_messages`` keeps the N most recent thread messages; ``auto`` drops the oldest to fit."""
    strategy = strategy or {"type": "auto"}
    if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
        history = _from_turn(
            history, len(history) - _nth_message_from_end(history, strategy["last_messages"])
        )
    while len(history) > 1 and estimate_tokens(history) > budget:
        history = _from_turn(history, 1)
    return history


def _nth_message_from_end(history: list[dict[str, Any]], n: int) -> int:
    seen = 0
    for i in range(len(history) - 1, -1, -1):
        if history[i]["role"] in ("user", "assistant") and not history[i].get("tool_calls"):
            seen += 1
            if seen == n:
                return len(history) - i
    return len(history)


def _from_turn(history: list[dict[str, Any]], start: int) -> list[dict[str, Any]]:
    """Cut at ``start`` without leaving a tool result whose call was cut away."""
    while start < len(history) and history[start]["role"] == "tool":
        start += 1
    return history[start:]


def build(
    run: dict[str, Any], history: list[dict[str, Any]], context: int, note: str = ""
) -> list[dict[str, Any]]:
    """System message (instructions, then ``note``: facts about the tools), then the truncated thread."""
    instructions = "\n\n".join(p for p in (run.get("instructions"), note) if p)
    system = [{"role": "system", "content": instructions}] if instructions else []
    budget = max(256, context - estimate_tokens(system) - (run.get("max_completion_tokens") or 1024))
    if run.get("max_prompt_tokens"):
        budget = min(budget, run["max_prompt_tokens"] - estimate_tokens(system))
    return system + truncate(history, run.get("truncation_strategy"), budget)
