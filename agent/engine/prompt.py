"""Prompt assembly: instructions, the thread as chat messages (with earlier tool calls), truncation."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from agent.store import Store

if TYPE_CHECKING:
    from agent.engine.events import RunSpec

Entry = tuple[str, dict[str, Any]]  # ("message", thread message) | ("step", tool_calls step)
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
    """A step's tool call as the assistant's ``tool_calls`` entry and the tool message content."""
    kind = call["type"]
    body = call[kind]
    if kind == "function":
        name, args, output = body["name"], body["arguments"], body.get("output")
    elif kind == "code_interpreter":
        name, args = "code_interpreter", json.dumps({"code": body.get("input", "")})
        output = body.get("_model_output") or "\n".join(
            o["logs"] if o["type"] == "logs" else f"[image {o['image']['file_id']}]" for o in body["outputs"]
        )
    else:
        name, args = "file_search", json.dumps({"query": body.get("_model_input", "")})
        output = body.get("_model_output") or ""
    return {"id": call["id"], "type": "function", "function": {"name": name, "arguments": args}}, output


def steps_to_chat(steps: list[dict[str, Any]], messages: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return timeline_to_chat(_expand(steps, messages))


def _expand(steps: list[dict[str, Any]], messages: dict[str, dict[str, Any]]) -> list[Entry]:
    out: list[Entry] = []
    for step in steps:
        if step["type"] == "message_creation":
            msg = messages.pop(step["step_details"]["message_creation"]["message_id"], None)
            if msg is not None:
                out.append(("message", msg))
        else:
            out.append(("step", step))
    return out


def timeline_to_chat(entries: list[Entry]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for kind, obj in entries:
        if kind == "message":
            if obj["content"]:
                out.append({"role": obj["role"], "content": message_text(obj)})
            continue
        calls = [call_to_chat(c) for c in obj["step_details"]["tool_calls"]]
        answered = [(c, o) for c, o in calls if o is not None]
        if not answered:
            continue
        out.append({"role": "assistant", "content": None, "tool_calls": [c for c, _ in answered]})
        out.extend({"role": "tool", "tool_call_id": c["id"], "content": o} for c, o in answered)
    return out


def timeline(msgs: list[dict[str, Any]], steps: list[dict[str, Any]], run_id: str | None) -> list[Entry]:
    """A thread's messages and steps in conversation order: each run's steps where that run spoke (its
    first message), a run that wrote no message after the message it follows (``_after``), and the
    current run's steps last."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_run.setdefault(step["run_id"], []).append(step)
    anchored: dict[str | None, list[str]] = {}
    spoke = {m["run_id"] for m in msgs if m["run_id"]}
    for rid, run_steps in by_run.items():
        if rid not in spoke and rid != run_id and "_after" in run_steps[0]:
            anchored.setdefault(run_steps[0]["_after"], []).append(rid)
    run_messages = {m["id"]: m for m in msgs if m["run_id"]}
    out: list[Entry] = []
    for rid in anchored.pop(None, []):
        out.extend(_expand(by_run.pop(rid), run_messages))
    for msg in msgs:
        rid = msg["run_id"]
        if rid in by_run:  # a run's first message: everything that run did, in step order
            out.extend(_expand(by_run.pop(rid), run_messages))
        elif rid is None or run_messages.pop(msg["id"], None) is not None:
            out.append(("message", msg))
        for later in anchored.pop(msg["id"], []):
            out.extend(_expand(by_run.pop(later), run_messages))
    out.extend(_expand(by_run.pop(run_id, []) if run_id else [], run_messages))
    return out


async def thread_rows(
    store: Store, owner: str, thread_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    msgs, steps = await asyncio.gather(
        _all(store, "message", owner, thread_id), _all(store, "step", owner, thread_id)
    )
    return msgs, steps


async def thread_messages(
    store: Store, owner: str, thread_id: str, run_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The thread as chat messages, in order, with each run's steps (tool calls and outputs) where that
    run spoke; and the stored messages it was made from."""
    msgs, steps = await thread_rows(store, owner, thread_id)
    return timeline_to_chat(timeline(msgs, steps, run_id)), msgs


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


def build(spec: RunSpec, history: list[dict[str, Any]], context: int, note: str = "") -> list[dict[str, Any]]:
    """System message (instructions, then ``note``: facts about the tools), then the truncated thread."""
    hoisted = [m["content"] for m in history if m["role"] == "system"]  # system/developer input items
    history = [m for m in history if m["role"] != "system"] if hoisted else history
    instructions = "\n\n".join(p for p in (spec.instructions, *hoisted, note) if p)
    system = [{"role": "system", "content": instructions}] if instructions else []
    if (spec.truncation or {}).get("type") == "disabled":
        return system + history  # the backend refuses what does not fit (a context overflow)
    budget = max(256, context - estimate_tokens(system) - (spec.max_completion_tokens or 1024))
    if spec.max_prompt_tokens:
        budget = min(budget, spec.max_prompt_tokens - estimate_tokens(system))
    return system + truncate(history, spec.truncation, budget)
