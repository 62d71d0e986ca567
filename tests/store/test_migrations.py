"""A database made by the previous release (no Alembic yet) is upgraded at start, its data intact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from agent.store import Store, db, schema
from tests.postgres import fresh_database

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
)


async def previous_release(url: str) -> None:
    """The schema exactly as the release before migrations created it (its metadata.create_all)."""
    meta = sa.MetaData()
    for kind in KINDS:
        sa.Table(
            kind,
            meta,
            sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", sa.String(64), nullable=False),
            sa.Column("owner", sa.String(64), nullable=False),
            sa.Column("parent", sa.String(64)),
            sa.Column("run_id", sa.String(64)),
            sa.Column("status", sa.String(32)),
            sa.Column("lease", sa.String(64)),
            sa.Column("lease_until", sa.Integer),
            sa.Column("created_at", sa.Integer, nullable=False),
            sa.Column("data", sa.Text, nullable=False),
            sa.UniqueConstraint("parent", "id", name=f"uq_{kind}_parent_id"),
            sa.Index(f"ix_{kind}_id", "id"),
            sa.Index(f"ix_{kind}_owner_parent_seq", "owner", "parent", "seq"),
        )
    run = meta.tables["run"]
    active = run.c.status.in_(("queued", "in_progress", "requires_action", "cancelling"))
    sa.Index("ix_run_status", run.c.status)
    sa.Index(
        "uq_run_one_active_per_thread",
        run.c.parent,
        unique=True,
        sqlite_where=active,
        postgresql_where=active,
    )
    engine = create_async_engine(url)
    rows: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
        ("assistant", {"id": "asst_1", "name": "kept", "created_at": 1}, {}),
        ("thread", {"id": "thread_1", "created_at": 2}, {}),
        ("message", {"id": "msg_1", "role": "user", "created_at": 3}, {"parent": "thread_1"}),
        (
            "run",
            {"id": "run_1", "status": "requires_action", "created_at": 4},
            {"parent": "thread_1", "status": "requires_action"},
        ),
        (
            "file",
            {"id": "file-1", "filename": "a.txt", "bytes": 3, "created_at": 5},
            {"status": "assistants"},
        ),
    ]
    async with engine.begin() as conn:
        await conn.run_sync(meta.create_all)
        for kind, obj, cols in rows:
            values = {
                "id": obj["id"],
                "owner": "me",
                "created_at": obj["created_at"],
                "data": json.dumps(obj),
                **cols,
            }
            await conn.execute(meta.tables[kind].insert().values(**values))
    await engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'agent.db'}"
    return fresh_database(request.getfixturevalue("postgres"))


async def test_previous_release_upgraded_at_start(old_database: str) -> None:
    await previous_release(old_database)
    store = Store(old_database)
    await store.open()
    try:
        assert (await store.get("assistant", "asst_1", "me") or {})["name"] == "kept"
        assert [m["id"] for m in (await store.list("message", "me", parent="thread_1")).data] == ["msg_1"]
        assert await store.active_run("thread_1") == "run_1"
        assert (await store.get("file", "file-1", "me") or {})["filename"] == "a.txt"
        async with store.engine.connect() as conn:
            version = await conn.scalar(sa.text("SELECT version_num FROM alembic_version"))
        assert version == schema.head()
        with pytest.raises(IntegrityError):  # the thread lock survived the upgrade
            async with store.write() as conn:
                await db.insert(conn, "run", {"id": "run_2", "status": "queued"}, "me", parent="thread_1")
        await store.close()
        store = Store(old_database)  # a second start finds nothing to do
        await store.open()
        assert await store.active_run("thread_1") == "run_1"
    finally:
        await store.close()
