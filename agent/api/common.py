"""What every resource module shares: ids, request parsing, validation messages, pagination, owners."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from agent.app_keys import OWNER, STORE
from agent.domain import new_id as new_id  # re-exported: ids and the clock live in agent.domain
from agent.domain import now as now
from agent.errors import InvalidRequest, not_found
from agent.store import Page, Store

M = TypeVar("M", bound=BaseModel)


def owner_of_key(key: str | None) -> str:
    """Objects belong to a hash of the API key that made them (never the key itself)."""
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else "-"


def owner(request: web.Request) -> str:
    return request[OWNER]


def store(request: web.Request) -> Store:
    return request.app[STORE]


# --- validation ---------------------------------------------------------------------------------
def _check_metadata(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return value
    if len(value) > 16:
        raise ValueError(f"Invalid 'metadata': too many properties. Expected at most 16, got {len(value)}.")
    for k, v in value.items():
        if len(k) > 64:
            raise ValueError(f"Invalid 'metadata': key '{k[:20]}…' is longer than 64 characters.")
        if len(v) > 512:
            raise ValueError(f"Invalid 'metadata': value for key '{k}' is longer than 512 characters.")
    return value


Metadata = Annotated[dict[str, str] | None, AfterValidator(_check_metadata)]


class Request(BaseModel):
    """Base of every request body: unknown fields are rejected, as the hosted API does."""

    model_config = ConfigDict(extra="forbid")


class FunctionDef(Request):
    name: str = Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class RankingOptions(Request):
    ranker: str | None = None
    score_threshold: float = Field(default=0.0, ge=0, le=1)


class FileSearchOptions(Request):
    max_num_results: int | None = Field(default=None, ge=1, le=50)
    ranking_options: RankingOptions | None = None


TOOL_TYPES = ("code_interpreter", "file_search", "function", "calculator")


class Tool(Request):
    type: str
    function: FunctionDef | None = None
    file_search: FileSearchOptions | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in TOOL_TYPES:
            supported = ", ".join(f"'{t}'" for t in TOOL_TYPES)
            raise ValueError(f"Invalid value: '{v}'. Supported values are: {supported}.")
        return v

    @model_validator(mode="after")
    def _function_given(self) -> Tool:
        if self.type == "function" and self.function is None:
            raise ValueError("Missing required parameter: 'function'.")
        return self

    def wire(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class CodeInterpreterResources(Request):
    file_ids: list[str] = Field(default_factory=list, max_length=20)


class VectorStoreHelper(Request):
    file_ids: list[str] = Field(default_factory=list, max_length=10000)
    chunking_strategy: dict[str, Any] | None = None
    metadata: Metadata = None


class FileSearchResources(Request):
    vector_store_ids: list[str] | None = Field(default=None, max_length=1)
    vector_stores: list[VectorStoreHelper] | None = Field(default=None, max_length=1)


class ToolResources(Request):
    code_interpreter: CodeInterpreterResources | None = None
    file_search: FileSearchResources | None = None


ResponseFormat = Literal["auto"] | dict[str, Any] | None


def _param(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "list_type": "an array",
}


def _message(err: ErrorDetails, param: str) -> str:
    kind, ctx, got = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return f"Missing required parameter: '{param}'."
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}"
    if kind in _TYPE_NAMES:
        return (
            f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}, but got {type(got).__name__} instead."
        )
    if kind == "string_too_long":
        return (
            f"Invalid '{param}': string too long. Expected a string with maximum length "
            f"{ctx.get('max_length')}, but got a string with length {len(str(got))} instead."
        )
    if kind == "too_long":
        return (
            f"Invalid '{param}': array too long. Expected an array with maximum length "
            f"{ctx.get('max_length')}, but got an array with length {ctx.get('actual_length')} instead."
        )
    if kind == "string_pattern_mismatch":
        return f"Invalid '{param}': string does not match pattern. Expected a string that matches the pattern '{ctx.get('pattern')}'."
    msg = str(err["msg"]).removeprefix("Value error, ")
    return msg if msg.startswith(("Invalid", "Missing")) else f"Invalid '{param}': {msg}"


def validation_error(exc: ValidationError) -> InvalidRequest:
    err = exc.errors()[0]
    if err["type"] == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        )
    param = _param(err["loc"])
    return InvalidRequest(_message(err, param), param=param or None)


async def parse(request: web.Request, model: type[M]) -> M:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}", strict=True)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc) from None


# --- pagination ---------------------------------------------------------------------------------
class ListQuery(BaseModel):
    limit: int = Field(default=20, ge=1, le=100)
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


def list_query(request: web.Request, max_limit: int = 100, default_limit: int = 20) -> ListQuery:
    q = request.query
    raw: dict[str, Any] = {k: q[k] for k in ("order", "after", "before") if k in q}
    if "limit" in q:
        raw["limit"] = q["limit"]
    try:
        parsed = ListQuery.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
    if "limit" not in q:
        parsed.limit = default_limit
    if parsed.limit > max_limit:
        raise InvalidRequest(
            f"Invalid 'limit': integer above maximum value. Expected a value <= {max_limit}, "
            f"but got {parsed.limit} instead.",
            param="limit",
        )
    return parsed


def page_response(page: Page) -> web.Response:
    data = page.data
    return web.json_response(
        {
            "object": "list",
            "data": data,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
            "has_more": page.has_more,
        }
    )


def page_of(request: web.Request, data: list[dict[str, Any]], cursor_key: str = "id") -> web.Response:
    """Cursor pages over a list held in memory (``after``, ``limit`` 1..100, ``order`` default desc)."""
    q = list_query(request)
    if q.order == "desc":
        data = list(reversed(data))
    if q.after:
        ids = [d[cursor_key] for d in data]
        data = data[ids.index(q.after) + 1 :] if q.after in ids else data
    page = data[: q.limit]
    return web.json_response(
        {
            "object": "list",
            "data": page,
            "first_id": page[0][cursor_key] if page else None,
            "last_id": page[-1][cursor_key] if page else None,
            "has_more": len(data) > q.limit,
        }
    )


async def get_or_404(
    request: web.Request, kind: str, object_id: str, parent: str | None = None, label: str | None = None
) -> dict[str, Any]:
    obj = await store(request).get(kind, object_id, owner(request), parent)
    if obj is None:
        raise not_found(label or kind, object_id)
    return obj


def deleted(object_id: str, obj: str) -> web.Response:
    return web.json_response({"id": object_id, "object": obj, "deleted": True})
