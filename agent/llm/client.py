"""`OpenAICompatModel`: the `ChatModel` over HTTP, for llama.cpp `llama-server`, Ollama and vLLM.

Always streams (`stream: true`, `stream_options.include_usage`). Connection errors, 429 and 5xx (also
an error event or a cut-off stream) are retried with exponential backoff, but only while nothing has
been yielded; after that, and for everything else, a `ModelError` is raised. The API key goes into the
Authorization header only: never into a message, a log line or `repr`.

Two clocks bound a call: `read_timeout`, the longest wait for the next `data:` line (SSE comments, which
some servers send as keep-alives, do not count), and `turn_timeout`, the deadline of the whole call
(retries and a forced-call retry included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp

from .normalize import StreamNormalizer, new_call_id
from .prompted import render_messages
from .repair import repair_arguments
from .sse import SSEFormatError, iter_sse_data
from .toolchoice import ToolPlan, forced_messages, forced_response_format, parse_forced, plan_tools
from .types import (
    ChatEvent,
    ChatRequest,
    Completion,
    ContextOverflowError,
    ModelError,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
)

log = logging.getLogger(__name__)

TOOL_MODES = ("native", "prompted")
_OVERFLOW = re.compile(r"context (size|length|window)|maximum context|too many tokens|exceeds? the", re.I)


class _Retryable(Exception):
    def __init__(self, error: ModelError) -> None:
        super().__init__(error.message)
        self.error = error


class OpenAICompatModel:
    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        aliases: dict[str, str] | None = None,
        connect_timeout: float = 10,
        read_timeout: float = 60,
        max_retries: int = 2,
        tool_mode: str = "native",
        retry_backoff: float = 0.2,
        turn_timeout: float = 300,
    ) -> None:
        """`base_url` ends in /v1 (e.g. "http://127.0.0.1:8080/v1"). `aliases` maps request model names
        to backend ones; a "*" entry is the default for all names. `tool_mode` "prompted" puts the tools
        in the system prompt instead of `tools` (for models without native tool calling)."""
        if tool_mode not in TOOL_MODES:
            raise ValueError(f"tool_mode must be one of {TOOL_MODES}, not {tool_mode!r}")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.aliases = dict(aliases or {})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_retries = max_retries
        self.tool_mode = tool_mode
        self.retry_backoff = retry_backoff
        self.turn_timeout = turn_timeout
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"OpenAICompatModel({self.base_url!r}, tool_mode={self.tool_mode!r})"

    def resolve_model(self, name: str) -> str:
        return self.aliases.get(name) or self.aliases.get("*") or name

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- the stream -------------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatEvent]:
        plan = plan_tools(request)
        body = self._body(request, plan)
        deadline = asyncio.get_running_loop().time() + self.turn_timeout

        def normalizer() -> StreamNormalizer:
            return StreamNormalizer(plan.tools, parallel_tool_calls=request.parallel_tool_calls)

        if not plan.forced:
            async for event in self._attempts(body, normalizer, deadline):
                yield event
            return
        # A call is required: hold text back until a call shows up; if none does, ask again under a
        # JSON schema that only admits a call (the held text is discarded if that works).
        held: list[ChatEvent] = []
        calling = False
        completion: Completion | None = None
        async for event in self._attempts(body, normalizer, deadline):
            if isinstance(event, Completion):
                completion = event
            elif calling:
                yield event
            elif isinstance(event, ToolCallStart):
                calling = True
                for h in held:
                    yield h
                yield event
            else:
                held.append(event)
        assert completion is not None
        if not completion.tool_calls:
            forced = await self._forced_call(body, plan, deadline)
            if forced is not None:
                call, usage = forced
                yield ToolCallStart(0, call.id, call.name)
                yield ToolCallDelta(0, call.arguments)
                yield Completion("", [call], "tool_calls", _add_usage(completion.usage, usage))
                return
            for h in held:
                yield h
        yield completion

    async def _forced_call(
        self, body: dict[str, Any], plan: ToolPlan, deadline: float
    ) -> tuple[ToolCall, Usage | None] | None:
        forced = {k: v for k, v in body.items() if k not in ("tools", "tool_choice", "parallel_tool_calls")}
        forced["messages"] = forced_messages(body["messages"])
        forced["response_format"] = forced_response_format(plan.tools)
        log.debug("no tool call where one was required; asking again under a JSON schema")
        completion: Completion | None = None
        async for event in self._attempts(forced, StreamNormalizer, deadline):
            if isinstance(event, Completion):
                completion = event
        assert completion is not None
        call = parse_forced(completion.text, plan.tools)
        if call is None:
            return None
        arguments, error = repair_arguments(call.arguments)
        return ToolCall(new_call_id(), call.name, arguments, error), completion.usage

    def _body(self, request: ChatRequest, plan: ToolPlan) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.resolve_model(request.model)}
        if self.tool_mode == "prompted":
            body["messages"] = render_messages(request.messages, plan.tools, plan.tool_choice)
        else:
            body["messages"] = request.messages
            if plan.tools:
                body["tools"] = plan.tools
                body["tool_choice"] = plan.tool_choice
                body["parallel_tool_calls"] = request.parallel_tool_calls
        for key in ("temperature", "top_p", "max_tokens", "response_format"):
            value = getattr(request, key)
            if value is not None:
                body[key] = value
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        return body

    # -- HTTP -------------------------------------------------------------------------------------------

    async def _attempts(
        self, body: dict[str, Any], normalizer: Callable[[], StreamNormalizer], deadline: float
    ) -> AsyncIterator[ChatEvent]:
        """`_once` with retries while nothing has been yielded (and the turn's deadline allows)."""
        attempt = 0
        while True:
            yielded = False
            try:
                async for event in self._once(body, normalizer(), deadline):
                    yielded = True
                    yield event
                return
            except _Retryable as e:
                delay = self.retry_backoff * 2**attempt
                if yielded or attempt >= self.max_retries or _now() + delay >= deadline:
                    raise e.error from None
                attempt += 1
                log.warning(
                    "model request failed (%s); retry %d/%d in %.1f s",
                    e.error.message,
                    attempt,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)

    async def _once(
        self, body: dict[str, Any], norm: StreamNormalizer, deadline: float
    ) -> AsyncIterator[ChatEvent]:
        session = self._get_session()
        url = self.base_url + "/chat/completions"
        try:
            async with self._waiting(deadline):
                resp = await session.post(url, json=body)
            async with resp:
                if resp.status >= 400:
                    async with self._waiting(deadline):
                        text = await resp.text(errors="replace")
                    raise _status_error(resp.status, text)
                if "text/event-stream" not in resp.headers.get("Content-Type", ""):
                    # The server ignored `stream`: one JSON body.
                    async with self._waiting(deadline):
                        text = await resp.text(errors="replace")
                    for event in [*norm.feed(_parse(text)), *norm.finish()]:
                        yield event
                    return
                lines = aiter(iter_sse_data(resp.content.iter_any()))
                while True:
                    async with self._waiting(deadline):
                        data = await anext(lines, None)
                    if data is None:
                        raise _Retryable(ModelError("model server closed the stream before [DONE]"))
                    if data.strip() == "[DONE]":
                        break
                    for event in norm.feed(_parse(data)):
                        yield event
                for event in norm.finish():
                    yield event
        except aiohttp.ConnectionTimeoutError:
            raise _Retryable(
                ModelError(
                    f"model server unreachable at {self.base_url}: connection timed out after "
                    f"{self.connect_timeout:g} s"
                )
            ) from None
        except aiohttp.ClientConnectorError as e:
            message = f"model server unreachable at {self.base_url}: {_reason(e)}"
            raise _Retryable(ModelError(message)) from None
        except (aiohttp.ServerTimeoutError, TimeoutError):
            raise self._read_timeout_error() from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError) as e:
            raise _Retryable(
                ModelError(f"model server at {self.base_url} dropped the connection: {e or type(e).__name__}")
            ) from None
        except SSEFormatError as e:
            raise ModelError(f"model server sent a malformed stream line: {_clip(str(e))}") from None
        except aiohttp.ClientError as e:
            raise ModelError(f"model server request failed: {e or type(e).__name__}") from None

    @contextlib.asynccontextmanager
    async def _waiting(self, deadline: float) -> AsyncIterator[None]:
        """One wait for the server: at most `read_timeout`, and never past the turn's deadline."""
        until = min(_now() + self.read_timeout, deadline)
        try:
            async with asyncio.timeout_at(until):
                yield
        except TimeoutError:
            if until >= deadline:
                raise ModelError(
                    f"model server at {self.base_url} did not finish its answer within "
                    f"{self.turn_timeout:g} s (turn timeout)"
                ) from None
            raise self._read_timeout_error() from None

    def _read_timeout_error(self) -> ModelError:
        return ModelError(
            f"model server at {self.base_url} sent no data for {self.read_timeout:g} s (read timeout)"
        )

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
            timeout = aiohttp.ClientTimeout(
                total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
            )
            self._session = aiohttp.ClientSession(headers=headers, timeout=timeout)
        return self._session


def _now() -> float:
    return asyncio.get_running_loop().time()


def _parse(data: str) -> dict[str, Any]:
    """One JSON chunk; an error object (llama-server sends one mid-stream with HTTP 200) raises."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise ModelError(f"model server sent malformed data: {_clip(data)}") from None
    if not isinstance(chunk, dict):
        raise ModelError(f"model server sent malformed data: {_clip(data)}")
    if chunk.get("error") is not None:
        raise _error_object(chunk["error"], status=None)
    return chunk


def _status_error(status: int, text: str) -> Exception:
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    if error is None:
        error = {"message": text.strip() or f"HTTP {status}"}
    return _error_object(error, status)


def _error_object(error: Any, status: int | None) -> Exception:
    """An OpenAI-style error object → the exception to raise (`_Retryable` wraps retryable ones)."""
    if isinstance(error, dict):
        message = str(error.get("message") or error)
        kind, code = str(error.get("type") or ""), error.get("code")
    else:
        message, kind, code = str(error), "", None
    where = f"returned {status}" if status is not None else "failed mid-stream"
    text = f"model server {where}: {_clip(message, 500)}"
    if status == 429 or code == 429 or kind in ("rate_limit_error", "rate_limit_exceeded"):
        return _Retryable(ModelError(text, "rate_limit_exceeded"))
    overflow_kinds = ("exceed_context_size_error", "context_length_exceeded")
    if kind in overflow_kinds or code in overflow_kinds or (status == 400 and _OVERFLOW.search(message)):
        return ContextOverflowError(text)
    if status is None or status >= 500:
        return _Retryable(ModelError(text))
    return ModelError(text)


def _reason(e: aiohttp.ClientConnectorError) -> str:
    if isinstance(e.os_error, ConnectionRefusedError):
        return "Connection refused"
    return e.os_error.strerror or str(e.os_error) or type(e.os_error).__name__


def _clip(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _add_usage(a: Usage | None, b: Usage | None) -> Usage | None:
    if a is None or b is None:
        return a or b
    return a + b
