"""Containers: a named sandbox of one key, whose files the service keeps (the Containers API and the
Responses ``code_interpreter`` tool both use this).

A container is a row (``object: "container"``); its sandbox session (keyed by the container id, counted
against the key's sandbox limit) starts only when code first runs, and ends on expiry, deletion, idle
reaping or shutdown. Every container file's bytes are kept under ``<data>/containers/<cntr>/<cfile>``, so
a new session (after reaping, a kernel reset or a revival) gets the container's files back in
``/mnt/data``. A container expires ``expires_after.minutes`` after ``last_active_at``; using an expired
one fails as on the hosted API ("Container is expired"), unless ``revive`` is set: then it starts again
with its files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agent.domain import new_id, now
from agent.store import Store
from sandbox import ExecResult

log = logging.getLogger(__name__)
MEMORY_LIMITS = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}
DEFAULT_MINUTES = 20
SWEEP_SECONDS = 30.0


class ContainerExpired(Exception):
    """The container passed its ``expires_after`` and revival is off."""


class ContainerGone(Exception):
    """The container does not exist (for this key) any more."""


class _Session(Protocol):
    async def execute(self, code: str, timeout: float | None = None) -> ExecResult: ...  # noqa: ASYNC109

    async def write_file(self, path: str, data: bytes) -> None: ...

    async def read_file(self, path: str) -> bytes: ...

    async def export_file(self, path: str, dest: str, max_bytes: int) -> Any: ...


@dataclass(frozen=True)
class ContainerPolicy:
    revive: bool = False
    """Use of an expired container starts it again with its files (instead of the hosted error)."""
    memory_cap_mb: int = 1024
    """``memory_limit`` is mapped to MiB and capped by this."""
    files_per_call: int = 20
    """Files one call may add to the container (beyond that the model is told they were skipped)."""
    bytes_per_call: int = 64 << 20
    """Bytes of files one call may add to the container."""


def safe_name(name: str | None) -> str:
    """A file name for ``/mnt/data`` (no directories, no control characters)."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())[:200]
    return base if base not in ("", ".", "..") else "file"


def memory_mb(limit: str | None, cap: int) -> int:
    return min(MEMORY_LIMITS.get(limit or "1g", 1024), cap)


class Containers:
    def __init__(
        self,
        store: Store,
        manager: Any,
        root: Path,
        policy: ContainerPolicy,
        load: Callable[[str, str], Awaitable[tuple[str, bytes] | None]],
    ) -> None:
        """``manager``: the SandboxManager (None without Docker); ``load(owner, file_id)``: a Files-API
        file's (name, bytes), None unless the owner has it."""
        self.store, self.manager, self.root, self.policy, self.load = store, manager, root, policy, load
        self._seen: dict[str, object] = {}  # container id → the session its files were placed in
        self._locks: dict[str, asyncio.Lock] = {}
        self._sweeper: asyncio.Task[None] | None = None
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    # --- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> None:
        if self.manager is not None:
            self._sweeper = asyncio.ensure_future(self._sweep_loop())

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                await self.sweep()
            except Exception:
                log.exception("container sweep failed")

    async def sweep(self) -> int:
        """End the sessions of expired containers (their files stay on the service)."""
        if self.manager is None:
            return 0
        ended = 0
        for key in list(self.manager.sessions()):
            if not key.startswith("cntr_"):
                continue
            owner = await self.store.owner_of("container", key)
            obj = await self.store.get("container", key, owner) if owner else None
            if obj is None or expired(obj):
                await self.manager.drop(key)
                self._seen.pop(key, None)
                ended += 1
        return ended

    # --- containers -----------------------------------------------------------------------------------
    def new(self, name: str, minutes: int | None = None, memory_limit: str | None = None) -> dict[str, Any]:
        created = now()
        return {
            "id": new_id("cntr_"),
            "object": "container",
            "name": name,
            "created_at": created,
            "status": "running",
            "expires_after": {"anchor": "last_active_at", "minutes": minutes or DEFAULT_MINUTES},
            "last_active_at": created,
            "memory_limit": memory_limit or "1g",
        }

    async def get(self, owner: str, container_id: str) -> dict[str, Any] | None:
        obj = await self.store.get("container", container_id, owner)
        return render(obj) if obj is not None else None

    async def usable(self, owner: str, container_id: str) -> dict[str, Any]:
        """The container, ready to be used: ContainerGone / ContainerExpired (unless revived)."""
        obj = await self.store.get("container", container_id, owner)
        if obj is None:
            raise ContainerGone(container_id)
        if expired(obj):
            if not self.policy.revive:
                raise ContainerExpired(container_id)
            log.info("reviving expired container %s", container_id)
        return await self.touch(owner, obj)

    async def touch(self, owner: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = {**obj, "last_active_at": now(), "status": "running"}
        await self.store.update("container", obj, owner)
        return obj

    async def delete(self, owner: str, container_id: str) -> bool:
        if not await self.store.delete("container", container_id, owner):
            return False
        await self.store.delete_where("container_file", parent=container_id, owner=owner)
        if self.manager is not None:
            await self.manager.drop(container_id)
        self._seen.pop(container_id, None)
        await asyncio.to_thread(shutil.rmtree, self.root / container_id, True)
        return True

    # --- files ------------------------------------------------------------------------------------------
    def file_path(self, container_id: str, file_id: str) -> Path:
        return self.root / container_id / file_id

    def tmp_path(self) -> Path:
        return self.root / "tmp" / uuid.uuid4().hex

    async def add_file(
        self, owner: str, container_id: str, filename: str, tmp: Path, size: int, source: str
    ) -> dict[str, Any]:
        """Adopt the bytes at ``tmp`` as the container's file ``/mnt/data/<filename>`` (a file of the same
        path is replaced, keeping its id); the live session, if any, gets it too."""
        name = safe_name(filename)
        path = f"/mnt/data/{name}"
        existing = await self.store.find("container_file", parent=container_id, owner=owner)
        same = next((f for _, f in existing if f["path"] == path), None)
        file_id: str = same["id"] if same else new_id("cfile_")
        obj = {
            "id": file_id,
            "object": "container.file",
            "created_at": now(),
            "bytes": size,
            "container_id": container_id,
            "path": path,
            "source": source,
        }
        dest = self.file_path(container_id, file_id)
        await asyncio.to_thread(dest.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(os.replace, tmp, dest)
        if same:
            await self.store.update("container_file", obj, owner, container_id)
        else:
            await self.store.insert("container_file", obj, owner, parent=container_id)
        live = self.manager.sessions().get(container_id) if self.manager is not None else None
        if live is not None and source == "user":
            try:
                await live.write_file(name, await asyncio.to_thread(dest.read_bytes))
            except Exception as err:  # placed again when the next session starts
                log.warning("could not place %s in %s: %s", name, container_id, err)
                self._seen.pop(container_id, None)
        return obj

    async def add_bytes(
        self, owner: str, container_id: str, filename: str, data: bytes, source: str
    ) -> dict[str, Any]:
        tmp = self.tmp_path()
        await asyncio.to_thread(tmp.write_bytes, data)
        try:
            return await self.add_file(owner, container_id, filename, tmp, len(data), source)
        finally:
            tmp.unlink(missing_ok=True)

    async def files(self, owner: str, container_id: str) -> list[dict[str, Any]]:
        return [f for _, f in await self.store.find("container_file", parent=container_id, owner=owner)]

    async def delete_file(self, owner: str, container_id: str, file_id: str) -> bool:
        if not await self.store.delete("container_file", file_id, owner, container_id):
            return False
        await asyncio.to_thread(self.file_path(container_id, file_id).unlink, True)
        return True

    # --- running code -----------------------------------------------------------------------------------
    async def session(self, owner: str, obj: dict[str, Any]) -> _Session:
        """The container's live session, started (and given the container's files) when there is none."""
        if self.manager is None:
            raise RuntimeError("no sandbox")
        cid = obj["id"]
        lock = self._locks.setdefault(cid, asyncio.Lock())
        async with lock:
            session = await self.manager.session(cid, owner=owner)  # counted in the key's limit
            if self._seen.get(cid) is not session:
                await self._prepare(owner, obj, session)
                self._seen[cid] = session
        return session

    async def _prepare(self, owner: str, obj: dict[str, Any], session: Any) -> None:
        mb = memory_mb(obj.get("memory_limit"), self.policy.memory_cap_mb)
        resize = getattr(session, "set_memory", None)
        if resize is not None:
            try:
                await resize(mb)
            except Exception as err:
                log.warning("could not set memory of %s to %d MiB: %s", obj["id"], mb, err)
        for f in await self.files(owner, obj["id"]):
            data = await asyncio.to_thread(self.file_path(obj["id"], f["id"]).read_bytes)
            await session.write_file(f["path"].removeprefix("/mnt/data/"), data)

    async def forget(self, container_id: str) -> None:
        """The session was reset: place the files again next time."""
        self._seen.pop(container_id, None)


def expired(obj: dict[str, Any]) -> bool:
    minutes = int((obj.get("expires_after") or {}).get("minutes") or DEFAULT_MINUTES)
    return now() > int(obj.get("last_active_at") or obj["created_at"]) + minutes * 60


def render(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "status": "expired" if expired(obj) else "running"}
