"""The host end of the kernel's JSON-lines protocol.

Two transports: a Unix socket on the kernel volume's host mountpoint (no Docker API call per request,
~0.3 ms), and the container's attached stdin/stdout (through dockerd, ~0.5 ms; works with gVisor and
remote engines). Every request carries an ``id``; replies with another id (late answers to interrupted
requests, the kernel's ready line) are skipped. Replies are untrusted: size-capped and type-checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import socket
import stat
import struct
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import docker

from .errors import SandboxUnavailable


class ChannelClosed(Exception):
    """The kernel went away (EOF, reset, unparsable or oversized reply)."""


class KernelExited(ChannelClosed):
    """The supervisor reported the kernel's death on the attached stream (which stays usable)."""


class Channel:
    """Request/reply over an asyncio stream pair."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter | None, sock: Any = None):
        self._reader = reader
        self._writer = writer
        self._sock = sock
        self._ids = itertools.count(1)
        self._pump: asyncio.Task[None] | None = None

    async def send(self, payload: dict[str, Any]) -> int:
        rid = next(self._ids)
        data = json.dumps({**payload, "id": rid}).encode() + b"\n"
        try:
            if self._writer is not None:
                self._writer.write(data)
                await self._writer.drain()
            else:
                await asyncio.get_running_loop().sock_sendall(self._sock, data)
        except (OSError, RuntimeError) as exc:
            raise ChannelClosed(str(exc)) from exc
        return rid

    async def receive(self, rid: int, wait: float | None) -> dict[str, Any]:
        """The reply to request ``rid``; TimeoutError leaves the channel usable for a later receive."""
        async with asyncio.timeout(wait):
            while True:
                try:
                    line = await self._reader.readline()
                except (ValueError, asyncio.LimitOverrunError, OSError) as exc:
                    raise ChannelClosed(f"bad reply from the kernel: {exc}") from exc
                if not line:
                    raise ChannelClosed("the kernel closed the connection")
                try:
                    reply = json.loads(line)
                except ValueError:
                    continue  # noise, e.g. something the code wrote to the protocol fd
                if not isinstance(reply, dict):
                    continue
                if reply.get("id") == rid:
                    return reply
                if reply.get("event") == "exit":  # the supervisor saw the kernel die (attached stream)
                    raise KernelExited(f"the kernel exited with status {reply.get('status')}")

    async def request(self, payload: dict[str, Any], wait: float | None) -> dict[str, Any]:
        return await self.receive(await self.send(payload), wait)

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
            with contextlib.suppress(BaseException):
                await self._pump
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()


@dataclass(frozen=True)
class Peer:
    """Who the kernel end of a socket channel must be: a process of ``uid`` in the pid namespace of
    ``init_pid`` (the container's PID 1 as this host sees it)."""

    uid: int
    init_pid: int
    """0 when the container's pids are not visible here (a service in a container without the host's pid
    namespace): then only the uid is checked, and the pinned inode on the sandbox's volume is the guarantee."""


def _pid_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/pid")


def check_peer(sock: socket.socket, peer: Peer) -> int:
    """The peer's host pid if it is ``peer`` (SO_PEERCRED); ConnectionRefusedError otherwise."""
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    try:
        same_ns = peer.init_pid == 0 or (pid > 0 and _pid_namespace(pid) == _pid_namespace(peer.init_pid))
    except OSError:
        same_ns = False
    if uid != peer.uid or not same_ns:
        raise ConnectionRefusedError(
            f"the socket's listener (pid {pid}, uid {uid}) is not the sandbox kernel"
        )
    return pid


async def connect_unix(root: str, name: str, limit: int, peer: Peer) -> tuple[Channel, int]:
    """Connect to the kernel's socket ``name`` in the host directory ``root``; returns the channel and the
    kernel's host pid.

    The sandbox can rewrite that directory at any moment, so no path is followed: the entry is opened with
    ``O_PATH | O_NOFOLLOW`` (pinning the inode; a symlink is refused), must be a socket, and the connection
    goes to that very inode through ``/proc/self/fd``. The listener must then be a process of the sandbox
    user inside this container (``SO_PEERCRED`` and the pid namespace), else the connection is dropped
    before a byte is sent. A socket inode on the sandbox's volume can only have been bound there by a
    process that sees the volume, so this never reaches a host service."""
    dfd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
    finally:
        os.close(dfd)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        if not stat.S_ISSOCK(os.fstat(fd).st_mode):
            raise ConnectionRefusedError(f"{name} is not a socket")
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, f"/proc/self/fd/{fd}")
        pid = check_peer(sock, peer)
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=limit)
    except BaseException:
        sock.close()
        raise
    finally:
        os.close(fd)
    return Channel(reader, writer), pid


async def connect_attach(
    client: docker.DockerClient, container_id: str, limit: int, executor: Executor | None = None
) -> Channel:
    """Attach to the container's stdin/stdout; demultiplexes Docker's 8-byte framed stream."""
    params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1}
    attach = functools.partial(client.api.attach_socket, container_id, params=params)
    try:
        wrapped = await asyncio.get_running_loop().run_in_executor(executor, attach)
    except docker.errors.DockerException as exc:
        raise SandboxUnavailable(f"could not attach to the sandbox: {exc}") from exc
    # Take the socket over from the HTTP response that docker-py keeps around (it would otherwise leak
    # with a ResourceWarning). Attach before the container starts, so nothing is buffered there yet.
    fd = getattr(wrapped, "_sock", wrapped).detach()
    raw = socket.socket(fileno=fd)
    raw.setblocking(False)
    reader = asyncio.StreamReader(limit=limit)
    channel = Channel(reader, None, raw)
    channel._pump = asyncio.create_task(_demux(raw, reader))
    return channel


async def _demux(raw: socket.socket, reader: asyncio.StreamReader) -> None:
    loop = asyncio.get_running_loop()
    buf = b""
    try:
        while True:
            chunk = await loop.sock_recv(raw, 1 << 16)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 8:
                kind, size = struct.unpack(">BxxxL", buf[:8])
                if len(buf) < 8 + size:
                    break
                if kind == 1:  # stdout: the protocol; stderr (2) is the kernel's crash output, dropped
                    reader.feed_data(buf[8 : 8 + size])
                buf = buf[8 + size :]
    except OSError:
        pass
    finally:
        reader.feed_eof()
