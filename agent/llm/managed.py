"""A model server the service runs itself: ``AGENT_MODEL_FILE`` → llama.cpp ``llama-server``.

The binary comes from ``AGENT_MODEL_SERVER_BIN``, else ``PATH``, else the one ``.ci/llama-server.sh``
builds (``$LLAMA_CACHE/<version>/llama-server``). It listens on a free loopback port with tool calling
on (``--jinja``) and the context from ``AGENT_MODEL_CONTEXT``. A watcher restarts it when it dies (runs
meanwhile fail with "model server unreachable", never hang); ``close()`` stops it by its PID. On Linux
it also dies with the service (``PR_SET_PDEATHSIG``), so a killed service leaves no orphan behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import aiohttp

log = logging.getLogger(__name__)

LLAMA_VERSION = "11434.0.0"
"""The llama.cpp build .ci/llama-server.sh makes (keep the two in step)."""
START_TIMEOUT = 300.0
"""Seconds a model may take to load (big files on slow disks)."""
_RUNNING: set[ManagedModel] = set()


class ManagedModelError(Exception):
    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


def find_binary(configured: str | None = None) -> str | None:
    """The llama-server to run: the configured one, else on PATH, else the one .ci/llama-server.sh built."""
    if configured:
        return shutil.which(configured) or (configured if os.access(configured, os.X_OK) else None)
    on_path = shutil.which("llama-server")
    if on_path:
        return on_path
    cache = Path(os.environ.get("LLAMA_CACHE") or Path.home() / ".cache" / "agent-llama")
    built = cache / LLAMA_VERSION / "llama-server"
    return str(built) if os.access(built, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ManagedModel:
    def __init__(
        self,
        model_file: Path,
        binary: str | None = None,
        context: int = 8192,
        args: Sequence[str] = (),
        log_file: Path | None = None,
        role: str = "chat",
    ) -> None:
        """``role`` "embeddings" runs the server with ``--embeddings --pooling mean`` (llama-server then
        answers /v1/embeddings only)."""
        self.model_file = model_file
        self.configured_binary = binary
        self.context = context
        self.args = list(args)
        self.log_file = log_file
        self.role = role
        self.port = 0
        self.restarts = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._closing = False

    @classmethod
    def from_args(
        cls, model_file: Path, binary: str | None, context: int, args: str, **kw: object
    ) -> ManagedModel:
        return cls(model_file, binary, context, shlex.split(args), **kw)  # type: ignore[arg-type]

    @property
    def url(self) -> str:
        """The OpenAI-style base URL (ends in /v1)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    def command(self) -> list[str]:
        binary = find_binary(self.configured_binary)
        if binary is None:
            where = self.configured_binary or "llama-server on PATH or in ~/.cache/agent-llama"
            raise ManagedModelError(
                f"no llama-server binary ({where})",
                "build one with `bash .ci/llama-server.sh build`, put llama-server on PATH, or set "
                "AGENT_MODEL_SERVER_BIN",
            )
        cmd = [binary, "--host", "127.0.0.1", "--port", str(self.port), "-m", str(self.model_file)]
        cmd += ["-c", str(self.context), "--no-webui", "--alias", self.model_file.stem]  # not the path
        cmd += ["--embeddings", "--pooling", "mean"] if self.role == "embeddings" else ["--jinja"]
        return cmd + self.args

    async def start(self) -> str:
        """Start the server and wait until it answers /health; returns its URL. Raises ManagedModelError."""
        if not self.model_file.is_file() or not os.access(self.model_file, os.R_OK):
            raise ManagedModelError(
                f"model file {self.model_file} is missing or unreadable",
                "set AGENT_MODEL_FILE to a GGUF file (README, Models)",
            )
        self.port = free_port()
        await self._launch()
        _RUNNING.add(self)
        self._watcher = asyncio.create_task(self._watch())
        return self.url

    async def _launch(self) -> None:
        cmd = self.command()
        out = self.log_file.open("ab") if self.log_file else asyncio.subprocess.DEVNULL
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *cmd,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl+C in the terminal is ours to handle, not its
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        except OSError as err:
            raise ManagedModelError(
                f"could not run {cmd[0]}: {err}", "check AGENT_MODEL_SERVER_BIN"
            ) from None
        finally:
            if not isinstance(out, int):
                out.close()
        log.info(
            "started llama-server (%s, pid %d) for %s on %s",
            self.role,
            self._proc.pid,
            self.model_file,
            self.url,
        )
        try:
            await self._wait_healthy(self._proc)
        except BaseException:
            await self._stop_process()
            raise

    async def _wait_healthy(self, proc: asyncio.subprocess.Process) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            while time.monotonic() < deadline:  # a readiness poll with a deadline
                if proc.returncode is not None:
                    raise ManagedModelError(
                        f"llama-server exited with status {proc.returncode} while loading {self.model_file}"
                        + self._log_tail(),
                        "check that the file is a GGUF model llama-server can load (and the arguments in "
                        "AGENT_MODEL_SERVER_ARGS)",
                    )
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"http://127.0.0.1:{self.port}/health") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.1)
        raise ManagedModelError(f"llama-server did not become healthy within {START_TIMEOUT:g} s")

    def _log_tail(self) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        lines = self.log_file.read_text(errors="replace").splitlines()[-5:]
        return (": " + " | ".join(line.strip() for line in lines)) if lines else ""

    async def _watch(self) -> None:
        """Restart the server whenever it dies (with a growing pause if it keeps dying)."""
        pause = 0.5
        while not self._closing:
            proc = self._proc
            assert proc is not None
            status = await proc.wait()
            if self._closing:
                return
            self.restarts += 1
            log.error(
                "llama-server (pid %d) died with status %s; runs fail until it is back; restarting",
                proc.pid,
                status,
            )
            while not self._closing:
                try:
                    await self._launch()
                    log.info("llama-server is back (pid %s)", self.pid)
                    pause = 0.5
                    break
                except ManagedModelError as err:
                    log.error("llama-server restart failed: %s; trying again in %g s", err.message, pause)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, 30.0)

    async def close(self) -> None:
        """Stop the server (SIGTERM by PID, SIGKILL after 5 s). Safe to call twice."""
        self._closing = True
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(BaseException):
                await self._watcher
        await self._stop_process()
        _RUNNING.discard(self)

    async def _stop_process(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        log.info("stopped llama-server (pid %d)", proc.pid)

    def kill_now(self) -> None:
        """From any thread, at an overdue shutdown: SIGKILL by PID."""
        pid = self.pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def kill_all_now() -> None:
    for managed in list(_RUNNING):
        managed.kill_now()
