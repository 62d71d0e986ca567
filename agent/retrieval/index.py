"""SearchIndex: BM25 (SQLite FTS5) search over vector-store chunks, optionally hybrid with embeddings.

Storage: one SQLite database file (WAL) holding ``files`` (one row per store/file pair, with the
file's attributes as JSON), ``chunks`` (offsets and an optional float32 unit vector) and the FTS5
table ``chunks_fts`` (the chunk text, ``porter unicode61`` tokenizer, rowid = ``chunks.id``).
SQLite runs in worker threads: one writer connection (writes are serialised) and two reader
connections, so searches proceed while a file is being indexed.

Scores (``Hit.score``, 0..1, higher is better):

* lexical: FTS5's BM25 ``s`` (sign flipped so that it is positive) squashed as ``s / (s + bm25_k)``
  (``bm25_k`` = 2.0 by default), so a hit's score does not depend on the other hits and
  ``score_threshold`` is meaningful across queries. Chunks matching no query term are not returned.
* hybrid (an :class:`Embedder` is given): ``lexical_weight * lexical + (1 - lexical_weight) *
  max(0, cosine)`` over the union of the best lexical candidates and all chunks with vectors in the
  searched files (cosine is computed exhaustively, in pure Python, for those chunks). With several
  query strings the best cosine over them is used.

Query text is never passed to FTS5 as syntax: it is split into ``\\w+`` terms, each term is quoted,
and the terms are OR-combined, so partial matches rank and quotes, parentheses, ``AND``, ``*``, ``-``
or ``:`` cannot cause errors. English stop words, and terms found in more than half of all chunks
(whose BM25 IDF FTS5 clamps to ~0), are dropped while other matching terms remain.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import json
import logging
import operator
import sqlite3
import threading
from array import array
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from .chunk import Chunk
from .embed import Embedder, EmbeddingError, normalize
from .filters import matches_filter, validate_filter
from .query import or_terms, prune_common_terms, query_terms

__all__ = ["Hit", "SearchIndex"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files(
    fid INTEGER PRIMARY KEY, store_id TEXT NOT NULL, file_id TEXT NOT NULL, filename TEXT NOT NULL,
    attributes TEXT, usage_bytes INTEGER NOT NULL, chunk_count INTEGER NOT NULL,
    UNIQUE(store_id, file_id));
CREATE INDEX IF NOT EXISTS files_by_file ON files(file_id);
CREATE TABLE IF NOT EXISTS chunks(
    id INTEGER PRIMARY KEY, fid INTEGER NOT NULL, chunk_index INTEGER NOT NULL,
    char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, vec BLOB);
CREATE INDEX IF NOT EXISTS chunks_by_file ON chunks(fid, chunk_index);
CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(
    text, tokenize = 'porter unicode61 remove_diacritics 2');
"""

_IDS = "SELECT value FROM json_each(?)"
_LEXICAL_SQL = f"""
SELECT c.id, c.fid, c.chunk_index, -bm25(chunks_fts) AS s
FROM chunks_fts CROSS JOIN chunks AS c ON c.id = chunks_fts.rowid
WHERE chunks_fts MATCH ? AND c.fid IN ({_IDS})
ORDER BY bm25(chunks_fts) LIMIT ?
"""


@dataclass(slots=True)
class Hit:
    store_id: str
    file_id: str
    filename: str
    score: float
    text: str
    attributes: dict[str, Any] | None
    chunk_index: int

    def to_search_result(self) -> dict[str, Any]:
        """An item of ``vector_stores.search``'s ``data`` (spec §1.7)."""
        return {
            "file_id": self.file_id,
            "filename": self.filename,
            "score": self.score,
            "attributes": self.attributes or {},
            "content": [{"type": "text", "text": self.text}],
        }

    def to_tool_result(self, include_content: bool = False) -> dict[str, Any]:
        """An item of a file_search tool call's ``results`` (spec §2.6)."""
        out: dict[str, Any] = {"file_id": self.file_id, "file_name": self.filename, "score": self.score}
        if include_content:
            out["content"] = [{"type": "text", "text": self.text}]
        return out


@dataclass(slots=True)
class _FileRow:
    store_id: str
    file_id: str
    filename: str
    attributes: dict[str, Any] | None


class SearchIndex:
    def __init__(
        self,
        path: str | Path,
        embedder: Embedder | None = None,
        *,
        lexical_weight: float = 0.5,
        bm25_k: float = 2.0,
        require_embeddings: bool = False,
        lexical_candidates: int = 100,
    ) -> None:
        """``require_embeddings``: re-raise embedder errors instead of indexing/searching lexically."""
        self.path = Path(path)
        self.embedder = embedder
        self.lexical_weight = lexical_weight
        self.bm25_k = bm25_k
        self.require_embeddings = require_embeddings
        self.lexical_candidates = lexical_candidates
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._writer: ThreadPoolExecutor | None = None
        self._readers: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="search-index-write")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="search-index-read")
        await self._run(self._writer, lambda conn: conn.executescript(_SCHEMA))
        await self._run(self._writer, _add_owner_column)

    async def close(self) -> None:
        writer, readers = self._writer, self._readers
        self._writer = self._readers = None
        if writer is None or readers is None:
            return

        def shutdown() -> None:
            writer.shutdown(wait=True)
            readers.shutdown(wait=True)
            with self._lock:
                conns, self._conns = self._conns, []
            for conn in conns:
                conn.close()

        await asyncio.to_thread(shutdown)

    async def __aenter__(self) -> SearchIndex:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA cache_size=-32000")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    async def _run(self, executor: ThreadPoolExecutor | None, fn: Callable[[sqlite3.Connection], T]) -> T:
        if executor is None:
            raise RuntimeError("SearchIndex is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, lambda: fn(self._connection()))

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def tx(conn: sqlite3.Connection) -> T:
            conn.execute("BEGIN IMMEDIATE")
            try:
                result = fn(conn)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
            return result

        return await self._run(self._writer, tx)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        return await self._run(self._readers, fn)

    # ------------------------------------------------------------------ writes

    async def add_file(
        self,
        store_id: str,
        file_id: str,
        filename: str,
        chunks: list[Chunk],
        attributes: dict[str, Any] | None,
        owner: str | None = None,
    ) -> int:
        """Index (or re-index) a file in a store; returns its usage_bytes (UTF-8 text + vector bytes).
        ``owner`` (the store's) lets searches filter by owner as a second line of defence."""
        blobs: list[bytes | None] = [None] * len(chunks)
        if self.embedder is not None and chunks:
            vectors = await self._embed([c.text for c in chunks])
            if vectors is not None:
                blobs = [array("f", normalize(v)).tobytes() for v in vectors]
        usage = sum(len(c.text.encode("utf-8")) for c in chunks) + sum(len(b) for b in blobs if b)
        attrs = json.dumps(attributes) if attributes is not None else None

        def write(conn: sqlite3.Connection) -> int:
            _delete_files(conn, "store_id = ? AND file_id = ?", (store_id, file_id))
            fid = conn.execute(
                "INSERT INTO files(store_id, file_id, filename, attributes, usage_bytes, chunk_count, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (store_id, file_id, filename, attrs, usage, len(chunks), owner),
            ).lastrowid
            base = conn.execute("SELECT COALESCE(MAX(id), 0) FROM chunks").fetchone()[0] + 1
            conn.executemany(
                "INSERT INTO chunks(id, fid, chunk_index, char_start, char_end, vec) VALUES (?,?,?,?,?,?)",
                ((base + i, fid, i, c.start, c.end, blobs[i]) for i, c in enumerate(chunks)),
            )
            conn.executemany(
                "INSERT INTO chunks_fts(rowid, text) VALUES (?, ?)",
                ((base + i, c.text) for i, c in enumerate(chunks)),
            )
            return usage

        return await self._write(write)

    async def remove_file(self, store_id: str, file_id: str) -> None:
        await self._write(
            lambda conn: _delete_files(conn, "store_id = ? AND file_id = ?", (store_id, file_id))
        )

    async def remove_store(self, store_id: str) -> None:
        await self._write(lambda conn: _delete_files(conn, "store_id = ?", (store_id,)))

    async def remove_file_everywhere(self, file_id: str) -> None:
        await self._write(lambda conn: _delete_files(conn, "file_id = ?", (file_id,)))

    async def update_attributes(self, store_id: str, file_id: str, attributes: dict[str, Any] | None) -> None:
        attrs = json.dumps(attributes) if attributes is not None else None
        await self._write(
            lambda conn: conn.execute(
                "UPDATE files SET attributes = ? WHERE store_id = ? AND file_id = ?",
                (attrs, store_id, file_id),
            )
        )

    # ------------------------------------------------------------------ reads

    async def stores_without_owner(self) -> list[str]:
        """Stores indexed before owners were recorded (backfilled at start-up)."""
        sql = "SELECT DISTINCT store_id FROM files WHERE owner IS NULL"
        return await self._read(lambda conn: [r[0] for r in conn.execute(sql)])

    async def set_owner(self, store_id: str, owner: str) -> None:
        await self._write(
            lambda conn: conn.execute("UPDATE files SET owner = ? WHERE store_id = ?", (owner, store_id))
        )

    async def file_chunks(self, store_id: str, file_id: str) -> list[str]:
        """The chunk texts of a file in order ([] if the file is not indexed in the store)."""
        sql = (
            "SELECT f.text FROM files AS d CROSS JOIN chunks AS c ON c.fid = d.fid "
            "CROSS JOIN chunks_fts AS f ON f.rowid = c.id "
            "WHERE d.store_id = ? AND d.file_id = ? ORDER BY c.chunk_index"
        )
        return await self._read(lambda conn: [r[0] for r in conn.execute(sql, (store_id, file_id))])

    async def usage_bytes(self, store_id: str, file_id: str | None = None) -> int:
        """usage_bytes of one file in a store, or of the whole store."""
        if file_id is None:
            sql = "SELECT COALESCE(SUM(usage_bytes), 0) FROM files WHERE store_id = ?"
            args: tuple[str, ...] = (store_id,)
        else:
            sql = "SELECT COALESCE(SUM(usage_bytes), 0) FROM files WHERE store_id = ? AND file_id = ?"
            args = (store_id, file_id)
        return await self._read(lambda conn: int(conn.execute(sql, args).fetchone()[0]))

    async def search(
        self,
        store_ids: list[str],
        query: str | list[str],
        filters: dict[str, Any] | None = None,
        max_num_results: int = 10,
        score_threshold: float = 0.0,
        *,
        owner: str | None = None,
    ) -> list[Hit]:
        """Best chunks for ``query`` across ``store_ids``, best first (see the module docstring).
        With ``owner``, only files indexed for that owner are searched (whatever ids the caller passed).

        Raises :class:`~agent.retrieval.filters.InvalidFilter` for a malformed filter.
        """
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
        run = functools.partial(
            self._search_sync, store_ids, terms, qvecs, filters, max_num_results, score_threshold, owner
        )
        return await self._read(run)

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

    def _search_sync(
        self,
        store_ids: list[str],
        terms: list[str],
        qvecs: list[list[float]] | None,
        filters: Mapping[str, Any] | None,
        limit: int,
        threshold: float,
        owner: str | None,
        conn: sqlite3.Connection,
    ) -> list[Hit]:
        files: dict[int, _FileRow] = {}
        sql = f"SELECT fid, store_id, file_id, filename, attributes FROM files WHERE store_id IN ({_IDS})"
        args: tuple[str, ...] = (json.dumps(store_ids),)
        if owner is not None:
            sql, args = sql + " AND owner = ?", (*args, owner)
        rows = conn.execute(sql, args)
        for fid, store_id, file_id, filename, attrs_json in rows:
            attrs = json.loads(attrs_json) if attrs_json is not None else None
            if matches_filter(filters, attrs):
                files[fid] = _FileRow(store_id, file_id, filename, attrs)
        if not files:
            return []
        fids = json.dumps(list(files))

        lexical: dict[int, tuple[int, int, float]] = {}  # chunk id -> (fid, chunk_index, normalised)
        if terms:
            match = or_terms(prune_common_terms(conn, terms))
            n = max(limit, self.lexical_candidates) if qvecs is not None else limit
            for cid, fid, index, s in conn.execute(_LEXICAL_SQL, (match, fids, n)):
                s = max(float(s), 0.0)
                lexical[cid] = (fid, index, s / (s + self.bm25_k))

        scored: list[tuple[float, int, int, int]]  # (score, chunk id, fid, chunk_index)
        if qvecs is None:
            scored = [(lex, cid, fid, idx) for cid, (fid, idx, lex) in lexical.items()]
        else:
            scored = self._hybrid(conn, fids, qvecs, lexical)
        best = heapq.nsmallest(limit, scored, key=lambda t: (-t[0], t[1]))
        best = [t for t in best if t[0] >= threshold and t[0] > 0.0]
        hits = []
        for score, cid, fid, idx in best:
            row = conn.execute("SELECT text FROM chunks_fts WHERE rowid = ?", (cid,)).fetchone()
            info = files[fid]
            hits.append(
                Hit(info.store_id, info.file_id, info.filename, round(score, 6), row[0], info.attributes, idx)
            )
        return hits

    def _hybrid(
        self,
        conn: sqlite3.Connection,
        fids: str,
        qvecs: list[list[float]],
        lexical: dict[int, tuple[int, int, float]],
    ) -> list[tuple[float, int, int, int]]:
        queries = [array("f", normalize(q)) for q in qvecs]
        dim = len(queries[0])
        w = self.lexical_weight
        scored: list[tuple[float, int, int, int]] = []
        seen: set[int] = set()
        sql = f"SELECT id, fid, chunk_index, vec FROM chunks WHERE fid IN ({_IDS}) AND vec IS NOT NULL"
        mul = operator.mul
        for cid, fid, idx, blob in conn.execute(sql, (fids,)):
            vec = array("f")
            vec.frombytes(blob)
            if len(vec) != dim:  # indexed with a different embedding model
                continue
            cos = max(sum(map(mul, q, vec)) for q in queries)
            lex = lexical[cid][2] if cid in lexical else 0.0
            scored.append((w * lex + (1.0 - w) * max(cos, 0.0), cid, fid, idx))
            seen.add(cid)
        for cid, (fid, idx, lex) in lexical.items():
            if cid not in seen:  # chunk without a vector: lexical part only
                scored.append((w * lex, cid, fid, idx))
        return scored


def _add_owner_column(conn: sqlite3.Connection) -> None:
    """Indexes made before owners were recorded gain the column (NULL until backfilled)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(files)")}
    if "owner" not in columns:
        conn.execute("ALTER TABLE files ADD COLUMN owner TEXT")


def _delete_files(conn: sqlite3.Connection, where: str, args: tuple[str, ...]) -> None:
    fids = [r[0] for r in conn.execute(f"SELECT fid FROM files WHERE {where}", args)]
    if not fids:
        return
    ids = json.dumps(fids)
    chunk_ids = conn.execute(f"SELECT id FROM chunks WHERE fid IN ({_IDS})", (ids,)).fetchall()
    conn.executemany("DELETE FROM chunks_fts WHERE rowid = ?", chunk_ids)
    conn.execute(f"DELETE FROM chunks WHERE fid IN ({_IDS})", (ids,))
    conn.execute(f"DELETE FROM files WHERE fid IN ({_IDS})", (ids,))
