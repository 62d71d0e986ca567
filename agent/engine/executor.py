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
from agent.engine.loop import Env, execute
from agent.engine.records import RunRecorder
from agent.llm import ModelError
from agent.logs import RUN_ID
from agent.store import Store
from agent.tools import ToolContext

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
            rec = RunRecorder(self.store, self.bus, run, owner)
            if run["status"] == "cancelling":
                await self._finish(rec, "cancelled")
                continue
            await _discard_partial(rec)
            log.info("resuming run %s (its replica is gone)", run["id"])
            run["status"] = "queued"
            self.launch(rec)

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

    def launch(self, rec: RunRecorder) -> None:
        if self._closed:
            return  # shutting down: the run waits in the store for the next start
        task = asyncio.create_task(self._drive(rec), name=rec.thread_id)
        self._tasks[rec.run["id"]] = task
        task.add_done_callback(lambda _t: self._tasks.pop(rec.run["id"], None))

    async def thread_deleted(self, thread_id: str) -> None:
        """A deleted thread's runs stop where they are (their rows are already gone)."""
        tasks = [t for t in self._tasks.values() if t.get_name() == thread_id]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def stop(self, rec: RunRecorder, outcome: str) -> None:
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

    async def _drive(self, rec: RunRecorder) -> None:
        run = rec.run
        RUN_ID.set(run["id"])  # on every log line of this task
        try:
            ctx = await self._context(rec)
            await execute(rec, self.env, ctx)
            log.info("run %s is %s", run["id"], run["status"])
        except asyncio.CancelledError:
            outcome = self._ending.pop(run["id"], None)
            if outcome is None:
                raise  # shutdown: the run stays in the store and resumes at the next start
            await self._finish(rec, outcome)
        except ModelError as err:
            log.warning("run failed: %s", err.message)
            self.env.metrics.model_errors.inc()
            await self._fail(rec, {"code": err.code, "message": err.message})
        except Exception as err:  # never leave a run stuck
            log.exception("run %s failed", run["id"])
            await self._fail(
                rec, {"code": "server_error", "message": f"Internal error: {type(err).__name__}"}
            )

    async def _fail(self, rec: RunRecorder, error: dict[str, str]) -> None:
        # streams raise on this (spec §4.5), then see the run's terminal event
        rec.publish(
            "error",
            {
                "error": {
                    "message": error["message"],
                    "type": error["code"],
                    "param": None,
                    "code": error["code"],
                }
            },
        )
        await self._finish(rec, "failed", error)

    async def _finish(self, rec: RunRecorder, outcome: str, error: dict[str, str] | None = None) -> None:
        with contextlib.suppress(Exception):
            await rec.abandon(outcome)
        await rec.set_status(outcome, last_error=error) if error else await rec.set_status(outcome)

    async def _context(self, rec: RunRecorder) -> ToolContext:
        run = rec.run
        assistant = rec.assistant or await self.store.get("assistant", run["assistant_id"], rec.owner) or {}
        thread = rec.thread or await self.store.get("thread", rec.thread_id, rec.owner) or {}
        ctx = ToolContext(
            owner=rec.owner,
            thread_id=rec.thread_id,
            run_id=run["id"],
            assistant=assistant,
            thread=thread,
            tools=run["tools"],
        )
        rec.ctx = ctx
        return ctx

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
                        await self.stop(RunRecorder(self.store, self.bus, run, owner), "expired")
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
                await self.stop(RunRecorder(self.store, self.bus, run, owner), "cancelled")
        await self._take_over()


async def _discard_partial(rec: RunRecorder) -> None:
    """After a crash: drop the unfinished step (and its message) so the turn can be taken again."""
    for step in await rec.open_steps():
        if step["type"] == "message_creation":
            await rec.store.delete(
                "message", step["step_details"]["message_creation"]["message_id"], rec.owner, rec.thread_id
            )
        await rec.store.delete("step", step["id"], rec.owner, rec.thread_id)


async def _noop() -> None:
    return None


__all__ = ["Executor"]
