"""/v1/containers: create, list (cursor), retrieve, delete; /files: create (multipart upload or a
Files-API ``file_id``), list, retrieve, delete, content. Everything belongs to the key that made it."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import BodyPartReader, web
from pydantic import Field

from agent.api.common import deleted, list_query, owner, page_of, page_response, parse, store
from agent.api.files import _receive
from agent.api.response_input import Lenient
from agent.app_keys import CONTAINERS, SETTINGS
from agent.errors import InvalidRequest, NotFound
from agent.tools.containers import Containers, render

routes = web.RouteTableDef()


class ExpiresAfter(Lenient):
    anchor: Literal["last_active_at"]
    minutes: int = Field(ge=1, le=24 * 60)


class ContainerCreate(Lenient):
    name: str = Field(min_length=1, max_length=256)
    expires_after: ExpiresAfter | None = None
    file_ids: list[str] | None = Field(default=None, max_length=50)
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None
    network_policy: dict[str, Any] | None = None


class FileRef(Lenient):
    file_id: str


def _svc(request: web.Request) -> Containers:
    return request.app[CONTAINERS]


def _missing(container_id: str) -> NotFound:
    return NotFound(f"Container with id '{container_id}' not found.", param="container_id")


async def _container(request: web.Request) -> dict[str, Any]:
    cid = request.match_info["container_id"]
    obj = await _svc(request).get(owner(request), cid)
    if obj is None:
        raise _missing(cid)
    return obj


@routes.post("/v1/containers")
async def create(request: web.Request) -> web.Response:
    body = await parse(request, ContainerCreate)
    policy = body.network_policy or {"type": "disabled"}
    if policy.get("type") != "disabled":
        raise InvalidRequest(
            "Only network_policy {'type': 'disabled'} is supported: sandboxes have no network.",
            param="network_policy",
        )
    who, svc = owner(request), _svc(request)
    loaded = []
    for file_id in body.file_ids or []:  # every id checked before anything is written
        got = await svc.load(who, file_id)
        if got is None:
            raise NotFound(f"No such File object: {file_id}", param="file_ids")
        loaded.append(got)
    minutes = body.expires_after.minutes if body.expires_after else None
    obj = svc.new(body.name, minutes, body.memory_limit)
    await store(request).insert("container", obj, who)
    for name, data in loaded:
        await svc.add_bytes(who, obj["id"], name, data, "user")
    return web.json_response(render(obj))


@routes.get("/v1/containers")
async def list_(request: web.Request) -> web.Response:
    q = list_query(request)
    name = request.query.get("name")
    if name is not None:  # the name is in the object, not a column: filter, then page in memory
        found = await store(request).find("container", owner=owner(request))
        return page_of(request, [render(c) for _, c in found if c["name"] == name])
    page = await store(request).list(
        "container", owner(request), limit=q.limit, order=q.order, after=q.after, before=q.before
    )
    page.data = [render(c) for c in page.data]
    return page_response(page)


@routes.get("/v1/containers/{container_id}")
async def retrieve(request: web.Request) -> web.Response:
    return web.json_response(await _container(request))


@routes.delete("/v1/containers/{container_id}")
async def delete(request: web.Request) -> web.Response:
    cid = request.match_info["container_id"]
    if not await _svc(request).delete(owner(request), cid):
        raise _missing(cid)
    return deleted(cid, "container.deleted")


# --- files ------------------------------------------------------------------------------------------
@routes.post("/v1/containers/{container_id}/files")
async def create_file(request: web.Request) -> web.Response:
    obj = await _container(request)
    who, svc = owner(request), _svc(request)
    if not request.content_type.startswith("multipart/"):
        ref = await parse(request, FileRef)
        got = await svc.load(who, ref.file_id)
        if got is None:
            raise NotFound(f"No such File object: {ref.file_id}", param="file_id")
        return web.json_response(await svc.add_bytes(who, obj["id"], got[0], got[1], "user"))
    limit = request.app[SETTINGS].max_file_bytes
    tmp = svc.tmp_path()
    filename, size = None, 0
    try:
        reader = await request.multipart()
        async for part in reader:
            if isinstance(part, BodyPartReader) and part.name == "file" and filename is None:
                filename = part.filename or "upload"
                with tmp.open("wb") as out:
                    async for chunk in _receive(part, limit):
                        out.write(chunk)
                        size += len(chunk)
        if filename is None:
            raise InvalidRequest("Missing required parameter: 'file'.", param="file")
        return web.json_response(await svc.add_file(who, obj["id"], filename, tmp, size, "user"))
    finally:
        await asyncio.to_thread(tmp.unlink, True)


@routes.get("/v1/containers/{container_id}/files")
async def list_files(request: web.Request) -> web.Response:
    obj = await _container(request)
    q = list_query(request)
    page = await store(request).list(
        "container_file", owner(request), parent=obj["id"], limit=q.limit, order=q.order, after=q.after,
        before=q.before,
    )  # fmt: skip
    return page_response(page)


async def _file(request: web.Request) -> dict[str, Any]:
    obj = await _container(request)
    fid = request.match_info["file_id"]
    f = await store(request).get("container_file", fid, owner(request), obj["id"])
    if f is None:
        raise NotFound(f"Container file with id '{fid}' not found.", param="file_id")
    return f


@routes.get("/v1/containers/{container_id}/files/{file_id}")
async def retrieve_file(request: web.Request) -> web.Response:
    return web.json_response(await _file(request))


@routes.get("/v1/containers/{container_id}/files/{file_id}/content")
async def file_content(request: web.Request) -> web.StreamResponse:
    f = await _file(request)
    path = _svc(request).file_path(f["container_id"], f["id"])
    if not path.exists():
        raise NotFound(f"Container file with id '{f['id']}' not found.", param="file_id")
    name = f["path"].rsplit("/", 1)[-1].replace('"', "")
    kind = "image/png" if name.lower().endswith(".png") else "application/octet-stream"
    return web.FileResponse(
        path, headers={"Content-Disposition": f'attachment; filename="{name}"', "Content-Type": kind}
    )


@routes.delete("/v1/containers/{container_id}/files/{file_id}")
async def delete_file(request: web.Request) -> web.Response:
    f = await _file(request)
    await _svc(request).delete_file(owner(request), f["container_id"], f["id"])
    return deleted(f["id"], "container.file.deleted")
