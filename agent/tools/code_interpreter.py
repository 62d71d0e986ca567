"""code_interpreter as a run tool: the thread's sandbox session runs the code; outputs become Files."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from agent.tools.base import ToolContext, ToolOutput, function_schema
from sandbox import ExecResult

log = logging.getLogger(__name__)
SaveFile = Callable[[str, str, bytes], Awaitable[dict[str, Any]]]  # (owner, filename, data) -> File
LoadFile = Callable[[str, str], Awaitable[tuple[str, bytes] | None]]  # (owner, file_id) -> (name, data)
MAX_MODEL_OUTPUT = 8000


class SandboxSession(Protocol):
    """One conversation's stateful Python (`sandbox.Session` in production; an in-process fake in tests)."""

    async def execute(self, code: str, timeout: float | None = None) -> ExecResult: ...  # noqa: ASYNC109

    async def write_file(self, path: str, data: bytes) -> None: ...

    async def read_file(self, path: str) -> bytes: ...


class Sandboxes(Protocol):
    """The sandbox seam: a session per key (thread/conversation), made on first use."""

    async def session(self, key: str) -> SandboxSession: ...


class CodeInterpreterTool:
    name = "code_interpreter"
    step_type = "code_interpreter"
    input_field: str | None = "code"

    def __init__(
        self, manager: Sandboxes | None, save: SaveFile, load: LoadFile, timeout: float = 30
    ) -> None:
        self.manager, self.save, self.load, self.timeout = manager, save, load, timeout
        self._placed: dict[str, set[str]] = {}  # session key → file ids already in its /mnt/data

    def schema(self) -> dict[str, Any]:
        return function_schema(
            "code_interpreter",
            "Run Python code in a stateful sandbox (variables persist within this conversation). Files are in "
            "/mnt/data; save charts with matplotlib and files to /mnt/data. No network access.",
            "code",
            "The Python code to run",
        )

    def start_record(self, call_id: str) -> dict[str, Any]:
        return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"input": "", "outputs": []}}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        code = arguments.get("code")
        record: dict[str, Any] = {"input": code if isinstance(code, str) else "", "outputs": []}
        if not isinstance(code, str):
            return _failed("Error: code_interpreter takes one string argument 'code'.", record)
        if self.manager is None:
            return _failed(
                "Error: code_interpreter is unavailable on this server (no Docker engine).", record
            )
        try:
            session = await self.manager.session(ctx.thread_id)
            await self._place_files(session, ctx)
            result = await session.execute(code, timeout=self.timeout)
        except Exception as err:  # infrastructure trouble is something the model can read and report
            log.exception("code_interpreter failed for thread %s", ctx.thread_id)
            return _failed(f"Error: the sandbox failed ({type(err).__name__}: {err}).", record)
        if result.reset:
            self._placed.pop(ctx.thread_id, None)
        return await self._outputs(result, record, session, ctx)

    async def _place_files(self, session: SandboxSession, ctx: ToolContext) -> None:
        placed = self._placed.setdefault(ctx.thread_id, set())
        for file_id in ctx.code_file_ids():
            if file_id in placed:
                continue
            loaded = await self.load(ctx.owner, file_id)
            if loaded is not None:
                await session.write_file(loaded[0], loaded[1])
                placed.add(file_id)

    async def _outputs(
        self, result: ExecResult, record: dict[str, Any], session: SandboxSession, ctx: ToolContext
    ) -> ToolOutput:
        text = _logs(result)
        outputs: list[dict[str, Any]] = []
        if text:
            outputs.append({"type": "logs", "logs": text})
        notes, made = [], []
        for i, png in enumerate(result.images):
            f = await self.save(ctx.owner, f"image_{i}.png", png)
            outputs.append({"type": "image", "image": {"file_id": f["id"]}})
            made.append({"file": f, "image": True})
            notes.append(f"[chart shown to the user as image {f['id']}]")
        for info in result.files:
            data = await session.read_file(info.path)
            f = await self.save(ctx.owner, info.path.rsplit("/", 1)[-1], data)
            made.append({"file": f, "path": f"/mnt/data/{info.path}"})
            notes.append(
                f"[file written: sandbox:/mnt/data/{info.path} — link it as sandbox:/mnt/data/{info.path}]"
            )
        record["outputs"] = outputs
        model_text = "\n".join(p for p in (text[-MAX_MODEL_OUTPUT:], *notes) if p) or "(no output)"
        return ToolOutput(model_text, record, files=made)


def _failed(text: str, record: dict[str, Any]) -> ToolOutput:
    """A call that ran no code: the model reads the error, and the step shows it as the call's logs."""
    record["outputs"] = [{"type": "logs", "logs": text}]
    return ToolOutput(text, record)


def _logs(result: ExecResult) -> str:
    parts = [result.stdout, result.stderr]
    if result.result is not None:
        parts.append(result.result)
    if result.error is not None:
        parts.append(result.error.traceback or f"{result.error.name}: {result.error.value}")
    if result.truncated:
        parts.append("[output truncated]")
    if result.timed_out:
        parts.append("Error: the code ran past its time limit and was stopped.")
    if result.oom_killed:
        parts.append("Error: the code ran out of memory and was stopped.")
    if result.reset:
        parts.append("Note: the session was reset; variables were lost, files in /mnt/data were kept.")
    return "\n".join(p.rstrip("\n") for p in parts if p)
