"""File bytes: in the database on PostgreSQL (so every replica serves every file), on disk with SQLite.

Both stream: an upload is written chunk by chunk as it arrives and a download is read chunk by chunk,
so a file is never whole in memory. A blob is complete once its File row exists (the row is inserted
after ``put`` returns); chunks of an upload that died are swept after a day.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import sqlalchemy as sa

from agent.store.db import TABLES, metadata

if TYPE_CHECKING:
    from agent.store.db import Store

CHUNK = 1 << 20  # bytes per database row
READ = 1 << 16
ORPHAN_SECONDS = 86_400

BLOB_CHUNK = sa.Table(  # created by migration 0002
    "blob_chunk",
    metadata,
    sa.Column("blob_id", sa.String(64), primary_key=True),
    sa.Column("n", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("created_at", sa.Integer, nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)


class Blobs(Protocol):
    async def put(self, blob_id: str, source: AsyncIterable[bytes]) -> int:
        """Store the bytes ``source`` yields; their count. Nothing is kept if ``source`` raises."""
        ...

    def chunks(self, blob_id: str) -> AsyncIterator[bytes]: ...

    async def exists(self, blob_id: str) -> bool: ...

    async def read(self, blob_id: str) -> bytes | None:
        """The whole blob (for the sandbox and for ingestion, which need it whole anyway)."""
        ...

    async def delete(self, blob_id: str) -> None: ...

    async def sweep(self) -> None:
        """Drop what uploads that died left behind."""
        ...

    def path(self, blob_id: str) -> Path | None:
        """A file on local disk holding the blob, when there is one (served with sendfile)."""
        ...


class DiskBlobs:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "tmp").mkdir(parents=True, exist_ok=True)

    async def put(self, blob_id: str, source: AsyncIterable[bytes]) -> int:
        tmp = self.root / "tmp" / uuid.uuid4().hex
        size = 0
        try:
            with tmp.open("wb") as out:
                async for chunk in source:
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.root / blob_id)  # complete, or not there at all
        finally:
            tmp.unlink(missing_ok=True)
        return size

    async def chunks(self, blob_id: str) -> AsyncIterator[bytes]:
        with (self.root / blob_id).open("rb") as f:
            while chunk := await asyncio.to_thread(f.read, READ):
                yield chunk

    async def exists(self, blob_id: str) -> bool:
        return (self.root / blob_id).exists()

    async def read(self, blob_id: str) -> bytes | None:
        path = self.root / blob_id
        return await asyncio.to_thread(path.read_bytes) if path.exists() else None

    async def delete(self, blob_id: str) -> None:
        (self.root / blob_id).unlink(missing_ok=True)

    async def sweep(self) -> None:
        for leftover in (self.root / "tmp").iterdir():
            leftover.unlink(missing_ok=True)

    def path(self, blob_id: str) -> Path | None:
        return self.root / blob_id


class DatabaseBlobs:
    def __init__(self, store: Store) -> None:
        self.store = store

    async def put(self, blob_id: str, source: AsyncIterable[bytes]) -> int:
        size, n, buf = 0, 0, bytearray()
        try:
            async for chunk in source:
                size += len(chunk)
                buf += chunk
                while len(buf) >= CHUNK:
                    await self._insert(blob_id, n, bytes(buf[:CHUNK]))
                    del buf[:CHUNK]
                    n += 1
            if buf or n == 0:
                await self._insert(blob_id, n, bytes(buf))
        except BaseException:
            await asyncio.shield(self.delete(blob_id))
            raise
        return size

    async def _insert(self, blob_id: str, n: int, data: bytes) -> None:
        async with self.store.write() as conn:
            await conn.execute(
                BLOB_CHUNK.insert().values(blob_id=blob_id, n=n, created_at=int(time.time()), data=data)
            )

    async def chunks(self, blob_id: str) -> AsyncIterator[bytes]:
        q = sa.select(BLOB_CHUNK.c.data).where(
            BLOB_CHUNK.c.blob_id == sa.bindparam("id"), BLOB_CHUNK.c.n == sa.bindparam("n")
        )
        n = 0
        while True:
            async with self.store.engine.connect() as conn:  # one row per round trip: bounded memory
                data = await conn.scalar(q, {"id": blob_id, "n": n})
            if data is None:
                return
            yield bytes(data)
            n += 1

    async def exists(self, blob_id: str) -> bool:
        q = sa.select(BLOB_CHUNK.c.n).where(BLOB_CHUNK.c.blob_id == blob_id, BLOB_CHUNK.c.n == 0)
        async with self.store.engine.connect() as conn:
            return await conn.scalar(q) is not None

    async def read(self, blob_id: str) -> bytes | None:
        if not await self.exists(blob_id):
            return None
        return b"".join([chunk async for chunk in self.chunks(blob_id)])

    async def delete(self, blob_id: str) -> None:
        async with self.store.write() as conn:
            await conn.execute(sa.delete(BLOB_CHUNK).where(BLOB_CHUNK.c.blob_id == blob_id))

    async def sweep(self) -> None:
        files = TABLES["file"]
        cutoff = int(time.time()) - ORPHAN_SECONDS
        orphan = sa.and_(
            BLOB_CHUNK.c.created_at < cutoff,
            ~sa.exists().where(files.c.id == BLOB_CHUNK.c.blob_id),
        )
        async with self.store.write() as conn:
            await conn.execute(sa.delete(BLOB_CHUNK).where(orphan))

    def path(self, blob_id: str) -> Path | None:
        return None
