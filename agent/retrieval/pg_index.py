"""PgSearchIndex: the SearchIndex of index.py kept in PostgreSQL, so every replica searches the same index.

Same interface and scores as the SQLite index: lexical relevance is PostgreSQL's full-text ranking
(``ts_rank_cd`` over an ``english`` tsvector, normalised as r / (r + 1), so a hit's score does not
depend on the other hits), query terms OR-combined and never parsed as syntax; with an embedder, the
same hybrid ``lexical_weight * lexical + (1 - lexical_weight) * max(0, cosine)``, the unit vectors kept
in the database (float32 bytes). Tables ``search_file`` and ``search_chunk``: migration 0003.
"""

from __future__ import annotations

import heapq
import json
import logging
import operator
from array import array
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from .chunk import Chunk
from .embed import Embedder, EmbeddingError, normalize
from .filters import matches_filter, validate_filter
from .index import Hit
from .query import query_terms

log = logging.getLogger(__name__)
meta = sa.MetaData()
FILES = sa.Table(
    "search_file",
    meta,
    sa.Column("fid", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("store_id", sa.String(64), nullable=False),
    sa.Column("file_id", sa.String(64), nullable=False),
    sa.Column("filename", sa.Text, nullable=False),
    sa.Column("attributes", sa.Text),
    sa.Column("usage_bytes", sa.Integer, nullable=False),
    sa.Column("chunk_count", sa.Integer, nullable=False),
)
CHUNKS = sa.Table(
    "search_chunk",
    meta,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("fid", sa.Integer, nullable=False),
    sa.Column("chunk_index", sa.Integer, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("vec", sa.LargeBinary),
)
CONFIG: sa.ColumnClause[Any] = sa.literal_column("'english'::regconfig")


class PgSearchIndex:
    def __init__(
        self,
        engine: AsyncEngine,
        embedder: Embedder | None = None,
        *,
        lexical_weight: float = 0.5,
        require_embeddings: bool = False,
        lexical_candidates: int = 100,
    ) -> None:
        self.engine, self.embedder = engine, embedder
        self.lexical_weight = lexical_weight
        self.require_embeddings = require_embeddings
        self.lexical_candidates = lexical_candidates

    async def open(self) -> None:
        return None  # the tables come with the store's migrations

    async def close(self) -> None:
        return None  # the engine is the store's

    # ------------------------------------------------------------------ writes

    async def add_file(
        self,
        store_id: str,
        file_id: str,
        filename: str,
        chunks: list[Chunk],
        attributes: dict[str, Any] | None,
    ) -> int:
        """Index (or re-index) a file in a store; returns its usage_bytes (UTF-8 text + vector bytes)."""
        blobs: list[bytes | None] = [None] * len(chunks)
        if self.embedder is not None and chunks:
            vectors = await self._embed([c.text for c in chunks])
            if vectors is not None:
                blobs = [array("f", normalize(v)).tobytes() for v in vectors]
        usage = sum(len(c.text.encode("utf-8")) for c in chunks) + sum(len(b) for b in blobs if b)
        attrs = json.dumps(attributes) if attributes is not None else None
        async with self.engine.begin() as conn:
            await _delete_files(conn, FILES.c.store_id == store_id, FILES.c.file_id == file_id)
            fid = await conn.scalar(
                FILES.insert()
                .values(
                    store_id=store_id,
                    file_id=file_id,
                    filename=filename,
                    attributes=attrs,
                    usage_bytes=usage,
                    chunk_count=len(chunks),
                )
                .returning(FILES.c.fid)
            )
            if chunks:
                await conn.execute(
                    CHUNKS.insert(),
                    [
                        {"fid": fid, "chunk_index": i, "text": c.text, "vec": blobs[i]}
                        for i, c in enumerate(chunks)
                    ],
                )
        return usage

    async def remove_file(self, store_id: str, file_id: str) -> None:
        async with self.engine.begin() as conn:
            await _delete_files(conn, FILES.c.store_id == store_id, FILES.c.file_id == file_id)

    async def remove_store(self, store_id: str) -> None:
        async with self.engine.begin() as conn:
            await _delete_files(conn, FILES.c.store_id == store_id)

    async def remove_file_everywhere(self, file_id: str) -> None:
        async with self.engine.begin() as conn:
            await _delete_files(conn, FILES.c.file_id == file_id)

    async def update_attributes(self, store_id: str, file_id: str, attributes: dict[str, Any] | None) -> None:
        attrs = json.dumps(attributes) if attributes is not None else None
        q = FILES.update().where(FILES.c.store_id == store_id, FILES.c.file_id == file_id)
        async with self.engine.begin() as conn:
            await conn.execute(q.values(attributes=attrs))

    # ------------------------------------------------------------------ reads

    async def file_chunks(self, store_id: str, file_id: str) -> list[str]:
        q = (
            sa.select(CHUNKS.c.text)
            .join(FILES, FILES.c.fid == CHUNKS.c.fid)
            .where(FILES.c.store_id == store_id, FILES.c.file_id == file_id)
            .order_by(CHUNKS.c.chunk_index)
        )
        async with self.engine.connect() as conn:
            return [r[0] for r in await conn.execute(q)]

    async def usage_bytes(self, store_id: str, file_id: str | None = None) -> int:
        q = sa.select(sa.func.coalesce(sa.func.sum(FILES.c.usage_bytes), 0)).where(
            FILES.c.store_id == store_id
        )
        if file_id is not None:
            q = q.where(FILES.c.file_id == file_id)
        async with self.engine.connect() as conn:
            return int(await conn.scalar(q) or 0)

    async def search(
        self,
        store_ids: list[str],
        query: str | list[str],
        filters: dict[str, Any] | None = None,
        max_num_results: int = 10,
        score_threshold: float = 0.0,
    ) -> list[Hit]:
        if filters is not None:
            validate_filter(filters)
        if max_num_results < 1 or not store_ids:
            return []
        queries = [query] if isinstance(query, str) else [q for q in query if isinstance(q, str)]
        terms = query_terms(queries)
        qvecs: list[list[float]] | None = None
        if self.embedder is not None and any(q.strip() for q in queries):
            qvecs = await self._embed([q for q in queries if q.strip()])
        if not terms and qvecs is None:
            return []
        async with self.engine.connect() as conn:
            files = {}
            q = sa.select(
                FILES.c.fid, FILES.c.store_id, FILES.c.file_id, FILES.c.filename, FILES.c.attributes
            )
            for fid, store_id, file_id, filename, attrs_json in await conn.execute(
                q.where(FILES.c.store_id.in_(store_ids))
            ):
                attrs = json.loads(attrs_json) if attrs_json is not None else None
                if matches_filter(filters, attrs):
                    files[fid] = (store_id, file_id, filename, attrs)
            if not files:
                return []
            lexical: dict[int, tuple[int, int, float]] = {}
            if terms:
                n = max(max_num_results, self.lexical_candidates) if qvecs is not None else max_num_results
                for cid, fid, idx, s in await conn.execute(_lexical(list(files), terms, n)):
                    lexical[cid] = (fid, idx, max(float(s), 0.0))
            scored = [(lex, cid, fid, idx) for cid, (fid, idx, lex) in lexical.items()]
            if qvecs is not None:
                scored = await self._hybrid(conn, list(files), qvecs, lexical)
            best = heapq.nsmallest(max_num_results, scored, key=lambda t: (-t[0], t[1]))
            best = [t for t in best if t[0] >= score_threshold and t[0] > 0.0]
            ids = [t[1] for t in best]
            rows = await conn.execute(sa.select(CHUNKS.c.id, CHUNKS.c.text).where(CHUNKS.c.id.in_(ids)))
            texts = {cid: text for cid, text in rows}
        hits = []
        for score, cid, fid, idx in best:
            store_id, file_id, filename, attrs = files[fid]
            hits.append(Hit(store_id, file_id, filename, round(score, 6), texts[cid], attrs, idx))
        return hits

    async def _hybrid(
        self,
        conn: AsyncConnection,
        fids: list[int],
        qvecs: list[list[float]],
        lexical: dict[int, tuple[int, int, float]],
    ) -> list[tuple[float, int, int, int]]:
        queries = [array("f", normalize(q)) for q in qvecs]
        dim, w, mul = len(queries[0]), self.lexical_weight, operator.mul
        scored: list[tuple[float, int, int, int]] = []
        seen: set[int] = set()
        q = sa.select(CHUNKS.c.id, CHUNKS.c.fid, CHUNKS.c.chunk_index, CHUNKS.c.vec).where(
            CHUNKS.c.fid.in_(fids), CHUNKS.c.vec.is_not(None)
        )
        async for cid, fid, idx, blob in await conn.stream(q):
            vec = array("f")
            vec.frombytes(blob)
            if len(vec) != dim:  # indexed with a different embedding model
                continue
            cos = max(sum(map(mul, qv, vec)) for qv in queries)
            lex = lexical[cid][2] if cid in lexical else 0.0
            scored.append((w * lex + (1.0 - w) * max(cos, 0.0), cid, fid, idx))
            seen.add(cid)
        for cid, (fid, idx, lex) in lexical.items():
            if cid not in seen:
                scored.append((w * lex, cid, fid, idx))
        return scored

    async def _embed(self, texts: list[str]) -> list[list[float]] | None:
        assert self.embedder is not None
        try:
            vectors = await self.embedder.embed(texts)
            if len(vectors) != len(texts):
                raise EmbeddingError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        except EmbeddingError as exc:
            if self.require_embeddings:
                raise
            log.warning("embeddings unavailable, using lexical search only: %s", exc)
            return None
        return vectors


def _lexical(fids: list[int], terms: list[str], limit: int) -> sa.Select[Any]:
    """Chunks matching any term, ranked by ts_rank_cd normalised to r / (r + 1) (flag 32)."""
    query = sa.func.to_tsquery(CONFIG, sa.literal(" | ".join(f"'{t}'" for t in terms)))
    vector = sa.func.to_tsvector(CONFIG, CHUNKS.c.text)
    rank = sa.func.ts_rank_cd(vector, query, 32)
    return (
        sa.select(CHUNKS.c.id, CHUNKS.c.fid, CHUNKS.c.chunk_index, rank)
        .where(CHUNKS.c.fid.in_(fids), vector.op("@@")(query))
        .order_by(rank.desc(), CHUNKS.c.id)
        .limit(limit)
    )


async def _delete_files(conn: AsyncConnection, *where: Any) -> None:
    fids = [r[0] for r in await conn.execute(sa.select(FILES.c.fid).where(*where))]
    if fids:
        await conn.execute(sa.delete(CHUNKS).where(CHUNKS.c.fid.in_(fids)))
        await conn.execute(sa.delete(FILES).where(FILES.c.fid.in_(fids)))
