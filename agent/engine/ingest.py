"""Vector-store ingestion in the background: extract → chunk → index, resumed after a restart.

Each vector store file being ingested is a job row (status ``in_progress``) that a replica leases
before working on it (agent/store/leases.py): any replica may ingest it, two never do it together,
and the jobs of a replica that died are taken by another once their lease lapses.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Coroutine
from typing import Any

from agent.retrieval import ExtractionError, Index, chunk_text, extract_text
from agent.store import Store, db
from agent.store.leases import claim_jobs, job_fenced, renew_jobs

log = logging.getLogger(__name__)


KIND = "vector_store_file"
LEASE_SECONDS = 60


class Ingestor:
    def __init__(self, store: Store, index: Index, parallel: int = 2) -> None:
        self.store, self.index = store, index
        self.parallel = parallel
        self.holder = f"ingest/{uuid.uuid4().hex}"
        self._slots = asyncio.Semaphore(parallel)
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._claim()
        self._loop = asyncio.create_task(self._keep())

    async def close(self) -> None:
        for task in [*self._tasks, *([self._loop] if self._loop else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._loop] if self._loop else []), return_exceptions=True)

    def enqueue(self, who: str, vs_id: str, file_id: str) -> None:
        """A file just added to a vector store: ingest it here, unless another replica already took it."""
        self._spawn(self._claim_one(vs_id, file_id))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _claim_one(self, vs_id: str, file_id: str) -> None:
        for who, vsf in await claim_jobs(
            self.store, KIND, self.holder, LEASE_SECONDS, limit=1, job=(file_id, vs_id)
        ):
            await self._run(who, vsf["vector_store_id"], vsf["id"])

    async def _claim(self) -> None:
        """Take the jobs no live replica works on (a dead replica's, once their lease lapsed)."""
        room = self.parallel * 4 - len(self._tasks)
        if room > 0:
            for who, vsf in await claim_jobs(self.store, KIND, self.holder, LEASE_SECONDS, limit=room):
                self._spawn(self._run(who, vsf["vector_store_id"], vsf["id"]))

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(LEASE_SECONDS / 4)
            try:
                await renew_jobs(self.store, KIND, self.holder, LEASE_SECONDS)
                await self._claim()
            except Exception:
                log.exception("ingestion jobs: renewing or claiming failed")

    async def file_deleted(self, who: str, file_id: str) -> None:
        """A deleted File leaves every vector store."""
        await self.store.delete_where("vector_store_file", owner=who, id=file_id)
        await self.index.remove_file_everywhere(file_id)

    async def _run(self, who: str, vs_id: str, file_id: str) -> None:
        async with self._slots:
            vsf = await self.store.get("vector_store_file", file_id, who, vs_id)
            if vsf is None or vsf["status"] != "in_progress":
                return
            result = await self._ingest(who, vs_id, file_id, vsf)
            latest = await self.store.get("vector_store_file", file_id, who, vs_id)
            if latest is None or latest["status"] != "in_progress":  # detached or cancelled meanwhile
                await self.index.remove_file(vs_id, file_id)
                return
            latest.update(result)
            async with job_fenced(self.store, KIND, (file_id, vs_id), self.holder) as (conn, status):
                if status == "in_progress":  # still this replica's job, neither detached nor cancelled
                    await db.update(conn, KIND, latest, who, vs_id, lease=None, lease_until=None)

    async def _ingest(self, who: str, vs_id: str, file_id: str, vsf: dict[str, Any]) -> dict[str, Any]:
        file = await self.store.get("file", file_id, who)
        data = await self.store.blobs.read(file_id) if file is not None else None
        if file is None or data is None:
            return _failed("invalid_file", f"File {file_id} no longer exists.")
        try:
            text = await asyncio.to_thread(extract_text, data, file["filename"])
            chunks = await asyncio.to_thread(chunk_text, text, vsf.get("chunking_strategy"))
            size = await self.index.add_file(vs_id, file_id, file["filename"], chunks, vsf.get("attributes"))
        except ExtractionError as err:
            return _failed(err.code, str(err))
        except Exception as err:
            log.exception("ingesting %s into %s failed", file_id, vs_id)
            return _failed("server_error", f"Ingestion failed: {type(err).__name__}")
        return {"status": "completed", "usage_bytes": size, "last_error": None}


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "last_error": {"code": code, "message": message}}
