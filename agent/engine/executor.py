"""Runs in the background: one task per executing run, cancellation, expiry, resume after a restart.

A replica executes a run while it holds the run's lease (``lease`` = its instance id, ``lease_until``
renewed every few seconds). The API handler that creates or resumes a run takes the lease with the same
write, so the replica serving the stream is the one executing it. A leg that ends gives the lease back;
a replica that dies lets it lapse, and any replica then takes the run over and resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid

from agent.engine.bus import EventBus
from agent.engine.events import Leg, RunError
from agent.engine.loop import Env, execute
from agent.engine.records import RunRecorder
from agent.engine.responding import ResponseRecorder
from agent.llm import ModelError
from agent.logs import RUN_ID
from agent.store import Store

log = logging.getLogger(__name__)
OPEN = ("queued", "in_progress", "cancelling", "requires_action")
LEASE_SECONDS = 10
HEARTBEAT_SECONDS = 2.0


class Executor:
    def __init__(self, store: Store, bus: EventBus, env: Env, lease_seconds: int = LEASE_SECONDS) -> None:
        self.store, self.bus, self.env = store, bus, env
        self.lease_seconds = lease_seconds
        self._closed = False
        self.instance = uuid.uuid4().hex[:16]
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._finishing: set[asyncio.Future[None]] = set()
        self._live: dict[str, Leg] = {}  # what each task executes (a response's stream replays from it)
        self._ending: dict[str, str] = {}  # run id → "cancelled" | "expired" requested for a running task
        self._sweeper: asyncio.Task[None] | None = None

    def lease(self) -> dict[str, object]:
        """Columns that give this replica a run (written with the run's creation or resumption)."""
        return {"lease": self.instance, "lease_until": int(time.time()) + self.lease_seconds}

    async def start(self) -> None:
        """Resume what a previous process left behind, then watch deadlines and leases."""
        await self._take_over()
        self._sweeper = asyncio.create_task(self._sweep())

    async def _take_over(self) -> None:
        """Resume the runs whose replica is gone (lease free or lapsed)."""
        now = int(time.time())
        for owner, run in await self.store.claim_runs(self.instance, now, now + self.lease_seconds):
            rec = self.recorder(run, owner)
            if run["status"] == "cancelling":
                await self._finish(rec, "cancelled")
                continue
            await rec.discard_partial()
            log.info("resuming run %s (its replica is gone)", run["id"])
            run["status"] = "queued"
            self.launch(rec)

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
        if self._sweeper:
            self._sweeper.cancel()
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()  # left as they are in the store: resumed by the next replica to start
        await asyncio.gather(*tasks, self._sweeper or _noop(), return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.store.release_leases(self.instance)

    def launch(self, rec: Leg) -> None:
        if self._closed:
            return  # shutting down: the run waits in the store for the next start
        task = asyncio.create_task(self._drive(rec), name=rec.thread_id)
        run_id = rec.run["id"]
        self._tasks[run_id], self._live[run_id] = task, rec

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.pop(run_id, None)
            self._live.pop(run_id, None)
            outcome = self._ending.pop(run_id, None)
            if t.cancelled() and outcome is not None:  # stopped before it began: finish it here
                finishing = asyncio.ensure_future(self._finish(rec, outcome))
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
        """Cancel or expire a run; a running leg is interrupted and finishes the run itself."""
        task = self._tasks.get(rec.run["id"])
        if task is not None:
            self._ending[rec.run["id"]] = outcome
            task.cancel()
            return
        lease, until = await self.store.lease_of(rec.run["id"])
        if lease not in (None, self.instance) and (until or 0) >= time.time():
            return  # another live replica executes it: it sees the request at its next heartbeat
        await self._finish(rec, outcome)

    async def _drive(self, rec: Leg) -> None:
        run = rec.run
        RUN_ID.set(run["id"])  # on every log line of this task
        try:
            ctx = await rec.tool_context()
            await execute(rec, self.env, ctx)
            log.info("run %s is %s", run["id"], run["status"])
        except asyncio.CancelledError:
            outcome = self._ending.pop(run["id"], None)
            if outcome is None:
                raise  # shutdown: the run stays in the store and resumes at the next start
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
        await rec.stop_as(outcome, error)

    async def _sweep(self) -> None:
        """Expire overdue runs (including those waiting in requires_action)."""
        beat = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            try:
                now = time.time()
                for run in await self.store.runs_with_status(OPEN):
                    if run.get("expires_at") and run["expires_at"] <= now:
                        owner = await self.store.owner_of("run", run["id"]) or "-"
                        await self.stop(self.recorder(run, owner), "expired")
                if time.monotonic() - beat >= HEARTBEAT_SECONDS:
                    beat = time.monotonic()
                    await self._heartbeat()
            except Exception:
                log.exception("expiry sweep failed")

    async def _heartbeat(self) -> None:
        """Keep this replica's leases, stop what another replica was asked to cancel, take over orphans."""
        for run in await self.store.renew_leases(self.instance, int(time.time()) + self.lease_seconds):
            if run["id"] in self._tasks:
                owner = await self.store.owner_of("run", run["id"]) or "-"
                await self.stop(self.recorder(run, owner), "cancelled")
        await self._take_over()


async def _noop() -> None:
    return None


__all__ = ["Executor"]
