"""/v1/files: multipart upload (streamed, size-capped), list, retrieve, content, delete.

Bytes go to the store's blobs (agent/store/blobs.py: the database on PostgreSQL, the data directory
with SQLite) as they arrive, and the row is inserted only once they are all there: a server that dies
mid-upload never serves a half-written file.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import BodyPartReader, web

from agent.api.common import deleted, list_query, new_id, now, owner, page_response, store
from agent.app_keys import FILE_DELETED, SETTINGS, STORE
from agent.errors import InvalidRequest, PayloadTooLarge, not_found

routes = web.RouteTableDef()
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
CHUNK = 1 << 16


async def sweep_partial_uploads(app: web.Application) -> None:
    await app[STORE].blobs.sweep()


def file_object(
    file_id: str, filename: str, size: int, purpose: str, expires_at: int | None = None
) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": now(),
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
        "expires_at": expires_at,
        "status_details": None,
    }


async def save_bytes(
    app: web.Application, who: str, filename: str, data: bytes, purpose: str = "assistants_output"
) -> dict[str, Any]:
    """Store bytes made on the server (code_interpreter outputs) as a File."""
    file_id = new_id("file-")
    await app[STORE].blobs.put(file_id, _pieces(data))
    return await app[STORE].insert("file", file_object(file_id, filename, len(data), purpose), who)


async def load_bytes(app: web.Application, who: str, file_id: str) -> tuple[str, bytes] | None:
    """A File's name and bytes (for the sandbox), or None."""
    obj = await app[STORE].get("file", file_id, who)
    data = await app[STORE].blobs.read(file_id) if obj is not None else None
    return (obj["filename"], data) if obj is not None and data is not None else None


async def _pieces(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), CHUNK):
        yield data[i : i + CHUNK]


async def _receive(part: BodyPartReader, limit: int) -> AsyncIterator[bytes]:
    size = 0
    while chunk := await part.read_chunk(CHUNK):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"File is too large: the limit is {limit} bytes.", param="file")
        yield chunk


@routes.post("/v1/files")
async def create(request: web.Request) -> web.Response:
    limit = request.app[SETTINGS].max_file_bytes
    if request.content_length and request.content_length > limit + CHUNK:
        raise PayloadTooLarge(f"File is too large: the limit is {limit} bytes.", param="file")
    if not request.content_type.startswith("multipart/"):
        raise InvalidRequest("Expected a multipart/form-data body with 'file' and 'purpose'.")
    fields: dict[str, str] = {}
    file_id, filename, size = new_id("file-"), None, 0
    blobs = store(request).blobs
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = part.filename or "upload"
                size = await blobs.put(file_id, _receive(part, limit))
            elif part.name:
                fields[part.name] = (await part.read(decode=True)).decode("utf-8", "replace")
        purpose = fields.get("purpose")
        if filename is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidRequest(
                f"Invalid value for 'purpose': {purpose!r}. Supported values are: {', '.join(UPLOAD_PURPOSES)}.",
                param="purpose",
            )
        expires_at = None
        if "expires_after[seconds]" in fields:
            try:
                seconds = int(fields["expires_after[seconds]"])
            except ValueError:
                raise InvalidRequest("Invalid 'expires_after[seconds]'.", param="expires_after") from None
            expires_at = now() + seconds
    except BaseException:
        await asyncio.shield(blobs.delete(file_id))
        raise
    obj = file_object(file_id, filename, size, purpose, expires_at)
    return web.json_response(await store(request).insert("file", obj, owner(request), status=purpose))


@routes.get("/v1/files")
async def list_(request: web.Request) -> web.Response:
    q = list_query(request, max_limit=10_000, default_limit=10_000)
    where = {"status": request.query["purpose"]} if request.query.get("purpose") else None
    page = await store(request).list(
        "file", owner(request), limit=q.limit, order=q.order, after=q.after, where=where
    )
    return page_response(page)


async def get_file(request: web.Request, file_id: str) -> dict[str, Any]:
    obj = await store(request).get("file", file_id, owner(request))
    if obj is None:
        raise not_found("file", file_id)
    return obj


@routes.get("/v1/files/{file_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(await get_file(request, request.match_info["file_id"]))


@routes.get("/v1/files/{file_id}/content")
async def content(request: web.Request) -> web.StreamResponse:
    obj = await get_file(request, request.match_info["file_id"])
    blobs = store(request).blobs
    if not await blobs.exists(obj["id"]):
        raise not_found("file", obj["id"])
    headers = {
        "Content-Disposition": f'attachment; filename="{obj["filename"]}"',
        "Content-Type": "application/octet-stream",
    }
    path = blobs.path(obj["id"])
    if path is not None:
        return web.FileResponse(path, headers=headers)
    response = web.StreamResponse(headers=headers)
    response.content_length = obj["bytes"]
    await response.prepare(request)
    async for chunk in blobs.chunks(obj["id"]):
        await response.write(chunk)
    await response.write_eof()
    return response


@routes.delete("/v1/files/{file_id}")
async def delete(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    if not await store(request).delete("file", file_id, owner(request)):
        raise not_found("file", file_id)
    await store(request).blobs.delete(file_id)
    for hook in request.app[FILE_DELETED]:
        await hook(owner(request), file_id)
    return deleted(file_id, "file")
