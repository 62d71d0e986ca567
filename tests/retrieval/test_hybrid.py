"""Hybrid (BM25 + embeddings) ranking and the OpenAI-compatible embeddings client.

The embeddings server is a real aiohttp server on loopback that answers in llama-server's wire format
(llama-server's ``/v1/embeddings``).
"""

from __future__ import annotations

import base64
import re
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from agent.retrieval import (
    Embedder,
    EmbeddingError,
    EmbeddingsUnavailable,
    OpenAIEmbedder,
    SearchIndex,
    chunk_text,
)

CONCEPTS = [
    {"car", "cars", "automobile", "vehicle", "engine", "motor", "sedan", "truck"},
    {"apple", "apples", "banana", "bananas", "fruit", "orchard", "pear"},
    {"money", "tax", "bank", "loan", "finance", "invoice"},
]


def concept_vector(text: str) -> list[float]:
    """A deterministic 'semantic' embedding: one dimension per concept, plus a small constant."""
    words = re.findall(r"\w+", text.lower())
    return [float(sum(w in c for w in words)) for c in CONCEPTS] + [0.05]


class ConceptEmbedder:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.calls.append(list(texts))
        return [concept_vector(t) for t in texts]


class BrokenEmbedder:
    async def embed(self, texts: list[str]) -> list[list[float]]:
        raise EmbeddingsUnavailable("no embeddings here")


DOCS = {
    "file-car": "The sedan needs an oil change and the motor was serviced last spring.",
    "file-fruit": "Pears and apples ripen in the orchard during autumn.",
    "file-bank": "The bank approved the loan; keep every invoice for the tax return.",
    "file-manual": "Automobile owners manual: check tyre pressure monthly.",
}


async def _fill(idx: SearchIndex) -> None:
    for file_id, text in DOCS.items():
        await idx.add_file("vs", file_id, f"{file_id}.txt", chunk_text(text), {"kind": file_id[5:]})


def test_embedders_satisfy_protocol() -> None:
    assert isinstance(ConceptEmbedder(), Embedder)
    assert isinstance(OpenAIEmbedder("http://127.0.0.1:1"), Embedder)


async def test_semantic_match_without_shared_words(tmp_path: Path) -> None:
    query = "vehicle maintenance"  # no document contains these words
    async with SearchIndex(tmp_path / "lex.db") as lexical:
        await _fill(lexical)
        assert await lexical.search(["vs"], query) == []
    embedder = ConceptEmbedder()
    async with SearchIndex(tmp_path / "hyb.db", embedder) as hybrid:
        await _fill(hybrid)
        hits = await hybrid.search(["vs"], query, max_num_results=2)
        assert {h.file_id for h in hits} == {"file-car", "file-manual"}
        assert all(0.0 < h.score <= 1.0 for h in hits)
        assert embedder.calls[-1] == [query]


async def test_lexical_and_semantic_scores_combine(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "hyb.db", ConceptEmbedder()) as idx:
        await _fill(idx)
        # "automobile" is a literal word in the manual and semantically about cars: the manual,
        # which wins on both signals, beats the car file, which only wins semantically.
        hits = await idx.search(["vs"], "automobile")
        assert [h.file_id for h in hits[:2]] == ["file-manual", "file-car"]
        assert hits[0].score > hits[1].score
        # Filters apply to semantic candidates too.
        hits = await idx.search(["vs"], "automobile", filters={"type": "eq", "key": "kind", "value": "car"})
        assert [h.file_id for h in hits] == ["file-car"]
        # Several queries: each contributes its best match.
        hits = await idx.search(["vs"], ["vehicle", "fruit"], max_num_results=3)
        assert {h.file_id for h in hits} == {"file-car", "file-manual", "file-fruit"}


async def test_lexical_weight_one_is_pure_bm25(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "w.db", ConceptEmbedder(), lexical_weight=1.0) as idx:
        await _fill(idx)
        assert await idx.search(["vs"], "vehicle maintenance") == []
        assert [h.file_id for h in await idx.search(["vs"], "orchard")] == ["file-fruit"]


async def test_embedder_failure_falls_back_to_lexical(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "b.db", BrokenEmbedder()) as idx:
        await _fill(idx)
        hits = await idx.search(["vs"], "orchard apples")
        assert [h.file_id for h in hits] == ["file-fruit"]
    async with SearchIndex(tmp_path / "strict.db", BrokenEmbedder(), require_embeddings=True) as idx:
        with pytest.raises(EmbeddingsUnavailable):
            await idx.add_file("vs", "f", "f.txt", chunk_text("text"), None)


async def test_vectors_count_towards_usage_bytes(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "u.db", ConceptEmbedder()) as idx:
        text = "apples and pears"
        usage = await idx.add_file("vs", "f", "f.txt", chunk_text(text), None)
        assert usage == len(text) + 4 * len(concept_vector(text))


# --------------------------------------------------------------------------- OpenAIEmbedder

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post("/v1/embeddings", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


def _llama_response(vectors: list[Any], order: list[int] | None = None) -> dict[str, Any]:
    order = order if order is not None else list(range(len(vectors)))
    return {
        "model": "x",
        "object": "list",
        "usage": {"prompt_tokens": 12, "total_tokens": 12},
        "data": [{"embedding": vectors[i], "index": i, "object": "embedding"} for i in order],
    }


async def test_openai_embedder_wire_format(
    serve: Callable[[Handler], Awaitable[str]], tmp_path: Path
) -> None:
    seen: list[tuple[dict[str, Any], str | None]] = []

    async def handler(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append((body, request.headers.get("Authorization")))
        vectors = [concept_vector(t) for t in body["input"]]
        return web.json_response(_llama_response(vectors, order=list(reversed(range(len(vectors))))))

    base = await serve(handler)
    emb = OpenAIEmbedder(base + "/v1/", api_key="sk-test", model="nomic", batch_size=2)
    out = await emb.embed(["my car", "an apple", "the bank"])
    assert out == [concept_vector("my car"), concept_vector("an apple"), concept_vector("the bank")]
    assert [b for b, _ in seen] == [
        {"model": "nomic", "input": ["my car", "an apple"]},
        {"model": "nomic", "input": ["the bank"]},
    ]
    assert {auth for _, auth in seen} == {"Bearer sk-test"}
    assert await emb.embed([]) == []
    assert await OpenAIEmbedder(base).probe() is True

    async with SearchIndex(tmp_path / "e.db", OpenAIEmbedder(base)) as idx:
        await _fill(idx)
        assert (await idx.search(["vs"], "vehicle"))[0].file_id in {"file-car", "file-manual"}


async def test_openai_embedder_base64(serve: Callable[[Handler], Awaitable[str]]) -> None:
    async def handler(request: web.Request) -> web.Response:
        blob = base64.b64encode(struct.pack("<3f", 0.5, -1.0, 2.0)).decode()
        return web.json_response(_llama_response([blob]))

    assert await OpenAIEmbedder(await serve(handler)).embed(["x"]) == [[0.5, -1.0, 2.0]]


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (501, {"error": {"code": 501, "message": "This server does not support embeddings. Start it with "
                         "`--embeddings`", "type": "not_supported_error"}}),
        (404, {"error": {"code": 404, "message": "File Not Found", "type": "not_found_error"}}),
        (200, _llama_response([[[0.1, 0.2], [0.3, 0.4]]])),  # --pooling none: per-token vectors
    ],
)  # fmt: skip
async def test_openai_embedder_unavailable(
    serve: Callable[[Handler], Awaitable[str]], status: int, payload: dict[str, Any]
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(payload, status=status)

    emb = OpenAIEmbedder(await serve(handler))
    with pytest.raises(EmbeddingsUnavailable) as info:
        await emb.embed(["hello"])
    assert "embeddings" in str(info.value)
    assert await emb.probe() is False


@pytest.mark.parametrize(
    ("status", "payload"),
    [
        (500, {"error": {"code": 500, "message": "boom", "type": "server_error"}}),
        (200, {"object": "list", "data": []}),
        (200, {"data": [{"embedding": "oops", "index": 0}, {"embedding": [1.0], "index": 0}]}),
    ],
)
async def test_openai_embedder_errors(
    serve: Callable[[Handler], Awaitable[str]], status: int, payload: dict[str, Any]
) -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(payload, status=status)

    emb = OpenAIEmbedder(await serve(handler))
    with pytest.raises(EmbeddingError) as info:
        await emb.embed(["hello"] * (len(payload.get("data", [])) or 1))
    assert not isinstance(info.value, EmbeddingsUnavailable)


async def test_openai_embedder_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EmbeddingError):
        await OpenAIEmbedder(f"http://127.0.0.1:{port}").embed(["x"])
