"""Runs in the background: one task per executing run, cancellation, expiry, resume after a restart.

A replica executes a run while it holds the run's lease (agent/store/leases.py: a token per leg in the
run's row, renewed every lease/4 seconds by a task of its own on a connection of its own). The API
handler that creates or resumes a run takes the lease with the same write, so the replica serving the
stream is the one executing it; a replica at its capacity (``max_runs``) leaves a polled run queued
without a lease, for whichever replica has room. Every write of a leg is fenced by its token: a leg
whose lease another replica took writes nothing more and stops. A leg that ends gives the lease back;
a replica that dies lets it lapse, and any replica then takes the run over and resumes it; the same
replica restarted (same instance name) resumes its runs at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
import uuid
from typing import Any

from agent.engine.bus import EventBus
from agent.engine.events import Leg, RunError
from agent.engine.loop import Env, execute
from agent.engine.records import LEG_END, RunRecorder
from agent.engine.responding import ResponseRecorder
from agent.llm import ModelError
from agent.logs import RUN_ID
from agent.store import Store
from agent.store.leases import CancelRequested, FencedStore, LeaseLost, claim, release, renew

log = logging.getLogger(__name__)
OPEN = ("queued", "in_progress", "cancelling", "requires_action")
LEASE_SECONDS = 10
SWEEP_SECONDS = 2.0


class Executor:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        env: Env,
        *,
        instance: str | None = None,
        lease_seconds: int = LEASE_SECONDS,
        max_runs: int = 64,
    ) -> None:
        self.store, self.bus, self.env = store, bus, env
        self.instance = instance or uuid.uuid4().hex[:16]
        self.epoch = secrets.token_hex(4)  # this process
        self.prefix = f"{self.instance}/{self.epoch}/"
        self.lease_seconds, self.max_runs = max(2, lease_seconds), max(1, max_runs)
        self._tokens = (f"{self.prefix}{n}" for n in itertools.count())
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finishing: set[asyncio.Future[None]] = set()
        self._live: dict[str, Leg] = {}  # what each task executes (a response's stream replays from it)
        self._legs: dict[str, tuple[str | None, float, Leg]] = {}  # run id → (lease, launched at, rec)
        self._given: dict[str, str] = {}  # run id → lease written by an API handler, until launched
        self._ending: dict[str, str] = {}  # run id → "cancelled" | "expired" | "lost" for a running task
        self._loops: list[asyncio.Task[None]] = []
        self._room = asyncio.Event()  # a leg ended: there is room to claim a queued run
        self._renewed = time.monotonic()  # when this process's leases were last renewed
        self._closed = False

    def lease(self, run_id: str, stream: bool = True) -> dict[str, object]:
        """Columns that give this replica a run (written with the run's creation or resumption). At
        capacity a polled run is left for any replica to claim; a streamed one runs here (its events are here)."""
        if not stream and not self._has_room():
            return {"lease": None, "lease_until": None}
        token = next(self._tokens)
        self._given[run_id] = token
        while len(self._given) > 10_000:  # leases given to writes that then failed
            self._given.pop(next(iter(self._given)))
        return {"lease": token, "lease_until": int(time.time()) + self.lease_seconds}

    def _has_room(self) -> bool:
        """Whether this replica can take one more run and keep it leased: below ``max_runs``, and its
        renewals keeping up (the last one less than half a lease ago)."""
        late = time.monotonic() - self._renewed > self.lease_seconds / 2
        return len(self._tasks) < self.max_runs and not late

    async def start(self) -> None:
        """Resume what a previous process left behind, then keep the leases and watch deadlines."""
        await self._take_over()
        self._loops = [
            asyncio.create_task(self._every(self.lease_seconds / 4, self._heartbeat), name="heartbeat"),
            asyncio.create_task(self._claims(), name="claims"),
            asyncio.create_task(self._every(SWEEP_SECONDS, self._expire), name="expiry"),
        ]

    async def _take_over(self) -> None:
        """Resume runs no live replica executes (queued without a lease, a dead replica's, our own old ones)."""
        room = self.max_runs - len(self._tasks)
        if room <= 0 or not self._has_room() or self._closed:
            return
        for c in await claim(
            self.store, self.instance, self.epoch, self._tokens, self.lease_seconds, limit=room
        ):
            rec = self._fenced(self.recorder(c.run, c.owner), c.lease)
            if c.run["status"] == "cancelling":
                await self._finish(rec, "cancelled")
                continue
            try:
                await rec.discard_partial()
            except (LeaseLost, CancelRequested):
                continue  # seen again at the next claim
            log.info("resuming run %s (its replica is gone)", c.run["id"])
            rec.run["status"] = "queued"
            self._launch(rec, c.lease)

    def recorder(self, run: dict[str, object], owner: str) -> Leg:
        """The rendering a stored run row asks for: a response, or an Assistants run."""
        if run.get("object") == "response":
            return ResponseRecorder(self.store, self.bus, run, owner)
        return RunRecorder(self.store, self.bus, run, owner)

    def live(self, run_id: str) -> Leg | None:
        """The run or response this replica is executing now, if it is."""
        return self._live.get(run_id)

    async def wait(self, run_id: str) -> None:
        """Until this replica's task for the run (if any) has finished."""
        task = self._tasks.get(run_id)
        if task is not None:
            await asyncio.wait({task})  # a waiter that goes away does not cancel the task

    async def close(self) -> None:
        """Stop executing (at shutdown); safe to call twice. Runs stay in the store as they are and their
        leases are given back, so the next replica to start resumes them at once."""
        self._closed = True
        for loop in self._loops:
            loop.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()  # left as they are in the store: resumed by the next replica to start
        await asyncio.gather(*tasks, *self._loops, return_exceptions=True)
        with contextlib.suppress(Exception):
            await release(self.store, self.prefix)

    def launch(self, rec: Leg) -> None:
        """Execute a run whose lease an API handler just wrote (``lease(run_id)``); a run left without
        one waits, queued, for the first replica with room. A response kept nowhere (``store: false``)
        has no row to lease: it runs here, unfenced."""
        token = self._given.pop(rec.run["id"], None)
        if token is not None:
            self._launch(self._fenced(rec, token), token)
        elif not getattr(rec, "persist", True):
            self._launch(rec, None)

    def _fenced(self, rec: Leg, token: str) -> Leg:
        rec.store = FencedStore(self.store, rec.run["id"], token)  # type: ignore[attr-defined]
        return rec

    def _launch(self, rec: Leg, token: str | None) -> None:
        if self._closed:
            return  # shutting down: the run waits in the store for the next start
        run_id = rec.run["id"]
        task = asyncio.create_task(self._drive(rec), name=rec.thread_id)
        self._tasks[run_id], self._live[run_id] = task, rec
        self._legs[run_id] = (token, time.monotonic(), rec)

        def done(t: asyncio.Task[None]) -> None:
            if self._tasks.get(run_id) is task:
                self._tasks.pop(run_id, None)
                self._live.pop(run_id, None)
                self._legs.pop(run_id, None)
            self._room.set()
            outcome = self._ending.pop(run_id, None)
            if t.cancelled() and outcome not in (None, "lost"):  # stopped before it began: finish it here
                finishing = asyncio.ensure_future(self._finish(rec, str(outcome)))
                self._finishing.add(finishing)
                finishing.add_done_callback(self._finishing.discard)

        task.add_done_callback(done)

    async def thread_deleted(self, thread_id: str) -> None:
        """A deleted thread's runs stop where they are (their rows are already gone)."""
        ids = [i for i, t in self._tasks.items() if t.get_name() == thread_id]
        tasks = [self._tasks[i] for i in ids]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for run_id in ids:
            self.bus.publish(run_id, "_end", {})  # streams of a response close (there is no event for it)

    async def stop(self, rec: Leg, outcome: str) -> None:
        """Cancel or expire a run; a running leg is interrupted and finishes the run itself. A run no
        replica executes is finished here (after taking its lease); one another live replica executes
        is left to it: it sees ``cancelling`` at its next heartbeat or write."""
        if self._interrupt(rec.run["id"], outcome):
            return
        for c in await claim(
            self.store,
            self.instance,
            self.epoch,
            self._tokens,
            self.lease_seconds,
            limit=1,
            run_id=rec.run["id"],
        ):
            await self._finish(self._fenced(self.recorder(c.run, c.owner), c.lease), outcome)

    def _interrupt(self, run_id: str, outcome: str) -> bool:
        task = self._tasks.get(run_id)
        if task is None:
            return False
        self._ending[run_id] = outcome
        task.cancel()
        return True

    async def _drive(self, rec: Leg) -> None:
        run = rec.run
        RUN_ID.set(run["id"])  # on every log line of this task
        try:
            ctx = await rec.tool_context()
            await execute(rec, self.env, ctx)
            log.info("run %s is %s", run["id"], run["status"])
        except LeaseLost:
            log.warning("run %s: another replica holds its lease now; this leg stops", run["id"])
        except CancelRequested:
            await self._finish(rec, "cancelled")
        except asyncio.CancelledError:
            outcome = self._ending.pop(run["id"], None)
            if outcome is None:
                raise  # shutdown: the run stays in the store and resumes at the next start
            if outcome != "lost":
                await self._finish(rec, outcome)
        except (ModelError, RunError) as err:  # the model server's, the model's, a tool's, the client's
            log.warning("run failed: %s", err.message)
            if isinstance(err, ModelError):
                self.env.metrics.model_errors.inc()
            await self._fail(rec, {"code": err.code, "message": err.message})
        except Exception as err:  # never leave a run stuck
            log.exception("run %s failed", run["id"])
            await self._fail(
                rec, {"code": "server_error", "message": f"Internal error: {type(err).__name__}"}
            )

    async def _fail(self, rec: Leg, error: dict[str, str]) -> None:
        await self._finish(rec, "failed", error)

    async def _finish(self, rec: Leg, outcome: str, error: dict[str, str] | None = None) -> None:
        """End the run with ``outcome``; a cancel accepted meanwhile wins (the run ends cancelled)."""
        try:
            try:
                await self._end(rec, outcome, error)
            except CancelRequested:
                await self._end(rec, "cancelled", None)
        except LeaseLost:
            log.warning("run %s: another replica holds its lease now; not finished here", rec.run["id"])

    async def _end(self, rec: Leg, outcome: str, error: dict[str, str] | None) -> None:
        store = getattr(rec, "store", None)
        if isinstance(store, FencedStore):
            store.finishing = outcome
        await rec.stop_as(outcome, error)

    async def _every(self, seconds: float, job: Any) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except Exception:
                log.exception("%s failed", job.__name__)

    async def _heartbeat(self) -> None:
        """Keep this process's leases; stop a leg whose lease another replica took, or whose run another
        replica was asked to cancel."""
        started = time.monotonic()
        rows = await renew(self.store, self.prefix, self.lease_seconds)
        self._renewed = started
        held = {lease for _, lease, _ in rows}
        for run_id, lease, status in rows:
            leg = self._legs.get(run_id)
            if status == "cancelling" and leg is not None and leg[0] == lease:
                self._interrupt(run_id, "cancelled")
        for run_id, (token, launched, rec) in list(self._legs.items()):
            if (
                token is not None
                and token not in held
                and launched < started
                and rec.run["status"] not in LEG_END
            ):
                log.warning("run %s: lease lost (taken by another replica); this leg stops", run_id)
                self._interrupt(run_id, "lost")

    async def _claims(self) -> None:
        """Take runs no live replica executes, whenever this one has room."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._room.wait(), self.lease_seconds / 4)
            self._room.clear()
            try:
                await self._take_over()
            except Exception:
                log.exception("claiming runs failed")

    async def _expire(self) -> None:
        """Expire overdue runs (including those waiting in requires_action)."""
        now = time.time()
        for run in await self.store.runs_with_status(OPEN):
            if run.get("expires_at") and run["expires_at"] <= now:
                owner = await self.store.owner_of("run", run["id"]) or "-"
                await self.stop(self.recorder(run, owner), "expired")


__all__ = ["Executor"]
