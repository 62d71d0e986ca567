"""/v1/files: multipart upload (streamed, size-capped), list, retrieve, content, delete.

Bytes go to the store's blobs (agent/store/blobs.py: the database on PostgreSQL, the data directory
with SQLite) as they arrive, and the row is inserted only once they are all there: a server that dies
mid-upload never serves a half-written file.
"""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, web

from agent.api.common import deleted, list_query, new_id, now, owner, page_response, store
from agent.api.refs import expired
from agent.app_keys import FILE_DELETED, SETTINGS, STORE
from agent.errors import APIError, InvalidRequest, PayloadTooLarge, not_found
from agent.store.blobs import Blobs

routes = web.RouteTableDef()
UPLOAD_PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
CHUNK = 1 << 16
MAX_FILENAME_BYTES = 255
log = logging.getLogger(__name__)


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
    filename = clean_filename(filename)  # the sandbox chose it: hostile
    file_id = new_id("file-")
    await app[STORE].blobs.put(file_id, _pieces(data))
    return await app[STORE].insert("file", file_object(file_id, filename, len(data), purpose), who)


async def load_bytes(app: web.Application, who: str, file_id: str) -> tuple[str, bytes] | None:
    """A File's name and bytes (for the sandbox), or None."""
    obj = await app[STORE].get("file", file_id, who)
    data = await app[STORE].blobs.read(file_id) if obj is not None else None
    return (obj["filename"], data) if obj is not None and data is not None else None


async def adopt_file(
    app: web.Application, who: str, filename: str, tmp: Path, size: int, purpose: str = "assistants_output"
) -> dict[str, Any]:
    """Store a file its producer already wrote to the local file ``tmp`` as a File: streamed into the blobs
    in chunks read off the event loop, never whole in memory; ``tmp`` is removed."""
    file_id = new_id("file-")
    try:
        stored = await app[STORE].blobs.put(file_id, _file_pieces(tmp))
    finally:
        await asyncio.to_thread(tmp.unlink, True)
    return await app[STORE].insert("file", file_object(file_id, filename, stored, purpose), who)


async def _file_pieces(path: Path) -> AsyncIterator[bytes]:
    with await asyncio.to_thread(path.open, "rb") as fh:
        while chunk := await asyncio.to_thread(fh.read, 1 << 20):
            yield chunk


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


def clean_filename(raw: str | None) -> str:
    """The name a File keeps: no directories, no control or format characters (CR, LF, NUL, bidi
    overrides), at most 255 UTF-8 bytes with the extension kept; ``upload`` when nothing is left."""
    name = (raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip()
    if len(name.encode()) > MAX_FILENAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        ext = dot + ext if stem and len(ext) <= 16 else ""
        stem = name[: len(name) - len(ext)]
        while len((stem + ext).encode()) > MAX_FILENAME_BYTES:
            stem = stem[:-1]
        name = stem + ext
    return name or "upload"


def content_disposition(filename: str) -> str:
    """RFC 6266 with the RFC 5987 ``filename*`` for the exact (UTF-8) name and a plain ASCII fallback."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\' else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _expires_at(fields: dict[str, str]) -> int | None:
    """``expires_after[anchor]=created_at`` and ``expires_after[seconds]`` in 3600..2592000 (hosted)."""
    if "expires_after[seconds]" not in fields and "expires_after[anchor]" not in fields:
        return None
    if fields.get("expires_after[anchor]", "created_at") != "created_at":
        raise InvalidRequest(
            "Invalid 'expires_after[anchor]': expected 'created_at'.", param="expires_after.anchor"
        )
    raw = fields.get("expires_after[seconds]", "")
    if not raw.isascii() or not raw.isdigit() or not 3600 <= int(raw) <= 2_592_000:
        raise InvalidRequest(
            "Invalid 'expires_after[seconds]': expected an integer from 3600 to 2592000.",
            param="expires_after.seconds",
        )
    return now() + int(raw)


async def _read_form(
    request: web.Request, blobs: Blobs, file_id: str, limit: int
) -> tuple[str | None, int, dict[str, str]]:
    """The upload's file part (streamed into the blob ``file_id``: name and size) and its other fields."""
    fields: dict[str, str] = {}
    filename, size = None, 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if not isinstance(part, BodyPartReader):
                continue
            if part.name == "file":
                filename = clean_filename(part.filename)
                size = await blobs.put(file_id, _receive(part, limit))
            elif part.name and len(fields) < 32:
                fields[part.name] = (await part.read(decode=True))[:4096].decode("utf-8", "replace")
    except (APIError, ConnectionResetError):
        raise
    except Exception as exc:  # aiohttp's multipart parser raises assorted types on malformed input
        log.info("malformed multipart upload: %s: %s", type(exc).__name__, exc)
        raise InvalidRequest(
            "Could not parse the multipart/form-data body (check the boundary, the part headers and that "
            "the body is complete)."
        ) from None
    return filename, size, fields


@routes.post("/v1/files")
async def create(request: web.Request) -> web.Response:
    limit = request.app[SETTINGS].max_file_bytes
    if request.content_length and request.content_length > limit + CHUNK:
        raise PayloadTooLarge(f"File is too large: the limit is {limit} bytes.", param="file")
    if request.content_type != "multipart/form-data":
        raise InvalidRequest("Expected a multipart/form-data body with 'file' and 'purpose'.")
    file_id, blobs = new_id("file-"), store(request).blobs
    try:
        filename, size, fields = await _read_form(request, blobs, file_id, limit)
        purpose = fields.get("purpose")
        if filename is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        if purpose not in UPLOAD_PURPOSES:
            raise InvalidRequest(
                f"Invalid value for 'purpose': {purpose!r}. Supported values are: {', '.join(UPLOAD_PURPOSES)}.",
                param="purpose",
            )
        expires_at = _expires_at(fields)
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
    if obj is None or expired(obj, now()):
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
        "Content-Disposition": content_disposition(obj["filename"]),
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


async def remove_file(app: web.Application, who: str, file_id: str) -> bool:
    """Delete a File: its row, its bytes, and (through the hooks) its place in every vector store."""
    if not await app[STORE].delete("file", file_id, who):
        return False
    await app[STORE].blobs.delete(file_id)
    for hook in app[FILE_DELETED]:
        await hook(who, file_id)
    return True


@routes.delete("/v1/files/{file_id}")
async def delete(request: web.Request) -> web.Response:
    file_id = request.match_info["file_id"]
    if not await remove_file(request.app, owner(request), file_id):
        raise not_found("file", file_id)
    return deleted(file_id, "file")
