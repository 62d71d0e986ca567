"""JSON request bodies: the content type, strict JSON (no ``NaN``/``Infinity``) and their validation.

A small body is validated on the event loop. A big one (over :data:`BIG_BODY`) is first checked in a
worker process: a hostile body (a million unknown keys, say) makes pydantic collect a million errors,
seconds of CPU that would otherwise hold every other request. A body that passes there validates
quickly in-process (a valid body has no errors to collect).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from agent.errors import InvalidRequest

BIG_BODY = 256 * 1024
NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
    "your HTTP library correctly. The OpenAI API expects a JSON payload.)"
)
NON_FINITE = (
    "We could not parse the JSON body of your request: NaN, Infinity and -Infinity are not valid JSON "
    "numbers. (HINT: send finite numbers, or strings.)"
)


def validator_pool() -> Executor:
    """The worker process for big bodies (one: a hostile body keeps it, not the event loop, busy)."""
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("forkserver"))


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def has_non_finite(raw: bytes) -> bool:
    """Whether the JSON text holds a bare ``NaN``/``Infinity`` token (not just those letters in a string)."""
    if b"NaN" not in raw and b"Infinity" not in raw:
        return False
    try:
        json.loads(raw, parse_constant=_reject_constant)
    except ValueError:
        return True
    return False


_MISMATCH = {"model_type", "dict_type", "list_type", "string_type", "int_type", "float_type", "bool_type"}


def _is_tag(part: int | str) -> bool:
    """A union member's tag in an error location (``ToolChoiceObject``, ``str``, ``literal[…]``), not a
    field: our field names are lower-case words."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part or part in ("str", "int", "float"))


def pick_error(errors: list[ErrorDetails]) -> ErrorDetails | dict[str, Any]:
    """The error to report. For a value that matched no member of a union, the member it came closest
    to: the deepest error, preferring one that is not a plain type mismatch; tags left out of ``loc``."""
    first = errors[0]
    cut = next((i for i, part in enumerate(first["loc"]) if _is_tag(part)), None)
    if cut is None:
        return first
    prefix = first["loc"][:cut]
    members = [e for e in errors[:200] if e["loc"][:cut] == prefix and len(e["loc"]) > cut]

    def rank(e: ErrorDetails) -> tuple[int, bool]:
        return len([p for p in e["loc"] if not _is_tag(p)]), e["type"] not in (*_MISMATCH, "literal_error")

    best = max(members, key=rank)  # max keeps the first of equals
    return {**best, "loc": tuple(p for p in best["loc"] if not _is_tag(p))}


def _portable(err: ErrorDetails | dict[str, Any]) -> dict[str, Any]:
    """An error detail small enough to send back from the worker (no echo of a huge input)."""
    got = err.get("input")
    if not isinstance(got, str | int | float | bool | type(None)):
        got = type(got)() if isinstance(got, dict | list) else None
    out: dict[str, Any] = {"type": err["type"], "loc": err["loc"], "msg": err["msg"], "input": got}
    ctx = err.get("ctx")
    if ctx:
        out["ctx"] = {k: v if isinstance(v, str | int | float) else str(v) for k, v in ctx.items()}
    return out


def body_error(model: type[BaseModel], raw: bytes) -> dict[str, Any] | None:
    """The first problem with ``raw`` as a ``model`` body, or None (runs in the worker process)."""
    if has_non_finite(raw):
        return {"type": "non_finite", "loc": (), "msg": NON_FINITE}
    try:
        model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as exc:
        return _portable(pick_error(exc.errors(include_url=False)))
    return None


def check_content_type(request: web.Request, raw: bytes) -> None:
    """A body must be sent as JSON (``application/json`` or ``…+json``), as the hosted API requires."""
    if not raw or "Content-Type" not in request.headers:
        return
    kind = request.content_type
    if kind == "application/json" or kind.endswith("+json"):
        return
    raise InvalidRequest(
        f"Unsupported content type: '{kind}'. This API method only accepts 'application/json' requests, "
        f"but you specified the header 'Content-Type: {kind}'. Please try again with a supported content "
        "type."
    )


async def precheck(pool: Executor, model: type[BaseModel], raw: bytes) -> dict[str, Any] | None:
    """``body_error`` for a big body, off the event loop; None for a small one (checked in-process)."""
    if len(raw) <= BIG_BODY:
        return None
    return await asyncio.get_running_loop().run_in_executor(pool, body_error, model, raw)
