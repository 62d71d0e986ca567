"""A session: one container, one long-lived kernel, one key (a thread id).

Timeout ladder of ``execute``: the kernel's own alarm fires at ``timeout`` (state kept); if no reply
arrives by ``timeout + interrupt_grace`` the host sends SIGINT (forwarded to the kernel; state kept if the
code stops); if still nothing after ``kill_grace`` the kernel is killed and restarted by the container's
supervisor. The reply then says ``reset``: variables are lost, files in /mnt/data are kept.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import functools
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

import docker

from . import files as fs
from .channel import Channel, ChannelClosed, KernelExited, Peer, connect_attach, connect_unix
from .container import SOCKET_NAME, Box, BoxSpec, box_running, signal_box, start_box
from .errors import PathError, SandboxError, SandboxUnavailable, SessionClosed
from .results import ErrorInfo, ExecResult, FileInfo

log = logging.getLogger(__name__)

T = TypeVar("T")
MAX_IMAGES = 8
MAX_LISTED = 1000
RESET_NOTE = "the session was reset: variables and imports were lost, files in /mnt/data were kept"


class Session:
    """Run code in one sandbox container. Calls are serialised; create sessions via SandboxManager."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: BoxSpec,
        box: Box,
        on_close: Callable[[Session], Awaitable[None]] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.key = ""
        self.owner = ""
        """Opaque owner (e.g. an API key's tenant) for the manager's per-owner limit."""
        self._executor = executor
        self._kernel_pid: int | None = None
        self._client = client
        self._spec = spec
        self._box = box
        self._on_close = on_close
        self.on_result: Callable[[ExecResult], None] | None = None
        """Called with each call's result (the manager counts kills and OOMs)."""
        self._channel: Channel | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.created = time.monotonic()
        self.last_used = self.created
        lim = spec.limits
        # JSON may escape a byte as 6 characters; images are base64 (4/3); plus tracebacks and file lists.
        self._reply_limit = 2 * 6 * lim.output_bytes + MAX_IMAGES * (6 << 20) + (8 << 20)

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        """Blocking work (Docker API, the data volume) on the sandbox's own bounded executor."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def busy(self) -> bool:
        return self._lock.locked()

    @property
    def container_name(self) -> str:
        return self._box.name

    async def boot(self) -> None:
        """Start the container and wait for its kernel (attach first: the stream must see the start)."""
        if self._spec.attach:
            self._channel = await connect_attach(
                self._client, self._box.container.id or "", self._reply_limit, self._executor
            )
        await self._io(start_box, self._client, self._box)
        await self.wait_ready()

    async def wait_ready(self, limit: float | None = None) -> None:
        """Connect to the kernel and wait until it answers a ping (after it preloaded its libraries)."""
        deadline = time.monotonic() + (limit or self._spec.limits.start_timeout)
        delay = 0.005
        checked = time.monotonic()
        while True:
            channel = self._channel  # attach: one stream for the container's life, across kernel restarts
            if channel is None:
                try:
                    visible = not self._box.host.containerised  # the engine's pids are ours to see
                    peer = Peer(fs.SANDBOX_UID, self._box.pid if visible else 0)
                    channel, self._kernel_pid = await connect_unix(
                        self._box.kernel_dir, SOCKET_NAME, self._reply_limit, peer
                    )
                except OSError:
                    channel = None
            if channel is not None:
                try:
                    await channel.request({"op": "ping"}, max(deadline - time.monotonic(), 0.01))
                    self._channel = channel
                    return
                except KernelExited:
                    continue  # a late death notice; the supervisor is starting a new kernel
                except (ChannelClosed, TimeoutError):
                    self._channel = None
                    await channel.close()
                    if self._spec.attach:
                        raise SandboxUnavailable(f"lost the attached stream of {self._box.name}") from None
            now = time.monotonic()
            if now > deadline:
                raise SandboxUnavailable(f"the sandbox kernel in {self._box.name} did not start in time")
            if now - checked > 1.0:
                checked = now
                if not await self._io(box_running, self._box):
                    raise SandboxUnavailable(f"the sandbox container {self._box.name} exited")
            await asyncio.sleep(delay)  # polling the kernel's socket, not synchronising tests
            delay = min(delay * 2, 0.05)

    async def ping(self, wait: float = 2.0) -> bool:
        if self._closed or self._channel is None or self.busy:
            return False
        try:
            await self._channel.request({"op": "ping"}, wait)
        except (ChannelClosed, TimeoutError):
            return False
        return True

    async def close(self) -> None:
        """Destroy the container and its volumes (files are gone). Never raises."""
        if self._closed:
            return
        self._closed = True
        if self._channel is not None:
            await self._channel.close()
        if self._on_close is not None:
            try:
                await self._on_close(self)
            except Exception as exc:
                log.warning("closing sandbox session %s failed: %s", self.key, exc)

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosed(f"sandbox session {self.key!r} is closed")

    # -- execution ------------------------------------------------------------------------------------
    async def execute(self, code: str, timeout: float | None = None) -> ExecResult:  # noqa: ASYNC109
        """Run ``code`` in the session's kernel. Errors of the code come back in the result."""
        timeout = float(timeout if timeout is not None else self._spec.limits.timeout)
        async with self._lock:
            self._check_open()
            self.last_used = time.monotonic()
            start = time.perf_counter()
            result = await self._execute(code, timeout)
            result.duration = time.perf_counter() - start
            self.last_used = time.monotonic()
            if self.on_result is not None:
                self.on_result(result)
            return result

    async def _execute(self, code: str, timeout: float) -> ExecResult:  # noqa: ASYNC109
        lim = self._spec.limits
        oom_before = self._box.oom_count()
        if self._channel is None:
            await self._recover("the kernel was not connected")
            return self._reset_result("KernelDied", f"The kernel was not running; {RESET_NOTE}.")
        channel = self._channel
        payload = {"op": "exec", "code": code, "timeout": timeout, "max_out": lim.output_bytes}
        interrupted = False
        try:
            rid = await channel.send(payload)
            try:
                reply = await channel.receive(rid, timeout + lim.interrupt_grace)
            except TimeoutError:
                interrupted = True
                await self._io(signal_box, self._box, "SIGINT")
                reply = await channel.receive(rid, lim.kill_grace)
        except TimeoutError:
            await self._io(signal_box, self._box, "SIGUSR1")
            await self._recover("timeout")
            return self._reset_result(
                "TimeoutError",
                f"Execution did not stop within {timeout:g} s and was killed; {RESET_NOTE}.",
                timed_out=True,
            )
        except ChannelClosed as exc:
            self._kill_lingering_kernel()
            status = await self._recover(str(exc))
            oom = self._oom_since(oom_before)
            if oom or (oom is None and status == -9):
                return self._reset_result(
                    "MemoryError",
                    f"The kernel ran out of memory (limit {lim.memory_mb} MB) and was restarted; "
                    f"{RESET_NOTE}.",
                    oom_killed=True,
                )
            return self._reset_result("KernelDied", f"The kernel exited (status {status}); {RESET_NOTE}.")
        result = self._parse(reply)
        if interrupted:
            result.timed_out = True
            if result.error is not None and result.error.name == "KeyboardInterrupt":
                msg = f"Execution timed out after {timeout:g} s and was interrupted (variables kept)"
                result.error = ErrorInfo("TimeoutError", msg, result.error.traceback)
        result.oom_killed = bool(self._oom_since(oom_before))
        return result

    def _kill_lingering_kernel(self) -> None:
        """The kernel closed its connection but may live on (it exec'd another program, or code closed the
        socket): kill it now, so the supervisor restarts it instead of the host waiting for a kernel that
        never comes back. Uses a pidfd, so only that very process can be signalled."""
        pid, self._kernel_pid = self._kernel_pid, None
        if not pid or self._spec.attach or self._box.host.containerised:
            return
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            return  # already gone
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
            same_ns = os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{self._box.pid}/ns/pid")
            if same_ns and state not in (b"Z", b"X"):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except (OSError, IndexError):
            pass
        finally:
            os.close(pidfd)

    def _oom_since(self, before: int | None) -> bool | None:
        after = self._box.oom_count()
        if before is None or after is None:
            return None
        return after > before

    async def _recover(self, why: str) -> int | None:
        """Reconnect to the kernel the supervisor restarted; returns the dead kernel's exit status."""
        log.info("sandbox session %s: kernel restart (%s)", self.key, why)
        if self._channel is not None and not self._spec.attach:
            await self._channel.close()
            self._channel = None
        try:
            await self.wait_ready()
        except SandboxError as exc:
            log.warning("sandbox session %s could not be recovered: %s", self.key, exc)
            await self.close()
            raise SessionClosed(f"sandbox session {self.key!r} died and could not be restarted") from exc
        return self._box.exit_status()

    def _reset_result(
        self, name: str, message: str, timed_out: bool = False, oom_killed: bool = False
    ) -> ExecResult:
        return ExecResult(
            error=ErrorInfo(name, message, f"{name}: {message}\n"),
            stderr=f"{name}: {message}\n",
            timed_out=timed_out,
            oom_killed=oom_killed,
            reset=True,
        )

    def _parse(self, reply: dict[str, Any]) -> ExecResult:
        """Turn the kernel's (untrusted) reply into an ExecResult, dropping anything malformed."""
        cap = self._spec.limits.output_bytes

        def text(key: str, limit: int) -> str:
            value = reply.get(key)
            if not isinstance(value, str):
                return ""
            data = value.encode("utf-8", "replace")
            return value if len(data) <= limit else data[:limit].decode("utf-8", "ignore")

        stdout, stderr = text("stdout", cap), text("stderr", cap)
        truncated = bool(reply.get("truncated"))
        truncated = truncated or stdout != reply.get("stdout") or stderr != reply.get("stderr")
        error = None
        err = reply.get("error")
        if isinstance(err, dict):
            error = ErrorInfo(*(str(err.get(k, ""))[: 4 * cap] for k in ("name", "value", "traceback")))
        elif not reply.get("ok", False):
            error = ErrorInfo("SandboxError", str(reply.get("message", "malformed reply"))[:cap], "")
        result = reply.get("result")
        images: list[bytes] = []
        for item in reply.get("images") or []:
            if not isinstance(item, str) or len(images) >= MAX_IMAGES:
                continue
            with contextlib.suppress(binascii.Error, ValueError):
                png = base64.b64decode(item, validate=True)
                if png.startswith(b"\x89PNG\r\n\x1a\n"):
                    images.append(png)
        changed = _file_list(reply.get("files"))
        total = reply.get("files_total")
        total = total if isinstance(total, int) and not isinstance(total, bool) else len(changed)
        return ExecResult(
            stdout=stdout,
            stderr=stderr,
            error=error,
            result=result[: 4 * cap] if isinstance(result, str) else None,
            images=images,
            files=changed,
            files_total=max(total, len(changed)),
            files_complete=reply.get("files_complete") is not False,
            timed_out=bool(reply.get("timed_out")),
            truncated=truncated,
        )

    # -- files ----------------------------------------------------------------------------------------
    async def write_file(self, path: str, data: bytes) -> None:
        """Write ``data`` to ``/mnt/data/<path>`` (owned by the sandbox user).

        Raises PathError, StorageFull."""
        self._check_open()
        await self._io(fs.write_file, self._box.data_dir, path, data)
        self.last_used = time.monotonic()

    async def read_file(self, path: str) -> bytes:
        """Read ``/mnt/data/<path>``. Raises FileNotFoundError, PathError."""
        self._check_open()
        limit = self._spec.limits.data_mb << 20
        return await self._io(fs.read_file, self._box.data_dir, path, limit)

    async def export_file(self, path: str, dest: str, max_bytes: int) -> FileInfo:
        """Copy the regular file ``/mnt/data/<path>`` to the new host file ``dest`` in chunks, off the event
        loop; size and mtime in the result are the host's view. Raises FileNotFoundError, PathError
        (not a regular file, a link, larger than ``max_bytes``: ``files.TooLarge``)."""
        self._check_open()
        return await self._io(fs.copy_out, self._box.data_dir, path, dest, max_bytes)

    async def list_files(self) -> list[FileInfo]:
        """Every regular file under /mnt/data."""
        self._check_open()
        return await self._io(fs.list_files, self._box.data_dir)

    async def set_memory(self, memory_mb: int) -> None:
        """Change the container's memory limit (memory+swap the same: no swap)."""
        self._check_open()
        size = f"{memory_mb}m"
        await self._io(functools.partial(self._box.container.update, mem_limit=size, memswap_limit=size))


def _file_list(items: Any) -> list[FileInfo]:
    """The kernel's (untrusted) list of changed files: valid names only, each once, at most MAX_LISTED.
    Sizes and times are hints; readers take them from the host side."""
    seen: set[str] = set()
    out: list[FileInfo] = []
    for item in items if isinstance(items, list) else []:
        if len(out) >= MAX_LISTED:
            break
        try:
            raw = item["path"]
            if not isinstance(raw, str) or len(raw) > 4096 or any(ord(c) < 32 or ord(c) == 127 for c in raw):
                continue
            path = "/".join(fs.split_path(raw))
            if path in seen:
                continue
            out.append(FileInfo(path, max(int(item["size"]), 0), float(item["mtime"])))
            seen.add(path)
        except (PathError, KeyError, TypeError, ValueError, OverflowError):
            continue
    return out
