"""Run leases: which replica executes a run, and the fence that keeps every other one from writing it.

A lease is a token ``<instance>/<epoch>/<leg>`` in the run's ``lease`` column, with ``lease_until``: the
instance names the replica (stable across its restarts), the epoch one process of it, the leg one
claim. Every write of an executing run goes through a ``FencedStore``: its transaction first locks the
run's row where ``lease`` is still the leg's token. A leg whose token was replaced (its replica paused
past the lease and another one took the run over) writes nothing more: ``LeaseLost``. A leg whose run
was asked to cancel (``cancelling``) can only finish it as cancelled: ``CancelRequested``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.store.db import ACTIVE_RUN, RESUMABLE_RUN, TABLES, Store

RUN = TABLES["run"]


class LeaseLost(Exception):
    """Another replica holds the run now (or it has ended): this leg must stop without writing."""


class CancelRequested(Exception):
    """The run was asked to cancel: this leg's only remaining write is finishing it as cancelled."""


class FencedStore(Store):
    """The store as one leg of a run sees it: reads as usual; every write transaction first checks,
    in the same transaction and with the run's row locked, that the leg still holds the lease."""

    def __init__(self, base: Store, run_id: str, lease: str) -> None:
        self.__dict__.update(base.__dict__)  # the same engines and write lock
        self.run_id, self.lease = run_id, lease
        self.finishing: str | None = None  # the outcome the leg is writing (cancelled, failed, expired)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        async with super().write() as conn:
            status = await fence(conn, self.run_id, self.lease)
            if status is None:
                raise LeaseLost(self.run_id)
            if status == "cancelling" and self.finishing != "cancelled":
                raise CancelRequested(self.run_id)  # a cancel accepted is never overwritten
            yield conn


async def fence(conn: AsyncConnection, run_id: str, lease: str) -> str | None:
    """Lock the run's row if ``lease`` still holds it; its status, or None when the lease is gone."""
    q = sa.update(RUN).where(RUN.c.id == run_id, RUN.c.lease == lease).values(lease=RUN.c.lease)
    return await conn.scalar(q.returning(RUN.c.status))


@dataclass
class Claimed:
    owner: str
    run: dict[str, Any]
    lease: str


async def claim(
    store: Store,
    instance: str,
    epoch: str,
    tokens: Any,
    seconds: int,
    *,
    limit: int,
    run_id: str | None = None,
) -> list[Claimed]:
    """Take the lease of runs no live replica executes: lease free, lapsed, or left by an earlier
    process of this same instance (``instance/<other epoch>/…``: its process is gone, so its runs
    resume at once). With ``run_id``, only that run, in any active status (to cancel or expire it).
    ``tokens`` yields a fresh lease token per run. Two replicas never take the same run."""
    own = f"{instance}/"
    async with store.write() as conn:
        now = int(time.time())
        free = sa.or_(
            RUN.c.lease.is_(None),
            RUN.c.lease_until < now,
            sa.and_(
                RUN.c.lease.startswith(own, autoescape=True),
                sa.not_(RUN.c.lease.startswith(f"{own}{epoch}/", autoescape=True)),
            ),
        )
        q = sa.select(RUN.c.id, RUN.c.owner, RUN.c.data).where(free)
        if run_id is None:
            q = q.where(RUN.c.status.in_(RESUMABLE_RUN))
        else:
            q = q.where(RUN.c.id == run_id, RUN.c.status.in_(ACTIVE_RUN))
        q = q.order_by(RUN.c.seq).limit(limit).with_for_update(skip_locked=True)
        rows = (await conn.execute(q)).all()
        taken = []
        for rid, owner, data in rows:
            token = next(tokens)
            await conn.execute(
                sa.update(RUN).where(RUN.c.id == rid).values(lease=token, lease_until=now + seconds)
            )
            taken.append(Claimed(owner, json.loads(data), token))
    return taken


async def renew(store: Store, prefix: str, seconds: int) -> list[tuple[str, str, str]]:
    """Extend every lease of this process (on a connection of its own, never queued behind requests;
    the new end is computed once the connection is held). Returns (run id, lease, status) of each."""
    write = store.write() if store.sqlite else store.leases.begin()
    async with write as conn:
        until = int(time.time()) + seconds
        q = sa.update(RUN).where(RUN.c.lease.startswith(prefix, autoescape=True)).values(lease_until=until)
        rows = await conn.execute(q.returning(RUN.c.id, RUN.c.lease, RUN.c.status))
        return [(r[0], r[1], r[2]) for r in rows]


async def release(store: Store, prefix: str) -> None:
    """Give back every lease of this process (at shutdown: another replica may take the runs at once)."""
    async with store.write() as conn:
        q = sa.update(RUN).where(RUN.c.lease.startswith(prefix, autoescape=True))
        await conn.execute(q.values(lease=None, lease_until=None))


# --- background jobs kept as rows (vector store files being ingested): any replica takes one ----------------
async def claim_jobs(
    store: Store, kind: str, holder: str, seconds: int, *, limit: int, job: tuple[str, str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """Lease up to ``limit`` rows ``in_progress`` that no live replica works on (``FOR UPDATE SKIP LOCKED``:
    replicas claiming together never take the same row); ``job`` = (id, parent) for one given row.
    Returns (owner, object) of each row taken."""
    t = TABLES[kind]
    async with store.write() as conn:
        now = int(time.time())
        free = sa.or_(t.c.lease.is_(None), t.c.lease_until < now)
        q = sa.select(t.c.seq, t.c.owner, t.c.data).where(t.c.status == "in_progress", free)
        if job is not None:
            q = q.where(t.c.id == job[0], t.c.parent == job[1])
        q = q.order_by(t.c.seq).limit(limit).with_for_update(skip_locked=True)
        rows = (await conn.execute(q)).all()
        if rows:
            taken = sa.update(t).where(t.c.seq.in_([r[0] for r in rows]))
            await conn.execute(taken.values(lease=holder, lease_until=now + seconds))
    return [(owner, json.loads(data)) for _, owner, data in rows]


async def renew_jobs(store: Store, kind: str, holder: str, seconds: int) -> None:
    t = TABLES[kind]
    write = store.write() if store.sqlite else store.leases.begin()
    async with write as conn:
        until = int(time.time()) + seconds
        await conn.execute(sa.update(t).where(t.c.lease == holder).values(lease_until=until))


@contextlib.asynccontextmanager
async def job_fenced(
    store: Store, kind: str, job: tuple[str, str], holder: str
) -> AsyncIterator[tuple[AsyncConnection, str | None]]:
    """A transaction in which the job's row is locked; yields its status, None when ``holder`` lost it."""
    t = TABLES[kind]
    async with store.write() as conn:
        q = sa.update(t).where(t.c.id == job[0], t.c.parent == job[1], t.c.lease == holder)
        yield conn, await conn.scalar(q.values(lease=t.c.lease).returning(t.c.status))
