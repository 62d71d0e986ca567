"""The Responses built-in tools a request may name: their shapes (echoed with defaults filled), the ids
they name checked for their owner, and the container a response's ``code_interpreter`` will use.

* ``code_interpreter``: ``container`` is ``"cntr_…"`` (must exist for this key; expired → 400 unless
  revival is on) or ``{"type": "auto", "file_ids", "memory_limit"}``: the container of the
  ``previous_response_id`` chain if it is still usable, else a new one, made only when code first runs.
* ``file_search``: ``vector_store_ids`` (each checked), ``max_num_results`` 1..50, ``filters``,
  ``ranking_options``.
* the calculator: ``{"type": "mcp", "server_label": "calculator"}`` (what the Agents SDK's
  ``HostedMCPTool`` sends) or the shorthand ``{"type": "calculator"}``; its calls are ``mcp_call`` items.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.api.common import get_or_404, owner, validation_error
from agent.app_keys import CONTAINERS, SETTINGS
from agent.domain import new_id
from agent.errors import InvalidRequest, NotFound
from agent.retrieval.filters import InvalidFilter, validate_filter
from agent.tools.containers import expired

KINDS = ("code_interpreter", "file_search", "mcp", "calculator")
CALCULATOR_LABEL = "calculator"


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AutoContainer(_Loose):
    type: Literal["auto"]
    file_ids: list[str] | None = Field(default=None, max_length=50)
    memory_limit: Literal["1g", "4g", "16g", "64g"] | None = None
    network_policy: dict[str, Any] | None = None


class CodeInterpreter(_Loose):
    type: Literal["code_interpreter"]
    container: str | AutoContainer


class Ranking(_Loose):
    ranker: Literal["auto", "default-2024-11-15", "none"] | None = None
    score_threshold: float | None = Field(default=None, ge=0, le=1)
    hybrid_search: dict[str, Any] | None = None


class FileSearch(_Loose):
    type: Literal["file_search"]
    vector_store_ids: list[str] = Field(max_length=16)
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    filters: dict[str, Any] | None = None
    ranking_options: Ranking | None = None


def wire(kind: str, raw: dict[str, Any], index: int) -> dict[str, Any]:
    """A built-in tool as the response echoes it (400 on a bad shape)."""
    body = {**raw, "type": kind}
    try:
        if kind == "code_interpreter":
            ci = CodeInterpreter.model_validate(body)
            container = ci.container
            if isinstance(container, AutoContainer):
                return {"type": kind, "container": container.model_dump(exclude_none=True)}
            return {"type": kind, "container": container}
        if kind == "file_search":
            fs = FileSearch.model_validate(body)
            if fs.filters is not None:
                validate_filter(fs.filters)
            ranking = fs.ranking_options.model_dump(exclude_none=True) if fs.ranking_options else {}
            return {
                "type": kind,
                "vector_store_ids": fs.vector_store_ids,
                "filters": fs.filters,
                "max_num_results": fs.max_num_results or 20,
                "ranking_options": {"ranker": "auto", "score_threshold": 0.0, **ranking},
            }
    except ValidationError as exc:
        err = validation_error(exc)
        err.param = f"tools[{index}].{err.param}" if err.param else f"tools[{index}]"
        raise err from None
    except InvalidFilter as exc:
        raise InvalidRequest(f"Invalid 'filters': {exc}", param=f"tools[{index}].filters") from None
    label = raw.get("server_label") if kind == "mcp" else CALCULATOR_LABEL
    if label != CALCULATOR_LABEL:
        raise InvalidRequest(
            f"MCP server '{label}' is not available: this server offers only the built-in "
            f"server_label '{CALCULATOR_LABEL}'.",
            param=f"tools[{index}].server_label",
        )
    return {
        "type": "mcp", "server_label": CALCULATOR_LABEL, "server_url": raw.get("server_url"),
        "server_description": "Exact arithmetic, evaluated on the server.", "allowed_tools": None,
        "headers": None, "require_approval": "never",
    }  # fmt: skip


async def prepare(
    request: web.Request, resp: dict[str, Any], prior: list[dict[str, Any]], include: list[str] | None
) -> None:
    """Check every id the built-in tools name for its owner and resolve the container (writes nothing)."""
    resp["_include"] = list(include or [])
    for i, tool in enumerate(resp["tools"]):
        if tool["type"] == "file_search":
            for vs in tool["vector_store_ids"]:
                await get_or_404(request, "vector_store", vs)
        elif tool["type"] == "code_interpreter" and "_container" not in resp:
            resp["_container"] = await _container(request, tool["container"], prior, i)


async def _container(
    request: web.Request, given: str | dict[str, Any], prior: list[dict[str, Any]], index: int
) -> dict[str, Any]:
    who, containers = owner(request), request.app[CONTAINERS]
    settings = request.app[SETTINGS]
    base = settings.public_url.rstrip("/") if settings.public_url else f"{request.scheme}://{request.host}"
    if isinstance(given, str):
        obj = await containers.store.get("container", given, who)
        if obj is None:
            raise NotFound(f"Container with id '{given}' not found.", param=f"tools[{index}].container")
        if expired(obj) and not containers.policy.revive:
            raise InvalidRequest(
                "Container is expired.", param=f"tools[{index}].container", code="container_expired"
            )
        return {"id": given, "base_url": base}
    file_ids = list(given.get("file_ids") or [])
    for file_id in file_ids:
        await get_or_404(request, "file", file_id)
    used = [i.get("container_id") for i in prior if i.get("type") == "code_interpreter_call"]
    for cid in reversed([c for c in used if c]):
        obj = await containers.store.get("container", cid, who)
        if obj is not None and (not expired(obj) or containers.policy.revive):
            return {"id": cid, "base_url": base, "file_ids": file_ids}
        break
    return {
        "id": new_id("cntr_"),
        "new": True,
        "base_url": base,
        "file_ids": file_ids,
        "memory_limit": given.get("memory_limit"),
        "name": "auto",
    }


def with_include(resp: dict[str, Any], request: web.Request) -> dict[str, Any]:
    """The response with the retrieve's ``include`` (``include`` or ``include[]``) added to its own."""
    extra = [*request.query.getall("include", []), *request.query.getall("include[]", [])]
    if not extra:
        return resp
    output = [{**i, "_include": [*(i.get("_include") or []), *extra]} for i in resp.get("output") or []]
    return {**resp, "output": output}
