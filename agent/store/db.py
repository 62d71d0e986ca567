"""Every kind of object is one row: indexed columns for lookups plus the wire JSON in ``data``.

Generic columns: ``parent`` (thread of messages/runs/steps, vector store of its files), ``run_id`` (run of
messages/steps, batch of vector store files), ``status`` (runs and vector store files; a file's purpose).
Rows are ordered by ``seq`` (insertion order), which breaks ties among objects created in the same
second and gives the cursor pagination of spec §0.3. Owners are hashed API keys, never the keys.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import functools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from agent.domain import RUN_ACTIVE, RUN_RESUMABLE

KINDS = (
    "assistant",
    "thread",
    "message",
    "run",
    "step",
    "file",
    "vector_store",
    "vector_store_file",
    "file_batch",
    "container",
    "container_file",
)

metadata = sa.MetaData()


def _table(kind: str) -> sa.Table:
    return sa.Table(
        kind,
        metadata,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("parent", sa.String(64)),  # thread id of messages/runs/steps, vector store of its files
        sa.Column("run_id", sa.String(64)),
        sa.Column("status", sa.String(32)),
        sa.Column("lease", sa.String(64)),  # runs: the replica executing it
        sa.Column("lease_until", sa.Integer),
        sa.Column("created_at", sa.Integer, nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("parent", "id", name=f"uq_{kind}_parent_id"),
        sa.Index(f"ix_{kind}_id", "id"),
        sa.Index(f"ix_{kind}_owner_parent_seq", "owner", "parent", "seq"),
    )


TABLES = {kind: _table(kind) for kind in KINDS}
STATUS_KINDS = ("run", "vector_store_file")  # kinds whose ``status`` column mirrors the object's status
ACTIVE_RUN = RUN_ACTIVE
RESUMABLE_RUN = RUN_RESUMABLE  # what a replica executes (holding the lease)
_active = TABLES["run"].c.status.in_(ACTIVE_RUN)
sa.Index("ix_run_status", TABLES["run"].c.status)  # the expiry sweep and resume read runs by status
# The thread lock, kept by the database itself (also across replicas): one active run per thread.
sa.Index(
    "uq_run_one_active_per_thread",
    TABLES["run"].c.parent,
    unique=True,
    sqlite_where=_active,
    postgresql_where=_active,
)


@dataclass
class Page:
    data: list[dict[str, Any]]
    has_more: bool


class Store:
    def __init__(self, url: str, files_dir: Path | None = None) -> None:
        """``files_dir``: where file bytes go with SQLite (next to the database file by default); on
        PostgreSQL they are kept in the database, like everything else."""
        from agent.store.blobs import Blobs, DatabaseBlobs, DiskBlobs

        self.url = url
        self.sqlite = url.startswith("sqlite")
        if self.sqlite:
            args: dict[str, Any] = {"connect_args": {"timeout": 30}}
            self.engine: AsyncEngine = create_async_engine(url, **args)
            # writes begin IMMEDIATE: a transaction that reads then writes never meets a stale snapshot,
            # also when several processes share the file
            self.writer: AsyncEngine = create_async_engine(url, **args)
            sa.event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            sa.event.listen(self.writer.sync_engine, "connect", _sqlite_writer)
            sa.event.listen(self.writer.sync_engine, "begin", _sqlite_begin_immediate)
            self.leases: AsyncEngine = self.writer
        else:
            self.engine = self.writer = create_async_engine(url, pool_size=10, max_overflow=20)
            # lease renewals never wait behind requests for a connection
            self.leases = create_async_engine(url, pool_size=1, max_overflow=1)
        # SQLite has one writer at a time: serialising this process's writes avoids "database is locked".
        # PostgreSQL locks rows, not the database: no process-wide lock there.
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.sqlite else None
        self.blobs: Blobs = (
            DiskBlobs(files_dir or Path(make_url(url).database or ".").resolve().parent / "files")
            if self.sqlite
            else DatabaseBlobs(self)
        )

    async def open(self) -> None:
        """Create or upgrade the schema (Alembic migrations; see agent/store/schema.py)."""
        from agent.store import schema

        async with self.writer.begin() as conn:
            await conn.run_sync(schema.upgrade)

    async def close(self) -> None:
        for engine in {self.engine, self.writer, self.leases}:
            await engine.dispose()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """One transaction; the unit in which a check and the write it guards happen together."""
        async with self._write_lock or contextlib.nullcontext(), self.writer.begin() as conn:
            yield conn

    # --- reads -------------------------------------------------------------------------------
    async def get(
        self, kind: str, object_id: str, owner: str, parent: str | None = None
    ) -> dict[str, Any] | None:
        async with self.engine.connect() as conn:
            return await get(conn, kind, object_id, owner, parent)

    async def list(
        self,
        kind: str,
        owner: str,
        *,
        parent: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> Page:
        t = TABLES[kind]
        q = sa.select(t.c.data).where(t.c.owner == owner)
        if parent is not None:
            q = q.where(t.c.parent == parent)
        for col, value in (where or {}).items():
            q = q.where(t.c[col].in_(value) if isinstance(value, list | tuple) else t.c[col] == value)
        desc = order == "desc"
        async with self.engine.connect() as conn:
            for cursor, forward in ((after, True), (before, False)):
                if cursor is None:
                    continue
                cq = sa.select(t.c.seq).where(t.c.id == cursor, t.c.owner == owner)
                if parent is not None:
                    cq = cq.where(t.c.parent == parent)
                seq = await conn.scalar(cq)
                if seq is None:
                    continue  # the hosted API ignores an unknown cursor
                q = q.where(t.c.seq < seq if desc == forward else t.c.seq > seq)
            if before is not None and after is None:
                # page that ends just before the cursor: read backwards, then restore the order
                q = q.order_by(t.c.seq if desc else t.c.seq.desc()).limit(limit + 1)
                rows = [json.loads(r[0]) for r in await conn.execute(q)]
                return Page(list(reversed(rows[:limit])), len(rows) > limit)
            q = q.order_by(t.c.seq.desc() if desc else t.c.seq).limit(limit + 1)
            rows = [json.loads(r[0]) for r in await conn.execute(q)]
        return Page(rows[:limit], len(rows) > limit)

    async def active_run(self, thread_id: str) -> str | None:
        async with self.engine.connect() as conn:
            return await active_run(conn, thread_id)

    async def runs_with_status(self, statuses: tuple[str, ...]) -> builtins.list[dict[str, Any]]:
        t = TABLES["run"]
        async with self.engine.connect() as conn:
            rows = await conn.execute(sa.select(t.c.data).where(t.c.status.in_(statuses)).order_by(t.c.seq))
            return [json.loads(r[0]) for r in rows]

    async def count_by(self, kind: str, owner: str, parent: str, run_id: str | None = None) -> dict[str, int]:
        t = TABLES[kind]
        q = sa.select(t.c.status, sa.func.count()).where(t.c.owner == owner, t.c.parent == parent)
        if run_id is not None:
            q = q.where(t.c.run_id == run_id)
        async with self.engine.connect() as conn:
            return {status: n for status, n in await conn.execute(q.group_by(t.c.status))}

    async def delete_where(self, kind: str, **where: Any) -> None:
        t = TABLES[kind]
        q = sa.delete(t)
        for col, value in where.items():
            q = q.where(t.c[col] == value)
        async with self.write() as conn:
            await conn.execute(q)

    async def find(self, kind: str, **where: Any) -> builtins.list[tuple[str, dict[str, Any]]]:
        """(owner, object) of every row matching the column values, in insertion order."""
        t = TABLES[kind]
        q = sa.select(t.c.owner, t.c.data).order_by(t.c.seq)
        for col, value in where.items():
            q = q.where(t.c[col] == value)
        async with self.engine.connect() as conn:
            return [(o, json.loads(d)) for o, d in await conn.execute(q)]

    async def owned(self, kind: str, owner: str, ids: builtins.list[str]) -> dict[str, dict[str, Any] | None]:
        """Which of ``ids`` belong to ``owner``: id → object for files and vector stores (their expiry is
        in the object), id → None for other kinds (only their existence is read)."""
        t = TABLES[kind]
        out: dict[str, dict[str, Any] | None] = {}
        with_data = kind in ("file", "vector_store")
        cols = (t.c.id, t.c.data) if with_data else (t.c.id,)
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), 500):
                q = sa.select(*cols).where(t.c.owner == owner, t.c.id.in_(ids[start : start + 500]))
                for row in await conn.execute(q):
                    out[row[0]] = json.loads(row[1]) if with_data else None
        return out

    async def owner_of(self, kind: str, object_id: str) -> str | None:
        t = TABLES[kind]
        async with self.engine.connect() as conn:
            return await conn.scalar(sa.select(t.c.owner).where(t.c.id == object_id))

    # --- writes (each its own transaction) ----------------------------------------------------
    async def insert(self, kind: str, obj: dict[str, Any], owner: str, **cols: Any) -> dict[str, Any]:
        async with self.write() as conn:
            await insert(conn, kind, obj, owner, **cols)
        return obj

    async def update(
        self, kind: str, obj: dict[str, Any], owner: str, parent: str | None = None, **cols: Any
    ) -> dict[str, Any]:
        async with self.write() as conn:
            await update(conn, kind, obj, owner, parent, **cols)
        return obj

    async def delete(self, kind: str, object_id: str, owner: str, parent: str | None = None) -> bool:
        async with self.write() as conn:
            return await delete(conn, kind, object_id, owner, parent)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_writer(dbapi_conn: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_conn, record)
    dbapi_conn.isolation_level = None  # the driver's own BEGIN is replaced by _sqlite_begin_immediate


def _sqlite_begin_immediate(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE")


# --- statement helpers usable inside a Store.write() transaction ----------------------------------
@functools.cache
def _get_stmt(kind: str, by_parent: bool, lock: bool = False) -> sa.Select[Any]:
    """Hot statements are built once, with bind parameters (the compiled form is cached by SQLAlchemy)."""
    t = TABLES[kind]
    q = sa.select(t.c.data).where(t.c.id == sa.bindparam("id"), t.c.owner == sa.bindparam("owner"))
    q = q.where(t.c.parent == sa.bindparam("parent")) if by_parent else q
    return q.with_for_update() if lock else q


@functools.cache
def _update_stmt(kind: str, by_parent: bool, columns: tuple[str, ...], expect: bool = False) -> sa.Update:
    t = TABLES[kind]
    q = sa.update(t).where(t.c.id == sa.bindparam("_id"), t.c.owner == sa.bindparam("_owner"))
    q = q.where(t.c.parent == sa.bindparam("_parent")) if by_parent else q
    q = q.where(t.c.status == sa.bindparam("_expect")) if expect else q
    return q.values({c: sa.bindparam(c) for c in columns})


async def get(
    conn: AsyncConnection,
    kind: str,
    object_id: str,
    owner: str,
    parent: str | None = None,
    *,
    lock: bool = False,
) -> dict[str, Any] | None:
    """``lock``: the row stays locked until the transaction ends (``FOR UPDATE``; SQLite's write
    transactions already hold the whole database)."""
    params = {"id": object_id, "owner": owner, "parent": parent}
    raw = await conn.scalar(_get_stmt(kind, parent is not None, lock), params)
    return json.loads(raw) if raw is not None else None


async def insert(conn: AsyncConnection, kind: str, obj: dict[str, Any], owner: str, **cols: Any) -> None:
    values = {
        "id": obj["id"],
        "owner": owner,
        "created_at": obj.get("created_at", 0),
        "data": json.dumps(obj),
        "status": obj.get("status") if kind in STATUS_KINDS else None,
        "parent": None,
        "run_id": None,
        **cols,
    }
    await conn.execute(TABLES[kind].insert(), values)


async def update(
    conn: AsyncConnection,
    kind: str,
    obj: dict[str, Any],
    owner: str,
    parent: str | None = None,
    *,
    expect_status: str | None = None,
    **cols: Any,
) -> bool:
    """Write the object; with ``expect_status``, only if its stored status is still that one (a
    conditional transition). Whether a row was written."""
    values: dict[str, Any] = {"data": json.dumps(obj), **cols}
    if kind in STATUS_KINDS:
        values["status"] = obj["status"]
    stmt = _update_stmt(kind, parent is not None, tuple(sorted(values)), expect_status is not None)
    params = {**values, "_id": obj["id"], "_owner": owner, "_parent": parent, "_expect": expect_status}
    result = await conn.execute(stmt, params)
    return bool(result.rowcount)


async def delete(
    conn: AsyncConnection, kind: str, object_id: str, owner: str, parent: str | None = None
) -> bool:
    t = TABLES[kind]
    q = sa.delete(t).where(t.c.id == object_id, t.c.owner == owner)
    if parent is not None:
        q = q.where(t.c.parent == parent)
    result = await conn.execute(q)
    return bool(result.rowcount)


async def delete_children(conn: AsyncConnection, kind: str, parent: str) -> None:
    t = TABLES[kind]
    await conn.execute(sa.delete(t).where(t.c.parent == parent))


async def lock(conn: AsyncConnection, kind: str, object_id: str) -> None:
    """Hold the object's row until the transaction ends, so that writes about it take turns (also across
    replicas: ``FOR UPDATE`` on PostgreSQL; a SQLite write transaction holds the whole database)."""
    t = TABLES[kind]
    await conn.execute(sa.select(t.c.seq).where(t.c.id == object_id).with_for_update())


async def active_run(conn: AsyncConnection, thread_id: str) -> str | None:
    t = TABLES["run"]
    q = sa.select(t.c.id).where(t.c.parent == thread_id, t.c.status.in_(ACTIVE_RUN)).limit(1)
    return await conn.scalar(q)


async def count_executing_runs(conn: AsyncConnection, owner: str) -> int:
    """Runs of ``owner`` queued, in progress or cancelling (what a replica executes)."""
    t = TABLES["run"]
    q = sa.select(sa.func.count()).where(t.c.owner == owner, t.c.status.in_(RESUMABLE_RUN))
    return int(await conn.scalar(q) or 0)


async def children(
    conn: AsyncConnection, kind: str, owner: str, parent: str, run_id: str | None = None
) -> list[dict[str, Any]]:
    t = TABLES[kind]
    q = sa.select(t.c.data).where(t.c.owner == owner, t.c.parent == parent)
    if run_id is not None:
        q = q.where(t.c.run_id == run_id)
    return [json.loads(r[0]) for r in await conn.execute(q.order_by(t.c.seq))]
