"""SandboxManager: sessions by key, a warm pool of fresh containers, reaping and cleanup.

* ``session(key)`` returns the key's live session or hands it a fresh pooled container (kernel started,
  libraries preloaded); a container is never given to a second key.
* A background task keeps ``pool_size`` ready containers (at most two starting at once).
* A reaper closes sessions idle for ``idle_ttl`` seconds or older than ``max_lifetime``.
* Every container and volume carries ``<label_prefix>.managed=1``; ``start()`` sweeps leftovers with that
  label (so give each service sharing one engine its own prefix) and ``close()`` removes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import time
import uuid
import warnings
from collections.abc import Coroutine, Iterable
from typing import Any

import docker
import docker.errors

from . import hostview
from .container import DEFAULT_PRELOAD, BoxSpec, create_box, destroy_box, sweep
from .errors import SandboxError, SandboxUnavailable, SessionClosed
from .limits import Limits
from .results import ExecResult
from .session import Session

log = logging.getLogger(__name__)

START_PARALLELISM = 2
RUNTIMES_WITHOUT_HOST_SOCKETS = ("runsc",)


def connect_engine() -> docker.DockerClient:
    """``docker.from_env()``, raising SandboxUnavailable when the engine is not reachable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            return docker.from_env()
        except docker.errors.DockerException as exc:
            message = str(exc)
        gc.collect()  # docker-py leaves the failed connection's socket to the GC: collect it quietly
    raise SandboxUnavailable(f"Docker engine not reachable: {message}")


class SandboxManager:
    def __init__(
        self,
        image: str = "agent-sandbox:latest",
        runtime: str | None = None,
        limits: Limits = Limits(),  # noqa: B008 - frozen dataclass
        pool_size: int = 2,
        idle_ttl: float = 1200,
        max_lifetime: float = 3600,
        docker_client: docker.DockerClient | None = None,
        label_prefix: str = "agent-sandbox",
        *,
        transport: str = "auto",
        preload: Iterable[str] = DEFAULT_PRELOAD,
        reap_interval: float | None = None,
    ) -> None:
        """``transport``: "socket" (Unix socket on a volume, fastest), "attach" (stdin/stdout through the
        engine; needed for gVisor or a remote engine) or "auto" (attach for runsc, socket otherwise).
        Note that "socket" and the file methods need this process on the engine's host, as root (or as the
        sandbox user), or in a container of that engine that mounts its volume directory (hostview.py)."""
        if transport not in ("auto", "socket", "attach"):
            raise ValueError(f"unknown transport {transport!r}")
        attach = transport == "attach" or (
            transport == "auto" and any(r in (runtime or "") for r in RUNTIMES_WITHOUT_HOST_SOCKETS)
        )
        self.image = image
        self.limits = limits
        self.pool_size = max(pool_size, 0)
        self.idle_ttl = idle_ttl
        self.max_lifetime = max_lifetime
        self.label_prefix = label_prefix
        self.instance = uuid.uuid4().hex[:12]
        self._spec = BoxSpec(image, limits, label_prefix, self.instance, runtime, attach, tuple(preload))
        self._client = docker_client
        self._own_client = docker_client is None
        self._sessions: dict[str, Session] = {}
        self._pool: list[Session] = []
        self._starting = 0
        self._key_locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[object]] = set()
        self._refill = asyncio.Event()
        self._reap_interval = reap_interval or max(1.0, min(60.0, idle_ttl / 4, max_lifetime / 4))
        self._fills: set[asyncio.Task[None]] = set()
        self._pool_changed = asyncio.Condition()
        self._failures = 0
        self._counts = {"cold_starts": 0, "kills": 0, "ooms": 0}
        self._started = False
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------------
    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = connect_engine()
        return self._client

    async def start(self) -> None:
        """Sweep leftovers of earlier runs and start filling the pool in the background."""
        if self._started:
            return
        self._started = True
        client = await asyncio.to_thread(lambda: self.client)
        view = await asyncio.to_thread(hostview.detect, client)
        if view.containerised:
            root = await asyncio.to_thread(hostview.volume_root, client)
            if problem := view.volumes_problem(root):
                raise SandboxUnavailable(problem)
            log.info("running in container %s of the sandbox engine", (view.container_id or "")[:12])
        self._spec = dataclasses.replace(self._spec, host=view)
        removed = await asyncio.to_thread(sweep, client, self.label_prefix, view)
        if removed:
            log.info("removed %d leftover sandbox containers", removed)
        self._spawn(self._refill_loop())
        self._spawn(self._reap_loop())
        self._refill.set()

    async def close(self) -> None:
        """Remove every container and volume this manager made. Never raises."""
        if self._closed:
            return
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        # Pool starts are not cancelled (a container could be created after the sweep): they finish,
        # see the manager closed and remove their container.
        if self._fills:
            await asyncio.wait(list(self._fills), timeout=self.limits.start_timeout + 30)
        sessions = list(self._sessions.values()) + self._pool
        self._sessions.clear()
        self._pool.clear()
        sem = asyncio.Semaphore(4)

        async def close_one(s: Session) -> None:
            async with sem:
                await s.close()

        await asyncio.gather(*(close_one(s) for s in sessions), return_exceptions=True)
        if self._client is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(self._sweep_instance)
            if self._own_client:
                with contextlib.suppress(Exception):
                    self._client.close()

    def _sweep_instance(self) -> None:
        """Catch anything of this instance that escaped (a start cancelled half-way)."""
        client = self.client
        selector = {"label": f"{self.label_prefix}.instance={self.instance}"}
        for c in client.containers.list(all=True, filters=selector):
            with contextlib.suppress(docker.errors.DockerException):
                c.remove(force=True, v=True)
        for v in client.volumes.list(filters=selector):
            with contextlib.suppress(docker.errors.DockerException):
                v.remove(force=True)

    async def available(self) -> bool:
        """True if the engine answers and the image is present."""

        def check() -> bool:
            try:
                self.client.ping()
                self.client.images.get(self.image)
            except (SandboxUnavailable, docker.errors.DockerException):
                return False
            return True

        return await asyncio.to_thread(check)

    # -- sessions -------------------------------------------------------------------------------------
    async def session(self, key: str) -> Session:
        """The live session of ``key``, or a new one (from the pool when one is ready)."""
        self._check_open()
        existing = self._sessions.get(key)
        if existing is not None and not existing.closed:
            existing.last_used = time.monotonic()
            return existing
        lock = self._key_locks.setdefault(key, asyncio.Lock())
        async with lock:
            existing = self._sessions.get(key)
            if existing is not None and not existing.closed:
                return existing
            session = await self._take_pooled()
            if session is None:
                self._counts["cold_starts"] += 1
                session = await self._new_session()
            self._check_open()
            session.key = key
            session.last_used = time.monotonic()
            self._sessions[key] = session
            self._refill.set()
            return session

    async def drop(self, key: str) -> None:
        """Destroy the session of ``key`` (its files are gone). No error if there is none."""
        session = self._sessions.pop(key, None)
        self._key_locks.pop(key, None)
        if session is not None:
            await session.close()

    def sessions(self) -> dict[str, Session]:
        return dict(self._sessions)

    @property
    def pool_ready(self) -> int:
        return len(self._pool)

    def stats(self) -> dict[str, int]:
        """Live sessions and warm containers now; cold starts, kills (a call that ignored its timeout) and
        OOMs since start."""
        live = sum(1 for s in self._sessions.values() if not s.closed)
        return {"sessions": live, "pool_ready": len(self._pool), **self._counts}

    def _count(self, result: ExecResult) -> None:
        if result.oom_killed:
            self._counts["ooms"] += 1
        elif result.reset and result.timed_out:
            self._counts["kills"] += 1

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosed("the sandbox manager is closed")
        if not self._started:
            raise SandboxError("SandboxManager.start() was not called")

    async def _take_pooled(self) -> Session | None:
        while self._pool:
            session = self._pool.pop(0)
            if await session.ping():
                return session
            await session.close()
        return None

    async def _new_session(self) -> Session:
        client = self.client
        box = await asyncio.to_thread(create_box, client, self._spec)
        session = Session(client, self._spec, box, self._destroy)
        session.on_result = self._count
        try:
            await session.boot()
        except BaseException:
            await session.close()
            raise
        return session

    async def _destroy(self, session: Session) -> None:
        if session.key and self._sessions.get(session.key) is session:
            del self._sessions[session.key]
        with contextlib.suppress(ValueError):
            self._pool.remove(session)
        box = session._box
        await asyncio.to_thread(destroy_box, self.client, box.name, box.volumes, box.container)

    # -- background -----------------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _refill_loop(self) -> None:
        while True:
            await self._refill.wait()
            self._refill.clear()
            while len(self._pool) + self._starting < self.pool_size and self._starting < START_PARALLELISM:
                self._starting += 1
                fill = asyncio.ensure_future(self._fill_one())
                self._fills.add(fill)
                fill.add_done_callback(self._fills.discard)
            if self._failures:
                await asyncio.sleep(min(2.0**self._failures, 60.0))  # back off: engine or image broken
                self._refill.set()

    async def _fill_one(self) -> None:
        try:
            session = await self._new_session()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failures += 1
            log.warning("could not start a pooled sandbox: %s", exc)
            return
        finally:
            self._starting -= 1
            self._refill.set()
        self._failures = 0
        if self._closed:
            await session.close()
            return
        self._pool.append(session)
        async with self._pool_changed:
            self._pool_changed.notify_all()

    async def warm(self, limit: float = 120.0) -> None:
        """Wait until the pool holds ``pool_size`` ready containers (start-up, benchmarks, tests)."""
        self._check_open()
        try:
            async with asyncio.timeout(limit), self._pool_changed:
                await self._pool_changed.wait_for(lambda: len(self._pool) >= self.pool_size)
        except TimeoutError as exc:
            raise SandboxUnavailable(f"the sandbox pool did not fill within {limit:g} s") from exc

    async def _reap_loop(self) -> None:
        while True:
            await asyncio.sleep(self._reap_interval)
            await self.reap()

    async def reap(self) -> int:
        """Close sessions idle longer than idle_ttl or older than max_lifetime; returns how many."""
        now = time.monotonic()
        doomed = [
            key
            for key, s in self._sessions.items()
            if not s.busy and (now - s.last_used > self.idle_ttl or now - s.created > self.max_lifetime)
        ]
        for key in doomed:
            await self.drop(key)
        return len(doomed)
