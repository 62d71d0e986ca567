"""Vector-store ingestion in the background: extract → chunk → index, resumed after a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from agent.retrieval import ExtractionError, SearchIndex, chunk_text, extract_text
from agent.store import Store

log = logging.getLogger(__name__)


class Ingestor:
    def __init__(self, store: Store, index: SearchIndex, files_dir: Path, parallel: int = 2) -> None:
        self.store, self.index, self.files_dir = store, index, files_dir
        self._slots = asyncio.Semaphore(parallel)
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for store_id in await self.index.stores_without_owner():
            owner = await self.store.owner_of("vector_store", store_id)
            if owner is not None:
                await self.index.set_owner(store_id, owner)
        for who, vsf in await self.store.find("vector_store_file", status="in_progress"):
            self.enqueue(who, vsf["vector_store_id"], vsf["id"])

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def enqueue(self, who: str, vs_id: str, file_id: str) -> None:
        task = asyncio.create_task(self._run(who, vs_id, file_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
            await self.store.update("vector_store_file", latest, who, vs_id)

    async def _ingest(self, who: str, vs_id: str, file_id: str, vsf: dict[str, Any]) -> dict[str, Any]:
        file = await self.store.get("file", file_id, who)
        path = self.files_dir / file_id
        if file is None or not path.exists():
            return _failed("invalid_file", f"File {file_id} no longer exists.")
        try:
            data = await asyncio.to_thread(path.read_bytes)
            text = await asyncio.to_thread(extract_text, data, file["filename"])
            chunks = await asyncio.to_thread(chunk_text, text, vsf.get("chunking_strategy"))
            size = await self.index.add_file(
                vs_id, file_id, file["filename"], chunks, vsf.get("attributes"), owner=who
            )
        except ExtractionError as err:
            return _failed(err.code, str(err))
        except Exception as err:
            log.exception("ingesting %s into %s failed", file_id, vs_id)
            return _failed("server_error", f"Ingestion failed: {type(err).__name__}")
        return {"status": "completed", "usage_bytes": size, "last_error": None}


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": "failed", "last_error": {"code": code, "message": message}}
