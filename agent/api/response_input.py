"""What a Responses request may say: the body models, input items (validated, given ids, their files
checked for their owner) and the rules that tie function calls to their outputs."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.api import hosted_tools
from agent.api.common import Metadata, get_or_404, store
from agent.domain import new_id
from agent.engine import items
from agent.errors import InvalidRequest, NotFound
from agent.retrieval.extract import extract_text

MAX_INPUT_ITEMS = 2048
MAX_FILE_TEXT = 200_000


class Lenient(BaseModel):
    """Responses bodies: unknown fields are ignored, as newer SDKs send fields older servers lack."""

    model_config = ConfigDict(extra="ignore")


class FunctionTool(Lenient):
    model_config = ConfigDict(extra="allow")  # a built-in tool's own fields (agent.api.hosted_tools)
    type: str
    name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, v: str) -> str:
        if v != "function" and v not in hosted_tools.KINDS:
            raise ValueError(
                f"Invalid value: '{v}'. Supported values are: 'function', 'code_interpreter', 'file_search' "
                "and 'mcp' (server_label 'calculator')."
            )
        return v

    def wire(self, index: int = 0) -> dict[str, Any]:
        if self.type != "function":
            return hosted_tools.wire(self.type, self.model_extra or {}, index)
        if self.name is None:
            raise InvalidRequest("Missing required parameter: 'tools[].name'.", param="tools")
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": True if self.strict is None else self.strict,
        }


class TextFormat(Lenient):
    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_-]{1,64}$")
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    description: str | None = None
    strict: bool | None = None

    def model_post_init(self, _context: Any) -> None:
        if self.type == "json_schema" and (self.name is None or self.schema_ is None):
            missing = "name" if self.name is None else "schema"
            raise InvalidRequest(
                f"Missing required parameter: 'text.format.{missing}'.", param=f"text.format.{missing}"
            )


class TextConfig(Lenient):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None

    def model_dump(self, **kw: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.format is not None:
            out["format"] = self.format.model_dump(by_alias=True, exclude_none=True)
        if self.verbosity is not None:
            out["verbosity"] = self.verbosity
        return out


class ConversationRef(Lenient):
    id: str


class Common(Lenient):
    model: str | None = None
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = Field(default=None, max_length=256_000)
    previous_response_id: str | None = None
    conversation: str | ConversationRef | None = None
    tools: list[FunctionTool] | None = Field(default=None, max_length=128)
    tool_choice: Literal["none", "auto", "required"] | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    text: TextConfig | None = None
    truncation: Literal["auto", "disabled"] | None = None
    reasoning: dict[str, Any] | None = None

    @property
    def conversation_id(self) -> str | None:
        c = self.conversation
        return c if isinstance(c, str) else c.id if c is not None else None


class ResponseCreate(Common):
    max_output_tokens: int | None = Field(default=None, ge=16)
    max_tool_calls: int | None = Field(default=None, ge=0)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    metadata: Metadata = None
    store: bool | None = None
    background: bool | None = None
    stream: bool | None = None
    include: list[str] | None = None
    user: str | None = None
    safety_identifier: str | None = Field(default=None, max_length=64)
    prompt_cache_key: str | None = None
    service_tier: str | None = None


class TokensCount(Common):
    pass


def check_tool_choice(body: Common) -> None:
    choice = body.tool_choice
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    names = {t.name for t in body.tools or []}
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str) or name not in names:
            raise InvalidRequest(
                f"Tool choice '{choice.get('name')}' not found in 'tools' parameter.", param="tool_choice"
            )
    elif kind == "allowed_tools":
        if choice.get("mode", "auto") not in ("auto", "required"):
            raise InvalidRequest(
                "Invalid 'tool_choice.mode': expected 'auto' or 'required'.", param="tool_choice.mode"
            )
    elif kind not in ("code_interpreter", "file_search") or kind not in {t.type for t in body.tools or []}:
        raise InvalidRequest(f"Tool choice '{kind}' not found in 'tools' parameter.", param="tool_choice")


# --- input items --------------------------------------------------------------------------------------
def _bad(message: str, param: str) -> InvalidRequest:
    return InvalidRequest(message, param=param)


def _string(item: dict[str, Any], key: str, param: str, required: bool = True) -> str | None:
    value = item.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        if value is None:
            raise _bad(f"Missing required parameter: '{param}.{key}'.", f"{param}.{key}")
        raise _bad(
            f"Invalid type for '{param}.{key}': expected a string, but got {type(value).__name__} instead.",
            f"{param}.{key}",
        )
    return value


async def _part(request: web.Request, part: Any, role: str, param: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _bad(f"Invalid type for '{param}': expected an object.", param)
    kind = part.get("type")
    if kind in ("input_text", "output_text", "text", "refusal", "summary_text", "reasoning_text"):
        key = "refusal" if kind == "refusal" else "text"
        text = _string(part, key, param)
        if kind == "output_text" or (role == "assistant" and kind == "text"):
            return {**items.output_text(text or ""), "annotations": part.get("annotations") or []}
        return {"type": kind if kind != "text" else "input_text", key: text}
    if kind == "input_image":
        url, file_id = _string(part, "image_url", param, False), _string(part, "file_id", param, False)
        if not url and not file_id:
            raise _bad(f"Missing required parameter: '{param}.image_url'.", f"{param}.image_url")
        if file_id:
            await get_or_404(request, "file", file_id)
        detail = part.get("detail") or "auto"
        return {"type": "input_image", "image_url": url, "file_id": file_id, "detail": detail}
    if kind == "input_file":
        file_id = _string(part, "file_id", param, False)
        out: dict[str, Any] = {"type": "input_file", "file_id": file_id, "filename": part.get("filename")}
        if file_id:
            f = await get_or_404(request, "file", file_id)
            out["filename"] = f["filename"]
            out["_text"] = await _file_text(request, file_id, f["filename"])
        elif isinstance(part.get("file_data"), str):
            out["_text"] = "(inline file data)"
        elif not part.get("file_url"):
            raise _bad(f"Missing required parameter: '{param}.file_id'.", f"{param}.file_id")
        return out
    raise _bad(
        f"Invalid value: '{kind}'. Supported values are: 'input_text', 'input_image' and 'input_file'.",
        f"{param}.type",
    )


async def _file_text(request: web.Request, file_id: str, filename: str) -> str:
    try:
        data = await store(request).blobs.read(file_id)
        if data is None:
            raise FileNotFoundError(file_id)
        return (await asyncio.to_thread(extract_text, data, filename))[:MAX_FILE_TEXT]
    except Exception:
        return "(the file's text could not be read)"


async def normalize_input(
    request: web.Request, given: str | list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The request's ``input`` as stored items (ids and ``status`` given, parts in their full shape)."""
    if given is None:
        return []
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    if len(given) > MAX_INPUT_ITEMS:
        raise _bad(f"Invalid 'input': array too long. Expected at most {MAX_INPUT_ITEMS} items.", "input")
    return [await input_item(request, item, f"input[{i}]") for i, item in enumerate(given)]


async def input_item(request: web.Request, item: Any, param: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _bad(f"Invalid type for '{param}': expected an object.", param)
    kind = item.get("type") or ("message" if "role" in item else None)
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "system", "developer", "assistant"):
            raise _bad(
                f"Invalid value: '{role}'. Supported values are: 'user', 'system', 'developer' and 'assistant'.",
                f"{param}.role",
            )
        content = item.get("content")
        if isinstance(content, str):
            parts = [
                items.output_text(content) if role == "assistant" else {"type": "input_text", "text": content}
            ]
        elif isinstance(content, list):
            parts = [await _part(request, p, role, f"{param}.content[{j}]") for j, p in enumerate(content)]
        else:
            raise _bad(f"Missing required parameter: '{param}.content'.", f"{param}.content")
        ident = item.get("id") if isinstance(item.get("id"), str) else new_id("msg_")
        return {"id": ident, "type": "message", "role": role, "content": parts, "status": "completed"}
    if kind == "function_call":
        call_id, name = _string(item, "call_id", param), _string(item, "name", param)
        arguments = _string(item, "arguments", param)
        out = items.function_call_item(call_id or "", name or "", arguments or "")
        out.update(status="completed", id=item.get("id") if isinstance(item.get("id"), str) else out["id"])
        return out
    if kind == "function_call_output":
        call_id = _string(item, "call_id", param)
        output = item.get("output")
        if not isinstance(output, str | list):
            raise _bad(f"Missing required parameter: '{param}.output'.", f"{param}.output")
        if isinstance(output, list):
            output = [await _part(request, p, "user", f"{param}.output[{j}]") for j, p in enumerate(output)]
        ident = (
            item.get("id") if isinstance(item.get("id"), str) else items.call_item_id(call_id or "", "fco_")
        )
        return {
            "id": ident,
            "type": "function_call_output",
            "call_id": call_id,
            "output": output,
            "status": "completed",
        }
    if kind == "item_reference":
        return {"type": "item_reference", "id": _string(item, "id", param)}
    if kind in (
        "reasoning",
        "compaction",
        "code_interpreter_call",
        "file_search_call",
        "mcp_call",
        "mcp_list_tools",
    ):
        return {k: v for k, v in item.items() if not str(k).startswith("_")}  # echoed; engine fields are ours
    raise _bad(
        f"Invalid value: '{kind}'. Supported values are: 'message', 'function_call', 'function_call_output' and "
        "'item_reference'.",
        f"{param}.type",
    )


async def resolve_references(
    given: list[dict[str, Any]], prior: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """``item_reference`` items become the stored items they name (from the chain or conversation)."""
    known = {i["id"]: i for i in prior if "id" in i}
    out = []
    for item in given:
        if item.get("type") == "item_reference":
            found = known.get(item["id"])
            if found is None:
                raise NotFound(f"Item with id '{item['id']}' not found.", param="input")
            out.append(dict(found))
        else:
            out.append(item)
    return out


def check_calls(prior: list[dict[str, Any]], given: list[dict[str, Any]], strict_pairs: bool) -> None:
    """Every function call needs its output; every output needs its call."""
    missing, orphans = items.pending_calls([*prior, *given])
    if orphans:
        raise InvalidRequest(
            f"No tool call found for function call output with call_id {orphans[0]}.", param="input"
        )
    if missing and strict_pairs:
        raise InvalidRequest(f"No tool output found for function call {missing[0]}.", param="input")
