"""An in-process stand-in for the Docker sandbox, behind the same `Sandboxes` seam.

It runs trusted test code with ``exec`` in one namespace per key (so variables persist, as in a
kernel) and keeps /mnt/data as a dict. Tests only: it isolates nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import traceback
from typing import Any

from sandbox import ErrorInfo, ExecResult, FileInfo
from sandbox.files import TooLarge


class FakeSession:
    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {}
        self.files: dict[str, bytes] = {}
        self.executed: list[str] = []

    async def execute(self, code: str, timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109
        self.executed.append(code)
        out, err = io.StringIO(), io.StringIO()
        before = dict(self.files)
        self.namespace["save_file"] = lambda name, data: self.files.__setitem__(name, data)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                exec(compile(code, "<code_interpreter>", "exec"), self.namespace)
            error = None
        except Exception as exc:
            error = ErrorInfo(type(exc).__name__, str(exc), traceback.format_exc())
        changed = [FileInfo(p, len(d), 0.0) for p, d in self.files.items() if before.get(p) != d]
        return ExecResult(stdout=out.getvalue(), stderr=err.getvalue(), error=error, files=changed)

    async def write_file(self, path: str, data: bytes) -> None:
        self.files[path] = data

    async def read_file(self, path: str) -> bytes:
        return self.files[path]

    async def export_file(self, path: str, dest: str, max_bytes: int) -> FileInfo:
        data = self.files[path]
        if len(data) > max_bytes:
            raise TooLarge(path, len(data), max_bytes)
        await asyncio.to_thread(_write_new, dest, data)
        return FileInfo(path, len(data), 0.0)


class FakeSandboxes:
    def __init__(self) -> None:
        self.sessions: dict[str, FakeSession] = {}
        self.max_sessions_per_owner: int | None = None

    async def session(self, key: str, owner: str = "") -> FakeSession:
        return self.sessions.setdefault(key, FakeSession())


def _write_new(dest: str, data: bytes) -> None:
    with open(dest, "xb") as fh:
        fh.write(data)
