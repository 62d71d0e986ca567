"""Embedders for hybrid search.

:class:`Embedder` is the protocol :class:`~agent.retrieval.index.SearchIndex` uses;
:class:`OpenAIEmbedder` calls an OpenAI-compatible ``POST /v1/embeddings`` (e.g. ``llama-server
--embeddings --pooling mean``): request ``{"model", "input": [..]}``, response
``{"data": [{"embedding": [float, ...] | "<base64 float32>", "index": i}, ...]}``.

A server without an embeddings endpoint (404/405/501, or llama-server's "not supported" error) raises
:class:`EmbeddingsUnavailable`; any other failure raises :class:`EmbeddingError`. ``probe()`` turns
the former into ``False`` so callers can decide up front to run lexical-only.
"""

from __future__ import annotations

import base64
import json
import math
import struct
from typing import Any, Protocol, runtime_checkable

import aiohttp

__all__ = ["Embedder", "EmbeddingError", "EmbeddingsUnavailable", "OpenAIEmbedder", "normalize"]


@runtime_checkable
class Embedder(Protocol):
    async def embed(self, texts: list[str]) -> list[list[float]]:
        """One vector per input text, in order."""
        ...


class EmbeddingError(RuntimeError):
    """The embedding request failed (transient or malformed response)."""


class EmbeddingsUnavailable(EmbeddingError):
    """The server has no usable embeddings endpoint; fall back to lexical search."""


def normalize(vector: list[float]) -> list[float]:
    norm = math.sqrt(math.fsum(x * x for x in vector))
    return [x / norm for x in vector] if norm > 0 else list(vector)


_UNAVAILABLE_STATUS = frozenset({404, 405, 501})


class OpenAIEmbedder:
    """Embeddings from an OpenAI-compatible server.

    ``base_url`` may be given with or without the trailing ``/v1``. A new HTTP session is used per
    ``embed`` call unless ``session`` is given (the caller then owns and closes it).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        model: str = "default",
        *,
        batch_size: int = 64,
        timeout: float = 120.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        root = base_url.rstrip("/")
        self.url = root + ("/embeddings" if root.endswith("/v1") else "/v1/embeddings")
        self.api_key = api_key
        self.model = model
        self.batch_size = max(1, batch_size)
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session

    async def probe(self) -> bool:
        """True if the endpoint returns embeddings, False if the server has none (other errors raise)."""
        try:
            await self.embed(["probe"])
        except EmbeddingsUnavailable:
            return False
        return True

    async def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        if self._session is not None:
            return await self._embed_all(self._session, texts)
        async with aiohttp.ClientSession(timeout=self.timeout) as session:
            return await self._embed_all(session, texts)

    async def _embed_all(self, session: aiohttp.ClientSession, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), self.batch_size):
            out.extend(await self._embed_batch(session, texts[i : i + self.batch_size]))
        return out

    async def _embed_batch(self, session: aiohttp.ClientSession, texts: list[str]) -> list[list[float]]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        body = {"model": self.model, "input": texts}
        try:
            async with session.post(self.url, json=body, headers=headers, timeout=self.timeout) as resp:
                status = resp.status
                raw = await resp.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise EmbeddingError(
                f"embeddings request to {self.url} failed: {type(exc).__name__}: {exc}"
            ) from exc
        payload = _json_or_none(raw)
        if status != 200:
            message = _error_message(payload) or raw[:200].decode("utf-8", "replace")
            unsupported = "not support" in message.lower() or "--embedding" in message
            if status in _UNAVAILABLE_STATUS or unsupported:
                raise EmbeddingsUnavailable(
                    f"{self.url} has no embeddings endpoint (HTTP {status}: {message}); "
                    "start llama-server with --embeddings, or search lexically"
                )
            raise EmbeddingError(f"embeddings request to {self.url} failed: HTTP {status}: {message}")
        return _parse_vectors(payload, len(texts), self.url)


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _error_message(payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error")
        if isinstance(err, dict):
            return str(err.get("message", ""))
        if isinstance(err, str):
            return err
    return ""


def _parse_vectors(payload: Any, expected: int, url: str) -> list[list[float]]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or len(data) != expected:
        raise EmbeddingError(f"{url} returned a malformed embeddings response")
    vectors: list[list[float] | None] = [None] * expected
    for pos, item in enumerate(data):
        if not isinstance(item, dict):
            raise EmbeddingError(f"{url} returned a malformed embeddings item")
        index = item.get("index", pos)
        emb = item.get("embedding")
        if isinstance(emb, str):
            blob = base64.b64decode(emb)
            vec = list(struct.unpack(f"<{len(blob) // 4}f", blob[: len(blob) // 4 * 4]))
        elif isinstance(emb, list) and emb and isinstance(emb[0], list):
            raise EmbeddingsUnavailable(
                f"{url} returned per-token embeddings; start llama-server with --pooling mean (or cls/last)"
            )
        elif isinstance(emb, list) and all(isinstance(x, int | float) for x in emb):
            vec = [float(x) for x in emb]
        else:
            raise EmbeddingError(f"{url} returned a malformed embedding")
        if not isinstance(index, int) or not 0 <= index < expected or vectors[index] is not None:
            raise EmbeddingError(f"{url} returned bad embedding indexes")
        vectors[index] = vec
    return [v for v in vectors if v is not None]
