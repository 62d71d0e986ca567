"""/v1/models: the model server's models, plus the alias names clients may send (``AGENT_MODEL_ALIASES``)."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
from aiohttp import web

from agent.app_keys import SETTINGS
from agent.errors import NotFound

routes = web.RouteTableDef()
log = logging.getLogger(__name__)


async def _models(app: web.Application) -> list[dict[str, Any]]:
    settings = app[SETTINGS]
    headers = {}
    if settings.model_api_key:
        headers["Authorization"] = f"Bearer {settings.model_api_key.get_secret_value()}"
    backend: list[dict[str, Any]] = []
    try:
        timeout = aiohttp.ClientTimeout(total=5)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(settings.model_url.rstrip("/") + "/models", headers=headers) as resp,
        ):
            if resp.status == 200:
                backend = [
                    m for m in (await resp.json()).get("data") or [] if isinstance(m, dict) and m.get("id")
                ]
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        log.info("model server did not list its models: %s", err)
    out = [
        {
            "id": m["id"],
            "object": "model",
            "created": m.get("created", 0),
            "owned_by": m.get("owned_by", "local"),
        }
        for m in backend
    ]
    known = {m["id"] for m in out}
    out += [
        {"id": name, "object": "model", "created": 0, "owned_by": f"alias of {target}"}
        for name, target in settings.aliases.items()
        if name != "*" and name not in known
    ]
    return out


@routes.get("/v1/models")
async def list_(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": await _models(request.app)})


@routes.get("/v1/models/{model}")
async def retrieve(request: web.Request) -> web.Response:
    name = request.match_info["model"]
    for model in await _models(request.app):
        if model["id"] == name:
            return web.json_response(model)
    raise NotFound(f"The model '{name}' does not exist", param="model", code="model_not_found")
