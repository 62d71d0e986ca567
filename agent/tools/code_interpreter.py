"""code_interpreter as a run tool: the thread's sandbox session runs the code; outputs become Files.

Everything the sandbox reports is untrusted. Files go in and out through the sandbox package's confined,
non-blocking, regular-file-only copies; outputs are streamed to storage in chunks on the sandbox's own
executor, never whole in memory, within limits this side enforces (``OutputLimits``: files and bytes per
call and per thread). What was skipped, and why, is told to the model.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.tools.base import ToolContext, ToolOutput, function_schema
from sandbox import ExecResult, FileInfo, PathError, SessionLimit
from sandbox.files import TooLarge

log = logging.getLogger(__name__)
SaveFile = Callable[[str, str, bytes], Awaitable[dict[str, Any]]]  # (owner, filename, data) -> File
LoadFile = Callable[[str, str], Awaitable[tuple[str, bytes] | None]]  # (owner, file_id) -> (name, data)
AdoptFile = Callable[[str, str, Path, int], Awaitable[dict[str, Any]]]  # (owner, name, tmp, size) -> File
MAX_MODEL_OUTPUT = 8000
MAX_NOTES = 10


@dataclass(frozen=True)
class OutputLimits:
    """How much of what a call leaves in /mnt/data becomes Files (counted by this side, sizes by fstat)."""

    files_per_call: int = 50
    bytes_per_call: int = 256 << 20
    files_per_thread: int = 500
    bytes_per_thread: int = 1 << 30


class SandboxSession(Protocol):
    """One conversation's stateful Python (`sandbox.Session` in production; an in-process fake in tests)."""

    async def execute(self, code: str, timeout: float | None = None) -> ExecResult: ...  # noqa: ASYNC109

    async def write_file(self, path: str, data: bytes) -> None: ...

    async def read_file(self, path: str) -> bytes: ...

    async def export_file(self, path: str, dest: str, max_bytes: int) -> FileInfo:
        """Copy a regular file of /mnt/data to the new host file ``dest``, at most ``max_bytes`` (TooLarge)."""
        ...


class Sandboxes(Protocol):
    """The sandbox seam: a session per key (thread/conversation), made on first use; at most
    ``max_sessions_per_owner`` live per owner (SessionLimit)."""

    max_sessions_per_owner: int | None

    async def session(self, key: str, owner: str = "") -> SandboxSession: ...


class CodeInterpreterTool:
    name = "code_interpreter"
    step_type = "code_interpreter"
    input_field: str | None = "code"

    def __init__(
        self,
        manager: Sandboxes | None,
        save: SaveFile,
        load: LoadFile,
        timeout: float = 30,
        *,
        adopt: AdoptFile,
        tmp_dir: Path,
        limits: OutputLimits = OutputLimits(),  # noqa: B008 - frozen dataclass
    ) -> None:
        self.manager, self.save, self.load, self.timeout = manager, save, load, timeout
        self.adopt, self.tmp_dir, self.limits = adopt, tmp_dir, limits
        self._placed: dict[str, set[str]] = {}  # session key → file ids already in its /mnt/data
        self._used: dict[str, tuple[int, int]] = {}  # thread id → (files, bytes) stored from its sandbox

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
            session = await self.manager.session(ctx.thread_id, owner=ctx.owner)
        except SessionLimit:
            limit = self.manager.max_sessions_per_owner
            return _failed(
                f"Error: too many code_interpreter sessions are active for this API key (limit {limit}); "
                "the code was not run. Retry later, when another conversation's sandbox has expired.",
                record,
            )
        except Exception as err:  # infrastructure trouble is something the model can read and report
            log.exception("code_interpreter failed for thread %s", ctx.thread_id)
            return _failed(f"Error: the sandbox failed ({type(err).__name__}: {err}).", record)
        try:
            placement = await self._place_files(session, ctx)
            result = await session.execute(code, timeout=self.timeout)
        except Exception as err:
            log.exception("code_interpreter failed for thread %s", ctx.thread_id)
            return _failed(f"Error: the sandbox failed ({type(err).__name__}: {err}).", record)
        if result.reset:
            self._placed.pop(ctx.thread_id, None)
        return await self._outputs(result, record, session, ctx, placement)

    async def _place_files(self, session: SandboxSession, ctx: ToolContext) -> list[str]:
        """Write the thread's files into /mnt/data; what could not be placed is told to the model."""
        notes: list[str] = []
        placed = self._placed.setdefault(ctx.thread_id, set())
        for file_id in ctx.code_file_ids():
            if file_id in placed:
                continue
            loaded = await self.load(ctx.owner, file_id)
            if loaded is None:
                continue
            try:
                await session.write_file(loaded[0], loaded[1])
            except (PathError, OSError) as err:  # e.g. the code replaced the file with a FIFO or a link
                notes.append(f"[file {loaded[0]} could not be placed in /mnt/data: {_reason(err)}]")
                continue
            placed.add(file_id)
        return notes

    async def _outputs(
        self,
        result: ExecResult,
        record: dict[str, Any],
        session: SandboxSession,
        ctx: ToolContext,
        notes: list[str],
    ) -> ToolOutput:
        text = _logs(result)
        outputs: list[dict[str, Any]] = []
        if text:
            outputs.append({"type": "logs", "logs": text})
        made: list[dict[str, Any]] = []
        for i, png in enumerate(result.images):
            f = await self.save(ctx.owner, f"image_{i}.png", png)
            outputs.append({"type": "image", "image": {"file_id": f["id"]}})
            made.append({"file": f, "image": True})
            notes.append(f"[chart shown to the user as image {f['id']}]")
        notes.extend(await self._collect(result, session, ctx, made))
        record["outputs"] = outputs
        model_text = "\n".join(p for p in (text[-MAX_MODEL_OUTPUT:], *notes) if p) or "(no output)"
        return ToolOutput(model_text, record, files=made)

    async def _collect(
        self, result: ExecResult, session: SandboxSession, ctx: ToolContext, made: list[dict[str, Any]]
    ) -> list[str]:
        """Store the changed files as Files within this call's and this thread's limits."""
        lim = self.limits
        used_files, used_bytes = self._used.get(ctx.thread_id, (0, 0))
        files_left = min(lim.files_per_call, lim.files_per_thread - used_files)
        bytes_left = min(lim.bytes_per_call, lim.bytes_per_thread - used_bytes)
        notes, skipped = [], []
        attached = 0
        for info in result.files:
            if attached >= files_left:
                break
            tmp = self.tmp_dir / f"ci-{uuid.uuid4().hex}"
            try:
                got = await session.export_file(info.path, str(tmp), max(bytes_left, 0))
            except TooLarge as err:
                skipped.append(f"{info.path} ({err.size:,} bytes; {max(bytes_left, 0):,} bytes were left)")
                continue
            except (PathError, OSError) as err:
                skipped.append(f"{info.path} ({_reason(err)})")
                continue
            try:
                f = await self.adopt(ctx.owner, info.path.rsplit("/", 1)[-1], tmp, got.size)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
            attached += 1
            bytes_left -= got.size
            used_files, used_bytes = used_files + 1, used_bytes + got.size
            made.append({"file": f, "path": f"/mnt/data/{info.path}"})
            notes.append(
                f"[file written: sandbox:/mnt/data/{info.path} — link it as sandbox:/mnt/data/{info.path}]"
            )
        self._used[ctx.thread_id] = (used_files, used_bytes)
        written = max(result.files_total, len(result.files))
        if written > attached + len(skipped):
            count = f"{written:,}" if result.files_complete else f"more than {written:,}"
            if attached < files_left and len(result.files) < result.files_total and result.files_complete:
                why = "the rest were duplicates or invalid names"
            elif files_left >= lim.files_per_call:
                why = f"the limit is {lim.files_per_call} files per call"
            else:
                why = f"this conversation's limit of {lim.files_per_thread} files is nearly or fully used"
            notes.append(f"[{count} files were written; the first {attached} are attached ({why})]")
        if skipped:
            more = f" and {len(skipped) - MAX_NOTES} more" if len(skipped) > MAX_NOTES else ""
            notes.append(f"[not attached: {'; '.join(skipped[:MAX_NOTES])}{more}]")
        return notes


def _reason(err: BaseException) -> str:
    if isinstance(err, FileNotFoundError):
        return "it no longer exists"
    if isinstance(err, PathError):
        return "not a regular file" if "regular file" in str(err) or "link" in str(err) else str(err)
    return type(err).__name__


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
