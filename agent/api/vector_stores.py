"""/v1/vector_stores: stores, their files and file batches, and search (spec §1.7, §2.8–§2.10).

``file_counts`` are counted from the file rows on every read, so they are right from the first response
(the SDK's batch poller reads only the counts). Ingestion runs in the background (``ingest.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy.ext.asyncio import AsyncConnection

from agent.api.common import (
    Metadata,
    RankingOptions,
    Request,
    ToolResources,
    deleted,
    get_or_404,
    list_query,
    new_id,
    now,
    owner,
    page_response,
    parse,
    store,
)
from agent.api.refs import FileId
from agent.app_keys import INGESTOR, STORE
from agent.errors import InvalidRequest
from agent.retrieval import ChunkingStrategy, InvalidChunkingStrategy, InvalidFilter, validate_filter
from agent.store import db

routes = web.RouteTableDef()
STATUSES = ("in_progress", "completed", "failed", "cancelled")
Attributes = dict[str, str | float | bool] | None


class ExpiresAfter(Request):
    anchor: Literal["last_active_at"]
    days: int = Field(ge=1, le=365)


class StoreCreate(Request):
    file_ids: list[FileId] | None = Field(default=None, max_length=500)
    name: str | None = None
    description: str | None = None
    expires_after: ExpiresAfter | None = None
    chunking_strategy: dict[str, Any] | None = None
    metadata: Metadata = None


class StoreUpdate(Request):
    name: str | None = None
    expires_after: ExpiresAfter | None = None
    metadata: Metadata = None


class FileCreate(Request):
    file_id: FileId
    attributes: Attributes = Field(default=None, max_length=16)
    chunking_strategy: dict[str, Any] | None = None


class FileUpdate(Request):
    attributes: Attributes = Field(max_length=16)


class BatchCreate(Request):
    file_ids: list[FileId] | None = Field(default=None, min_length=1, max_length=2000)
    files: list[FileCreate] | None = Field(default=None, min_length=1, max_length=2000)
    attributes: Attributes = Field(default=None, max_length=16)
    chunking_strategy: dict[str, Any] | None = None


class SearchRequest(Request):
    query: str | list[str]
    filters: dict[str, Any] | None = None
    max_num_results: int = Field(default=10, ge=1, le=50)
    ranking_options: RankingOptions | None = None
    rewrite_query: bool = False


def _strategy(raw: dict[str, Any] | None) -> dict[str, Any]:
    try:
        return ChunkingStrategy.from_request(raw).to_response()
    except InvalidChunkingStrategy as exc:
        raise InvalidRequest(str(exc), param="chunking_strategy") from None


def _counts(raw: dict[str, int]) -> dict[str, int]:
    counts = {s: raw.get(s, 0) for s in STATUSES}
    counts["total"] = sum(counts.values())
    return counts


async def render_store(request: web.Request, vs: dict[str, Any]) -> dict[str, Any]:
    counts = _counts(await store(request).count_by("vector_store_file", owner(request), vs["id"]))
    files = await store(request).find("vector_store_file", owner=owner(request), parent=vs["id"])
    vs["file_counts"] = counts
    vs["usage_bytes"] = sum(f["usage_bytes"] for _, f in files)
    if vs["status"] != "expired":
        vs["status"] = "in_progress" if counts["in_progress"] else "completed"
    return vs


async def render_batch(request: web.Request, batch: dict[str, Any]) -> dict[str, Any]:
    counts = _counts(
        await store(request).count_by(
            "vector_store_file", owner(request), batch["vector_store_id"], run_id=batch["id"]
        )
    )
    batch["file_counts"] = counts
    if batch["status"] == "in_progress" and not counts["in_progress"]:
        batch["status"] = "completed"
    return batch


@dataclass
class StoreWrites:
    """Vector stores and files a request creates, planned (and validated) before its one transaction,
    written inside it, and queued for ingestion only once it has committed."""

    stores: list[dict[str, Any]] = field(default_factory=list)
    files: list[tuple[dict[str, Any], str | None]] = field(default_factory=list)  # (vector_store.file, batch)

    def add_file(
        self,
        vs_id: str,
        file_id: str,
        attributes: Attributes = None,
        strategy: dict[str, Any] | None = None,
        batch_id: str | None = None,
    ) -> dict[str, Any]:
        vsf = {
            "id": file_id,
            "object": "vector_store.file",
            "usage_bytes": 0,
            "created_at": now(),
            "vector_store_id": vs_id,
            "status": "in_progress",
            "last_error": None,
            "chunking_strategy": _strategy(strategy),
            "attributes": attributes or {},
        }
        self.files.append((vsf, batch_id))
        return vsf

    def add_store(self, body: StoreCreate) -> dict[str, Any]:
        created = now()
        vs: dict[str, Any] = {
            "id": new_id("vs_"),
            "object": "vector_store",
            "created_at": created,
            "name": body.name or "",
            "usage_bytes": 0,
            "file_counts": _counts({}),
            "status": "completed",
            "expires_after": body.expires_after.model_dump() if body.expires_after else None,
            "expires_at": None,
            "last_active_at": created,
            "metadata": body.metadata or {},
        }
        _set_expiry(vs)
        if body.chunking_strategy is not None:
            _strategy(body.chunking_strategy)  # refused even when no file uses it yet
        self.stores.append(vs)
        for file_id in body.file_ids or []:
            self.add_file(vs["id"], file_id, None, body.chunking_strategy)
        return vs

    async def write(self, conn: AsyncConnection, who: str) -> None:
        for vs in self.stores:
            await db.insert(conn, "vector_store", vs, who)
        for vsf, batch_id in self.files:
            await db.delete(conn, "vector_store_file", vsf["id"], who, vsf["vector_store_id"])
            await db.insert(
                conn, "vector_store_file", vsf, who, parent=vsf["vector_store_id"], run_id=batch_id
            )

    def ingest(self, request: web.Request, who: str) -> None:
        """After the commit: ingestion reads the rows written above."""
        for vsf, _ in self.files:
            request.app[INGESTOR].enqueue(who, vsf["vector_store_id"], vsf["id"])


def _set_expiry(vs: dict[str, Any]) -> None:
    """``expires_at`` = last activity + ``expires_after.days`` (hosted: the store is gone after it)."""
    after = vs.get("expires_after")
    vs["expires_at"] = vs["last_active_at"] + after["days"] * 86400 if after else None


def helper_stores(res: ToolResources | None, writes: StoreWrites) -> list[str] | None:
    """The ``tool_resources.file_search.vector_stores`` helper: plan the stores, return their ids."""
    if res is None or res.file_search is None or not res.file_search.vector_stores:
        return None
    ids = []
    for helper in res.file_search.vector_stores:
        vs = writes.add_store(
            StoreCreate(
                file_ids=helper.file_ids, metadata=helper.metadata, chunking_strategy=helper.chunking_strategy
            )
        )
        ids.append(vs["id"])
    return ids


def thread_files(thread: dict[str, Any], attachments: list[dict[str, Any]], writes: StoreWrites) -> bool:
    """``file_search`` attachments go into the thread's vector store, planned anew when it has none.
    Returns whether ``thread`` changed (the caller writes it in the same transaction)."""
    file_ids = [a["file_id"] for a in attachments if any(t["type"] == "file_search" for t in a["tools"])]
    if not file_ids:
        return False
    fs = thread["tool_resources"].setdefault("file_search", {"vector_store_ids": []})
    changed = not fs.get("vector_store_ids")
    if changed:
        fs["vector_store_ids"] = [writes.add_store(StoreCreate(name=f"thread {thread['id']}"))["id"]]
    for file_id in file_ids:
        writes.add_file(fs["vector_store_ids"][0], file_id)
    return changed


# --- stores ---------------------------------------------------------------------------------------
@routes.post("/v1/vector_stores")
async def create(request: web.Request) -> web.Response:
    body = await parse(request, StoreCreate)
    writes, who = StoreWrites(), owner(request)
    vs = writes.add_store(body)
    async with store(request).write() as conn:
        await writes.write(conn, who)
    writes.ingest(request, who)
    return web.json_response(await render_store(request, vs))


@routes.get("/v1/vector_stores")
async def list_(request: web.Request) -> web.Response:
    page = await store(request).list("vector_store", owner(request), **list_query(request).model_dump())
    page.data = [await render_store(request, vs) for vs in page.data]
    return page_response(page)


async def _store(request: web.Request) -> dict[str, Any]:
    return await get_or_404(request, "vector_store", request.match_info["vs_id"], label="vector store")


@routes.get("/v1/vector_stores/{vs_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(await render_store(request, await _store(request)))


@routes.post("/v1/vector_stores/{vs_id}")
async def modify(request: web.Request) -> web.Response:
    vs = await _store(request)
    body = await parse(request, StoreUpdate)
    if "name" in body.model_fields_set:
        vs["name"] = body.name or ""
    if "metadata" in body.model_fields_set:
        vs["metadata"] = body.metadata or {}
    if "expires_after" in body.model_fields_set:
        vs["expires_after"] = body.expires_after.model_dump() if body.expires_after else None
    vs["last_active_at"] = now()
    _set_expiry(vs)
    await store(request).update("vector_store", vs, owner(request))
    return web.json_response(await render_store(request, vs))


async def remove_store(app: web.Application, who: str, vs_id: str) -> None:
    async with app[STORE].write() as conn:
        await db.delete(conn, "vector_store", vs_id, who)
        await db.delete_children(conn, "vector_store_file", vs_id)
        await db.delete_children(conn, "file_batch", vs_id)
    await app[INGESTOR].index.remove_store(vs_id)


@routes.delete("/v1/vector_stores/{vs_id}")
async def delete(request: web.Request) -> web.Response:
    vs = await _store(request)
    await remove_store(request.app, owner(request), vs["id"])
    return deleted(vs["id"], "vector_store.deleted")


@routes.post("/v1/vector_stores/{vs_id}/search")
async def search(request: web.Request) -> web.Response:
    vs = await _store(request)
    body = await parse(request, SearchRequest)
    threshold = body.ranking_options.score_threshold if body.ranking_options else 0.0
    try:
        validate_filter(body.filters) if body.filters is not None else None
    except InvalidFilter as exc:
        raise InvalidRequest(f"Invalid 'filters': {exc}.", param="filters") from None
    hits = await request.app[INGESTOR].index.search(
        [vs["id"]], body.query, body.filters, body.max_num_results, threshold, owner=owner(request)
    )
    vs["last_active_at"] = now()  # use keeps a store with expires_after alive
    _set_expiry(vs)
    await store(request).update("vector_store", vs, owner(request))
    queries = [body.query] if isinstance(body.query, str) else body.query
    return web.json_response(
        {
            "object": "vector_store.search_results.page",
            "search_query": queries,
            "has_more": False,
            "next_page": None,
            "data": [
                {
                    "file_id": h.file_id,
                    "filename": h.filename,
                    "score": h.score,
                    "attributes": h.attributes,
                    "content": [{"type": "text", "text": h.text}],
                }
                for h in hits
            ],
        }
    )


# --- files ----------------------------------------------------------------------------------------
def _filter(request: web.Request) -> dict[str, Any] | None:
    value = request.query.get("filter")
    if value is None:
        return None
    if value not in STATUSES:
        raise InvalidRequest(
            f"Invalid 'filter': {value!r}. Supported values are: {', '.join(STATUSES)}.", param="filter"
        )
    return {"status": value}


@routes.post("/v1/vector_stores/{vs_id}/files")
async def create_file(request: web.Request) -> web.Response:
    vs = await _store(request)
    body = await parse(request, FileCreate)
    writes, who = StoreWrites(), owner(request)
    vsf = writes.add_file(vs["id"], body.file_id, body.attributes, body.chunking_strategy)
    async with store(request).write() as conn:
        await writes.write(conn, who)
    writes.ingest(request, who)
    return web.json_response(vsf)


@routes.get("/v1/vector_stores/{vs_id}/files")
async def list_files(request: web.Request) -> web.Response:
    vs = await _store(request)
    page = await store(request).list(
        "vector_store_file",
        owner(request),
        parent=vs["id"],
        where=_filter(request),
        **list_query(request).model_dump(),
    )
    return page_response(page)


async def _vsf(request: web.Request) -> dict[str, Any]:
    vs = await _store(request)
    return await get_or_404(
        request, "vector_store_file", request.match_info["file_id"], vs["id"], label="vector store file"
    )


@routes.get("/v1/vector_stores/{vs_id}/files/{file_id}")
async def retrieve_file(request: web.Request) -> web.Response:
    return web.json_response(await _vsf(request), headers={"openai-poll-after-ms": "100"})


@routes.post("/v1/vector_stores/{vs_id}/files/{file_id}")
async def update_file(request: web.Request) -> web.Response:
    vsf = await _vsf(request)
    body = await parse(request, FileUpdate)
    vsf["attributes"] = body.attributes or {}
    await store(request).update("vector_store_file", vsf, owner(request), vsf["vector_store_id"])
    await request.app[INGESTOR].index.update_attributes(vsf["vector_store_id"], vsf["id"], vsf["attributes"])
    return web.json_response(vsf)


@routes.delete("/v1/vector_stores/{vs_id}/files/{file_id}")
async def delete_file(request: web.Request) -> web.Response:
    vsf = await _vsf(request)
    await store(request).delete("vector_store_file", vsf["id"], owner(request), vsf["vector_store_id"])
    await request.app[INGESTOR].index.remove_file(vsf["vector_store_id"], vsf["id"])
    return deleted(vsf["id"], "vector_store.file.deleted")


@routes.get("/v1/vector_stores/{vs_id}/files/{file_id}/content")
async def file_content(request: web.Request) -> web.Response:
    vsf = await _vsf(request)
    chunks = await request.app[INGESTOR].index.file_chunks(vsf["vector_store_id"], vsf["id"])
    return web.json_response(
        {
            "object": "vector_store.file_content.page",
            "has_more": False,
            "next_page": None,
            "data": [{"type": "text", "text": c} for c in chunks],
        }
    )


# --- batches --------------------------------------------------------------------------------------
@routes.post("/v1/vector_stores/{vs_id}/file_batches")
async def create_batch(request: web.Request) -> web.Response:
    vs = await _store(request)
    body = await parse(request, BatchCreate)
    if (body.file_ids is None) == (body.files is None):
        raise InvalidRequest("Provide exactly one of 'file_ids' or 'files'.", param="file_ids")
    entries = body.files or [
        FileCreate(file_id=f, attributes=body.attributes, chunking_strategy=body.chunking_strategy)
        for f in body.file_ids or []
    ]
    who = owner(request)
    batch = {
        "id": new_id("vsfb_"),
        "object": "vector_store.file_batch",
        "created_at": now(),
        "vector_store_id": vs["id"],
        "status": "in_progress",
        "file_counts": _counts({}),
    }
    writes = StoreWrites()  # every id was checked by parse(); all or nothing from here
    for entry in entries:
        writes.add_file(vs["id"], entry.file_id, entry.attributes, entry.chunking_strategy, batch["id"])
    async with store(request).write() as conn:
        await db.insert(conn, "file_batch", batch, who, parent=vs["id"])
        await writes.write(conn, who)
    writes.ingest(request, who)
    return web.json_response(await render_batch(request, batch))


async def _batch(request: web.Request) -> dict[str, Any]:
    vs = await _store(request)
    return await get_or_404(
        request, "file_batch", request.match_info["batch_id"], vs["id"], label="vector store file batch"
    )


@routes.get("/v1/vector_stores/{vs_id}/file_batches/{batch_id}")
async def retrieve_batch(request: web.Request) -> web.Response:
    return web.json_response(
        await render_batch(request, await _batch(request)), headers={"openai-poll-after-ms": "100"}
    )


@routes.post("/v1/vector_stores/{vs_id}/file_batches/{batch_id}/cancel")
async def cancel_batch(request: web.Request) -> web.Response:
    batch = await _batch(request)
    who = owner(request)
    if batch["status"] == "in_progress":
        for _, vsf in await store(request).find(
            "vector_store_file",
            owner=who,
            parent=batch["vector_store_id"],
            run_id=batch["id"],
            status="in_progress",
        ):
            vsf["status"] = "cancelled"
            await store(request).update("vector_store_file", vsf, who, vsf["vector_store_id"])
        batch["status"] = "cancelled"
        await store(request).update("file_batch", batch, who, batch["vector_store_id"])
    return web.json_response(await render_batch(request, batch))


@routes.get("/v1/vector_stores/{vs_id}/file_batches/{batch_id}/files")
async def list_batch_files(request: web.Request) -> web.Response:
    batch = await _batch(request)
    where = {"run_id": batch["id"], **(_filter(request) or {})}
    page = await store(request).list(
        "vector_store_file",
        owner(request),
        parent=batch["vector_store_id"],
        where=where,
        **list_query(request).model_dump(),
    )
    return page_response(page)
