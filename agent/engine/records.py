"""The run's side effects, persisted then published: run transitions, steps, messages and their deltas.

This is where the engine meets the Assistants wire shapes; the loop only calls these verbs.
"""

from __future__ import annotations

import re
from typing import Any

from agent.api.common import new_id, now
from agent.api.messages import new_message
from agent.engine.bus import EventBus
from agent.store import Store, db
from agent.tools import ToolContext

CITATION = re.compile(r"【(?:\d+:)?(\d+)†[^】]*】")
SANDBOX_LINK = re.compile(r"sandbox:/mnt/data/[^\s)\]\"'<>]+")

TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
TRANSCRIPT = "transcript"
"""The field of a stored tool-call record holding what the model sent and reads back (its tool message),
filled for every server-side result, success or failure; the prompt is built from it. Not on the wire."""


def transcript(name: str, arguments: str, output: str) -> dict[str, str]:
    return {"name": name, "arguments": arguments, "output": output}


LEG_END = (*TERMINAL, "requires_action")


def add_usage(total: dict[str, int] | None, usage: dict[str, int] | None) -> dict[str, int] | None:
    if usage is None:
        return total
    if total is None:
        return dict(usage)
    return {
        k: total.get(k, 0) + usage.get(k, 0) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
    }


class RunRecorder:
    """Holds the run being executed and writes every change through to the store and the bus."""

    def __init__(self, store: Store, bus: EventBus, run: dict[str, Any], owner: str) -> None:
        self.store, self.bus, self.run, self.owner = store, bus, run, owner
        self.thread_id: str = run["thread_id"]
        self.message: dict[str, Any] | None = None  # the assistant message being written
        self.message_step: dict[str, Any] | None = None
        self.tool_step: dict[str, Any] | None = None  # the tool_calls step being written
        self.ctx: ToolContext | None = None  # what this leg's tools produced (citations, files)
        self.include_content = False  # include[] asked for file_search result content
        self.assistant: dict[str, Any] | None = None  # already loaded by the API handler, if any
        self.thread: dict[str, Any] | None = None
        self._shown_images = 0

    def publish(self, name: str, data: dict[str, Any]) -> None:
        if data.get("object") == "thread.run.step":
            data = render_step(data, self.include_content)
        else:
            data = scrub(data)  # scrub copies every dict and list
        self.bus.publish(self.run["id"], name, data)

    # --- run ------------------------------------------------------------------------------------
    async def set_status(self, status: str, **fields: Any) -> None:
        self._transition(status, **fields)
        await self.store.update("run", self.run, self.owner, parent=self.thread_id, **_lease_cols(status))
        self.publish(f"thread.run.{status}", self.run)

    def _transition(self, status: str, **fields: Any) -> None:
        run = self.run
        run.update(status=status, **fields)
        stamp = {
            "in_progress": "started_at",
            "completed": "completed_at",
            "failed": "failed_at",
            "cancelled": "cancelled_at",
        }.get(status)
        if stamp:
            run[stamp] = now()
        if status in TERMINAL:
            run["expires_at"] = None
            run["required_action"] = None

    # --- steps ----------------------------------------------------------------------------------
    def _new_step(self, kind: str, details: dict[str, Any]) -> dict[str, Any]:
        run = self.run
        return {
            "id": new_id("step_"),
            "object": "thread.run.step",
            "created_at": now(),
            "assistant_id": run["assistant_id"],
            "thread_id": run["thread_id"],
            "run_id": run["id"],
            "type": kind,
            "status": "in_progress",
            "step_details": {"type": kind, kind: details},
            "last_error": None,
            "expired_at": None,
            "cancelled_at": None,
            "failed_at": None,
            "completed_at": None,
            "metadata": {},
            "usage": None,
        }

    async def _insert_step(self, step: dict[str, Any]) -> None:
        await self.store.insert("step", step, self.owner, parent=self.thread_id, run_id=self.run["id"])
        self.publish("thread.run.step.created", step)
        self.publish("thread.run.step.in_progress", step)

    async def save_step(self, step: dict[str, Any]) -> None:
        await self.store.update("step", step, self.owner, parent=self.thread_id)

    async def end_step(
        self,
        step: dict[str, Any],
        status: str,
        usage: dict[str, int] | None = None,
        error: dict[str, str] | None = None,
    ) -> None:
        _end(step, status, usage, error)
        await self.save_step(step)
        self.publish(f"thread.run.step.{status}", step)

    async def tool_step_open(self) -> dict[str, Any]:
        if self.tool_step is None:
            await self.close_message("completed")
            self.tool_step = self._new_step("tool_calls", [])  # type: ignore[arg-type]
            self.tool_step["step_details"] = {"type": "tool_calls", "tool_calls": []}
            await self._insert_step(self.tool_step)
        return self.tool_step

    def step_delta(self, step: dict[str, Any], call_delta: dict[str, Any]) -> None:
        self.publish(
            "thread.run.step.delta",
            {
                "id": step["id"],
                "object": "thread.run.step.delta",
                "delta": {"step_details": {"type": "tool_calls", "tool_calls": [call_delta]}},
            },
        )

    # --- messages -------------------------------------------------------------------------------
    async def message_open(self) -> dict[str, Any]:
        if self.message is None:
            run = self.run
            msg = new_message(
                self.thread_id,
                "assistant",
                [],
                status="in_progress",
                assistant_id=run["assistant_id"],
                run_id=run["id"],
            )
            step = self._new_step("message_creation", {"message_id": msg["id"]})
            async with self.store.write() as conn:  # one transaction for the step and its message
                await db.insert(conn, "step", step, self.owner, parent=self.thread_id, run_id=run["id"])
                await db.insert(conn, "message", msg, self.owner, parent=self.thread_id, run_id=run["id"])
            self.publish("thread.run.step.created", step)
            self.publish("thread.run.step.in_progress", step)
            self.message_step, self.message = step, msg
            self.publish("thread.message.created", msg)
            self.publish("thread.message.in_progress", msg)
            self._show_images(msg)
        return self.message

    def _show_images(self, msg: dict[str, Any]) -> None:
        """Charts code_interpreter made in this leg open the next message, as the hosted API showed them."""
        images = [m["file"]["id"] for m in (self.ctx.made if self.ctx else []) if m.get("image")]
        for file_id in images[self._shown_images :]:
            part = {"type": "image_file", "image_file": {"file_id": file_id, "detail": "auto"}}
            msg["content"].append(part)
            self.publish(
                "thread.message.delta",
                {
                    "id": msg["id"],
                    "object": "thread.message.delta",
                    "delta": {"content": [{"index": len(msg["content"]) - 1, **part}]},
                },
            )
        self._shown_images = len(images)

    def _annotate(self, msg: dict[str, Any]) -> None:
        """Turn citation markers and sandbox links in the final text into annotations."""
        if self.ctx is None:
            return
        paths = {m["path"]: m["file"]["id"] for m in self.ctx.made if m.get("path")}
        for index, part in enumerate(msg["content"]):
            if part["type"] != "text":
                continue
            value: str = part["text"]["value"]
            found: list[dict[str, Any]] = []
            for m in CITATION.finditer(value):
                n = int(m.group(1))
                if n < len(self.ctx.sources):
                    found.append(
                        {
                            "type": "file_citation",
                            "text": m.group(0),
                            "start_index": m.start(),
                            "end_index": m.end(),
                            "file_citation": {"file_id": self.ctx.sources[n]},
                        }
                    )
            for m in SANDBOX_LINK.finditer(value):
                file_id = paths.get(m.group(0).removeprefix("sandbox:"))
                if file_id:
                    found.append(
                        {
                            "type": "file_path",
                            "text": m.group(0),
                            "start_index": m.start(),
                            "end_index": m.end(),
                            "file_path": {"file_id": file_id},
                        }
                    )
            if not found:
                continue
            found.sort(key=lambda a: a["start_index"])
            part["text"]["annotations"] = found
            delta = {
                "index": index,
                "type": "text",
                "text": {"value": "", "annotations": [{"index": i, **a} for i, a in enumerate(found)]},
            }
            self.publish(
                "thread.message.delta",
                {"id": msg["id"], "object": "thread.message.delta", "delta": {"content": [delta]}},
            )

    async def text_delta(self, text: str) -> None:
        msg = await self.message_open()
        content = msg["content"]
        if not content or content[-1]["type"] != "text":
            content.append({"type": "text", "text": {"value": "", "annotations": []}})
            part: dict[str, Any] = {
                "index": len(content) - 1,
                "type": "text",
                "text": {"value": text, "annotations": []},
            }
        else:
            part = {"index": len(content) - 1, "type": "text", "text": {"value": text}}
        content[-1]["text"]["value"] += text
        self.publish(
            "thread.message.delta",
            {"id": msg["id"], "object": "thread.message.delta", "delta": {"content": [part]}},
        )

    async def close_message(
        self,
        status: str,
        usage: dict[str, int] | None = None,
        reason: str | None = None,
        run_status: str | None = None,
    ) -> None:
        """Finish the message being written (completed, or incomplete with ``reason``) and its step;
        with ``run_status``, the run's transition is written in the same transaction."""
        msg, step = self.message, self.message_step
        if msg is None or step is None:
            if run_status:
                await self.set_status(run_status)
            return
        self.message = self.message_step = None
        msg["status"] = status
        if status == "completed":
            self._annotate(msg)
            msg["completed_at"] = now()
        else:
            msg["incomplete_at"] = now()
            msg["incomplete_details"] = {"reason": reason}
        step_status = {"run_cancelled": "cancelled", "run_failed": "failed", "run_expired": "expired"}.get(
            reason or "", "completed"
        )
        _end(step, step_status, usage)
        if run_status:
            self._transition(run_status)
        async with self.store.write() as conn:  # the message, its step (and the run) end together
            await db.update(conn, "message", msg, self.owner, self.thread_id)
            await db.update(conn, "step", step, self.owner, self.thread_id)
            if run_status:
                await db.update(conn, "run", self.run, self.owner, self.thread_id, **_lease_cols(run_status))
        self.publish(f"thread.message.{status}", msg)
        self.publish(f"thread.run.step.{step_status}", step)
        if run_status:
            self.publish(f"thread.run.{run_status}", self.run)

    async def abandon(self, outcome: str) -> None:
        """The run ends early (cancelled/failed/expired): close whatever is still open."""
        reason = {"cancelled": "run_cancelled", "failed": "run_failed", "expired": "run_expired"}[outcome]
        await self.close_message("incomplete", reason=reason)
        if self.tool_step is not None:
            step, self.tool_step = self.tool_step, None
            await self.end_step(step, outcome)
        # steps (and their messages) left open by an earlier leg or by another replica
        for step in await self.open_steps():
            if step["type"] == "message_creation":
                msg_id = step["step_details"]["message_creation"]["message_id"]
                self.message = await self.store.get("message", msg_id, self.owner, self.thread_id)
                if self.message is not None:
                    self.message_step = step
                    await self.close_message("incomplete", reason=reason)
                    continue
            await self.end_step(step, outcome)

    async def open_steps(self) -> list[dict[str, Any]]:
        page = await self.store.list(
            "step",
            self.owner,
            parent=self.thread_id,
            limit=100,
            order="asc",
            where={"run_id": self.run["id"]},
        )
        return [s for s in page.data if s["status"] == "in_progress"]


def _end(
    step: dict[str, Any],
    status: str,
    usage: dict[str, int] | None = None,
    error: dict[str, str] | None = None,
) -> None:
    step["status"] = status
    step[f"{status}_at"] = now()
    step["usage"] = usage if usage is not None else step["usage"]
    step["last_error"] = error


def _lease_cols(status: str) -> dict[str, Any]:
    """A leg that ends (waiting for the client, or finished) gives its replica's lease back."""
    return {"lease": None, "lease_until": None} if status in LEG_END else {}


def render_step(step: dict[str, Any], include_content: bool) -> dict[str, Any]:
    """A step as clients see it: no engine-only fields; file_search result content only when asked for."""
    step = scrub(step)
    for call in step["step_details"].get("tool_calls") or []:
        call.pop(TRANSCRIPT, None)
        if call["type"] == "file_search" and not include_content:
            for result in call["file_search"].get("results") or []:
                result.pop("content", None)
    return step


def scrub(obj: Any) -> Any:
    """Drop engine-only fields (``_model_output`` and the like) from what clients see."""
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, list):
        return [scrub(v) for v in obj]
    return obj
