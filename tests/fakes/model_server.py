"""A scripted fake of llama.cpp's `llama-server`: a real aiohttp app on a loopback port.

It speaks `/v1/chat/completions` (stream and non-stream) with the exact shapes recorded in
tests/fixtures/llama-server/ (ids `chatcmpl-…`, tool-call ids of 32 alphanumerics without `call_`,
`content: null` role chunk first, index+id+type+name with the first argument piece, usage in a last
chunk when `stream_options.include_usage`, `data: [DONE]`), plus `/v1/models`, `/health` and
`/v1/embeddings` (deterministic hashed bag-of-words vectors).

It runs in its own thread and event loop, so it answers whatever the test does meanwhile (a blocking
SDK call, an API server in another thread or a subprocess). `script()` and `Gate.set()` are
thread-safe. ::

    async with ScriptedModel() as model:         # or `with ScriptedModel() as model:`
        model.script(
            Text("Hello there", pieces=["Hel", "lo there"]),
            ToolCalls([Call("get_weather", {"city": "Paris"})]),
            HttpError(500),
        )
        client = OpenAICompatModel(model.url)    # "http://127.0.0.1:PORT/v1"
        ...
        assert model.requests[0]["stream"] is True

When the script runs out, every request gets `model.default` (`Text("OK")` unless given). Hold a turn
with a `Gate` (set it from the test, any thread): `Text("hi", gate=g)` holds before the first byte,
`Text("a b c", pause=g, pause_after=1)` after the first content piece.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import math
import re
import secrets
import string
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

_ALNUM = string.ascii_letters + string.digits
_WORD = re.compile(r"\w+", re.UNICODE)


def _rand(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


class Gate:
    """A one-shot, thread-safe event: `set()` from any thread; awaited inside the server's loop.
    (An `asyncio.Event` cannot be used: the server runs in a loop of its own.)"""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._set = False
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    def set(self) -> None:
        with self._lock:
            self._set = True
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._set:
                return
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((loop, fut))
        await fut


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


# -- turns --------------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class Turn:
    gate: Gate | None = None
    """Hold before the first byte (before the response headers) until set."""
    pause: Gate | None = None
    """Hold after `pause_after` content pieces until set."""
    pause_after: int = 1
    delay: float = 0.0
    """Seconds before each chunk (for demos; tests synchronise with gates)."""


@dataclass
class Text(Turn):
    """An answer in text, streamed piece by piece (by default: word by word)."""

    text: str = ""
    pieces: list[str] | None = None
    finish_reason: str = "stop"

    def parts(self) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        return re.findall(r"\s*\S+\s*?(?=\s|$)|\s+$", self.text) or ([self.text] if self.text else [])

    def full(self) -> str:
        return "".join(self.pieces) if self.pieces is not None else self.text


@dataclass
class Call:
    """One tool call. `arguments` as text (sent verbatim, may be invalid JSON) or as an object."""

    name: str
    arguments: str | dict[str, Any] = "{}"
    pieces: list[str] | None = None
    """How the argument text is split across chunks (default: a few characters at a time)."""
    id: str = field(default_factory=lambda: _rand(32))

    def argument_text(self) -> str:
        if self.pieces is not None:
            return "".join(self.pieces)
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)

    def parts(self) -> list[str]:
        if self.pieces is not None:
            return list(self.pieces)
        text = self.argument_text()
        return [text[i : i + 6] for i in range(0, len(text), 6)] or [""]


@dataclass
class ToolCalls(Turn):
    """One or several tool calls, optionally after some text."""

    calls: list[Call] = field(default_factory=list)
    text: str = ""
    finish_reason: str = "tool_calls"


@dataclass
class HttpError(Turn):
    """An HTTP error before the stream, with llama-server's error body."""

    status: int = 500
    message: str = "Internal server error"
    type: str | None = None
    body: dict[str, Any] | str | None = None
    """Sent instead of the default body when given."""

    @classmethod
    def context_overflow(cls, n_prompt: int = 4613, n_ctx: int = 2048) -> HttpError:
        return cls(
            400,
            body={
                "error": {
                    "code": 400,
                    "type": "exceed_context_size_error",
                    "n_prompt_tokens": n_prompt,
                    "n_ctx": n_ctx,
                    "message": f"request ({n_prompt} tokens) exceeds the available context size "
                    f"({n_ctx} tokens), try increasing it",
                }
            },
        )

    def payload(self) -> dict[str, Any] | str:
        if self.body is not None:
            return self.body
        kind = self.type or _ERROR_TYPES.get(self.status, "server_error")
        return {"error": {"code": self.status, "message": self.message, "type": kind}}

    def response(self) -> web.Response:
        payload = self.payload()
        if isinstance(payload, str):
            return web.Response(status=self.status, text=payload, content_type="application/json")
        return web.json_response(payload, status=self.status, dumps=_dumps)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    429: "rate_limit_error",
    503: "unavailable_error",
}


@dataclass
class StreamError(Turn):
    """Some text, then `data: {"error": …}` with HTTP 200 and no `[DONE]` (as llama-server does)."""

    pieces: list[str] = field(default_factory=list)
    message: str = "The model produced output that does not match the expected peg-native format"
    code: int = 500
    type: str = "server_error"


@dataclass
class Disconnect(Turn):
    """Some text, then the stream just ends: no finish chunk, no `[DONE]`."""

    pieces: list[str] = field(default_factory=list)


@dataclass
class Malformed(Turn):
    """Some text, then a line that is not valid SSE/JSON, then `[DONE]`."""

    line: str = "data: {this is not json"
    pieces: list[str] = field(default_factory=list)


@dataclass
class Comments(Turn):
    """A stream that never says anything: response headers, then an SSE comment (`: ping`) every
    `every` seconds until the client goes away or the server stops (a backend stuck behind a proxy that
    keeps the connection alive)."""

    every: float = 0.05


@dataclass
class Raw(Turn):
    """Exact response bytes (e.g. a recorded fixture body), written chunk by chunk."""

    chunks: list[bytes] = field(default_factory=list)
    status: int = 200
    content_type: str = "text/event-stream"

    @classmethod
    def from_fixture(cls, path: str | Path) -> Raw:
        """The HTTP response recorded in a tests/fixtures/llama-server/*.txt file: status, content type
        and the body, split where the recorded chunked encoding split it."""
        data = Path(path).read_bytes()
        response = data[data.index(b"\n", data.index(b"##### RESPONSE")) + 1 :]
        head, _, body = response.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        chunks = [body]
        if headers.get("transfer-encoding") == "chunked":
            chunks, rest = [], body
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                if size == 0:
                    break
                chunks.append(rest[:size])
                rest = rest[size + 2 :]
        content_type = headers.get("content-type", "application/json").split(";")[0]
        return cls(chunks=chunks, status=status, content_type=content_type)


# -- the server ---------------------------------------------------------------------------------------


class ScriptedModel:
    def __init__(
        self,
        *,
        default: Turn | None = None,
        model_name: str = "stories260K.gguf",
        api_key: str | None = None,
        n_ctx: int | None = None,
        embedding_dims: int = 64,
        host: str = "127.0.0.1",
    ) -> None:
        self.default: Turn = default or Text("OK")
        self.host = host
        """Listen address: loopback, or e.g. the Docker bridge's gateway for a service in a container."""
        self.model_name = model_name
        self.api_key = api_key
        self.n_ctx = n_ctx
        """When set, a prompt of more words than this gets llama-server's context-overflow 400."""
        self.embedding_dims = embedding_dims
        self.loading = False
        """When True, /health and chat answer 503 "Loading model", as llama-server does at start-up."""
        self.requests: list[dict[str, Any]] = []
        """Every /v1/chat/completions body received, in order."""
        self.headers: list[dict[str, str]] = []
        """The headers of each of those requests."""
        self.embedding_requests: list[dict[str, Any]] = []
        self.first_token_at: list[float] = []
        """`time.perf_counter()` when each streamed answer's first content piece was written (benches)."""
        self.port = 0
        self._turns: deque[Turn] = deque()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The OpenAI-style base URL, ending in /v1."""
        return self.base_url + "/v1"

    def script(self, *turns: Turn) -> None:
        """Queue answers for the next chat requests, in order (thread-safe)."""
        for turn in turns:
            if not isinstance(turn, Turn):
                raise TypeError(f"not a Turn: {turn!r}")
            for gate in (turn.gate, turn.pause):
                if gate is not None and not isinstance(gate, Gate):
                    raise TypeError("gates must be model_server.Gate (the server runs in its own loop)")
        with self._lock:
            self._turns.extend(turns)

    @property
    def pending(self) -> int:
        """Scripted turns not yet consumed."""
        with self._lock:
            return len(self._turns)

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> ScriptedModel:
        self._thread = threading.Thread(target=self._thread_main, name="scripted-model", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("scripted model server did not start")
        if self._error is not None:
            raise RuntimeError("scripted model server failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        self._thread = None

    def __enter__(self) -> ScriptedModel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> ScriptedModel:
        return await asyncio.to_thread(self.start)

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.stop)

    def _thread_main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # reported to start(); never escapes the thread
            self._error = e
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = web.AppRunner(self._app(), handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, 0)
        await site.start()
        self.port = runner.addresses[0][1]
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_not_found_json])
        app.router.add_get("/health", self._health)
        for prefix in ("", "/v1"):
            app.router.add_post(prefix + "/chat/completions", self._chat)
            app.router.add_post(prefix + "/embeddings", self._embeddings)
            app.router.add_get(prefix + "/models", self._models)
        return app

    # -- handlers -----------------------------------------------------------------------------------

    async def _health(self, request: web.Request) -> web.Response:
        if self.loading:
            return _error(503, "Loading model", "unavailable_error")
        return web.json_response({"status": "ok"})

    async def _models(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        name = self.model_name
        return web.json_response(
            {
                "models": [{"name": name, "model": name, "type": "model", "capabilities": ["completion"]}],
                "object": "list",
                "data": [
                    {
                        "id": name,
                        "aliases": [name],
                        "tags": [],
                        "object": "model",
                        "created": int(time.time()),
                        "owned_by": "llamacpp",
                        "meta": {"n_ctx": self.n_ctx or 2048},
                    }
                ],
            }
        )

    async def _embeddings(self, request: web.Request) -> web.Response:
        if (denied := self._check_auth(request)) is not None:
            return denied
        body = await request.json()
        self.embedding_requests.append(body)
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            vector = embed(str(text), self.embedding_dims)
            item: dict[str, Any] = {"embedding": vector, "index": i, "object": "embedding"}
            if b64:
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
                item["encoding_format"] = "base64"
            data.append(item)
        tokens = sum(len(_WORD.findall(str(t))) + 1 for t in texts)
        return web.json_response(
            {
                "model": body.get("model", self.model_name),
                "object": "list",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "data": data,
            }
        )

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as e:
            return _error(400, f"[json.exception.parse_error.101] parse error: {e}", "invalid_request_error")
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if (denied := self._check_auth(request)) is not None:
            return denied
        if self.loading:
            return _error(503, "Loading model", "unavailable_error")
        if (invalid := self._validate(body)) is not None:
            return invalid
        with self._lock:
            turn = self._turns.popleft() if self._turns else self.default
        if turn.gate is not None and not await self._hold(turn.gate):
            return web.Response(status=503)
        reply = _Reply(self, body, turn, request)
        try:
            return await reply.send()
        except _Stopped:
            return reply.resp or web.Response(status=503)

    def _check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None or request.headers.get("Authorization") == f"Bearer {self.api_key}":
            return None
        return web.json_response(
            {"error": {"message": "Invalid API Key", "type": "authentication_error", "code": 401}}, status=401
        )

    def _validate(self, body: Any) -> web.Response | None:
        """The checks llama-server makes that a gateway could trip (see fixtures 5x_err_*)."""
        if not isinstance(body, dict) or "messages" not in body:
            return _error(400, "'messages' is required", "invalid_request_error")
        if not isinstance(body["messages"], list):
            return _error(400, "Expected 'messages' to be an array", "invalid_request_error")
        if body.get("n", 1) != 1:
            return _error(
                400,
                f"Field 'n': Value must be between 1 <= value <= 1, but got {body['n']}",
                "invalid_request_error",
            )
        for key in ("temperature", "top_p"):
            if key in body and body[key] is not None and not isinstance(body[key], int | float):
                return _error(400, f"Field '{key}': type must be number", "invalid_request_error")
        choice = body.get("tool_choice")
        if isinstance(choice, str) and choice not in ("none", "auto", "required"):
            return _error(400, f"Invalid tool_choice: {choice}", "invalid_request_error")
        for tool in body.get("tools") or []:
            if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
                return _error(
                    500, f"Failed to parse tools: Missing tool function: {json.dumps(tool)}", "server_error"
                )
        if self.n_ctx is not None and (n := prompt_tokens(body)) > self.n_ctx:
            return HttpError.context_overflow(n, self.n_ctx).response()
        return None

    async def _hold(self, gate: Gate) -> bool:
        """Wait for `gate`; False if the server is stopping instead."""
        assert self._stop is not None
        waits = [asyncio.ensure_future(gate.wait()), asyncio.ensure_future(self._stop.wait())]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
        return waits[0] in done and not self._stop.is_set()


class _Stopped(Exception):
    pass


class _Reply:
    """Writes one turn as llama-server would."""

    def __init__(self, server: ScriptedModel, body: dict[str, Any], turn: Turn, request: web.Request) -> None:
        self.server, self.body, self.turn, self.request = server, body, turn, request
        self.stream = bool(body.get("stream"))
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.id = "chatcmpl-" + _rand(32)
        self.created = int(time.time())
        self.pieces_sent = 0
        self.resp: web.StreamResponse | None = None

    async def send(self) -> web.StreamResponse:
        turn = self.turn
        if isinstance(turn, HttpError):
            return turn.response()
        if isinstance(turn, Raw):
            return await self._raw(turn)
        if not self.stream:
            return self._whole()
        resp = self.resp = web.StreamResponse(
            headers={"Server": "llama.cpp", "X-Accel-Buffering": "no", "Content-Type": "text/event-stream"}
        )
        await resp.prepare(self.request)
        if not isinstance(turn, Comments):
            await self._event({"role": "assistant", "content": None})
        if isinstance(turn, Text):
            for piece in turn.parts():
                await self._piece({"content": piece})
            await self._finish(turn.finish_reason)
        elif isinstance(turn, ToolCalls):
            for piece in Text(turn.text).parts():
                await self._piece({"content": piece})
            for i, call in enumerate(turn.calls):
                for j, piece in enumerate(call.parts()):
                    entry: dict[str, Any] = {"index": i, "function": {"arguments": piece}}
                    if j == 0:
                        entry = {
                            "index": i,
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": piece},
                        }
                    await self._piece({"tool_calls": [entry]})
            await self._finish(turn.finish_reason)
        elif isinstance(turn, StreamError):
            for piece in turn.pieces:
                await self._piece({"content": piece})
            await self._write({"error": {"code": turn.code, "message": turn.message, "type": turn.type}})
        elif isinstance(turn, Disconnect):
            for piece in turn.pieces:
                await self._piece({"content": piece})
        elif isinstance(turn, Comments):
            await self._comments(turn)
        elif isinstance(turn, Malformed):
            for piece in turn.pieces:
                await self._piece({"content": piece})
            await resp.write(turn.line.encode() + b"\n\n")
            await resp.write(b"data: [DONE]\n\n")
        await resp.write_eof()
        return resp

    def _whole(self) -> web.Response:
        turn = self.turn
        if isinstance(turn, StreamError):
            return HttpError(status=turn.code, message=turn.message, type=turn.type).response()
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        finish, completion = "stop", 1
        if isinstance(turn, Text):
            message["content"], finish, completion = turn.full(), turn.finish_reason, len(turn.parts())
        elif isinstance(turn, ToolCalls):
            message["content"] = turn.text
            message["tool_calls"] = [
                {"type": "function", "id": c.id, "function": {"name": c.name, "arguments": c.argument_text()}}
                for c in turn.calls
            ]
            finish, completion = turn.finish_reason, sum(len(c.parts()) for c in turn.calls)
        elif isinstance(turn, Malformed | Disconnect):
            return web.Response(text='{"choices":[{"finish_reason', content_type="application/json")
        return web.json_response(
            {
                "choices": [{"finish_reason": finish, "index": 0, "message": message}],
                "created": self.created,
                "model": self.server.model_name,
                "system_fingerprint": "b0-unknown",
                "object": "chat.completion",
                "usage": self._usage(completion),
                "id": self.id,
                "timings": _TIMINGS,
            },
            dumps=_dumps,
        )

    async def _comments(self, turn: Comments) -> None:
        assert self.resp is not None and self.server._stop is not None
        stop = self.server._stop
        while not stop.is_set():
            await self.resp.write(b": ping\n\n")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), turn.every)

    async def _raw(self, turn: Raw) -> web.StreamResponse:
        headers = {"Server": "llama.cpp", "Content-Type": turn.content_type}
        resp = self.resp = web.StreamResponse(status=turn.status, headers=headers)
        await resp.prepare(self.request)
        for chunk in turn.chunks:
            await self._pace()
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    async def _piece(self, delta: dict[str, Any]) -> None:
        turn = self.turn
        held = turn.pause is not None and self.pieces_sent == turn.pause_after
        if held and turn.pause is not None and not await self.server._hold(turn.pause):
            raise _Stopped
        self.pieces_sent += 1
        await self._event(delta)
        if self.pieces_sent == 1 and delta.get("content"):
            self.server.first_token_at.append(time.perf_counter())

    async def _finish(self, reason: str) -> None:
        final = self._chunk({}, reason)
        if self.include_usage:
            await self._write(final)
            usage = {**self._chunk(None, None), "choices": [], "usage": self._usage(self.pieces_sent)}
            await self._write({**usage, "timings": _TIMINGS})
        else:
            await self._write({**final, "timings": _TIMINGS})
        assert self.resp is not None
        await self.resp.write(b"data: [DONE]\n\n")

    async def _event(self, delta: dict[str, Any]) -> None:
        await self._write(self._chunk(delta, None))

    def _chunk(self, delta: dict[str, Any] | None, finish: str | None) -> dict[str, Any]:
        return {
            "choices": [{"finish_reason": finish, "index": 0, "delta": delta}],
            "created": self.created,
            "id": self.id,
            "model": self.server.model_name,
            "system_fingerprint": "b0-unknown",
            "object": "chat.completion.chunk",
        }

    async def _write(self, payload: dict[str, Any]) -> None:
        assert self.resp is not None
        await self._pace()
        await self.resp.write(b"data: " + _dumps(payload).encode() + b"\n\n")

    async def _pace(self) -> None:
        if self.turn.delay:
            await asyncio.sleep(self.turn.delay)

    def _usage(self, completion: int) -> dict[str, Any]:
        prompt = prompt_tokens(self.body)
        return {
            "completion_tokens": completion,
            "prompt_tokens": prompt,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0},
        }


_TIMINGS = {
    "cache_n": 0,
    "prompt_n": 1,
    "prompt_ms": 1.0,
    "prompt_per_token_ms": 1.0,
    "prompt_per_second": 1000.0,
    "predicted_n": 1,
    "predicted_ms": 1.0,
    "predicted_per_token_ms": 1.0,
    "predicted_per_second": 1000.0,
}


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response(
        {"error": {"code": status, "message": message, "type": kind}}, status=status, dumps=_dumps
    )


@web.middleware
async def _not_found_json(request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return web.json_response(
            {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}},
            status=404,
            dumps=_dumps,
        )


def prompt_tokens(body: dict[str, Any]) -> int:
    """The fake's token count: words in the messages' text (and in tool-call arguments)."""
    count = 0
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        content = m.get("content")
        if isinstance(content, list):
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        count += len(_WORD.findall(str(content or "")))
        for call in m.get("tool_calls") or []:
            count += len(_WORD.findall(str((call.get("function") or {}).get("arguments", ""))))
    return count


def embed(text: str, dims: int = 64) -> list[float]:
    """Deterministic hashed bag-of-words vector, L2-normalised (texts sharing words are close)."""
    vector = [0.0] * dims
    for word in _WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        h = int.from_bytes(digest, "little")
        vector[h % dims] += 1.0 if (h >> 32) & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector] if norm else vector
