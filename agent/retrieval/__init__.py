"""Retrieval for file_search: text extraction, chunking, and a BM25 (+ optional embeddings) index.

Typical ingestion::

    text = extract_text(data, filename)                  # UnsupportedFile / InvalidFile
    chunks = chunk_text(text, request.get("chunking_strategy"))
    usage_bytes = await index.add_file(vs_id, file_id, filename, chunks, attributes)

and search::

    hits = await index.search([vs_id], query, filters, max_num_results, score_threshold)
"""

from .chunk import (
    AUTO_CHUNK_OVERLAP_TOKENS,
    AUTO_MAX_CHUNK_SIZE_TOKENS,
    Chunk,
    ChunkingStrategy,
    InvalidChunkingStrategy,
    chunk_text,
    count_tokens,
)
from .embed import Embedder, EmbeddingError, EmbeddingsUnavailable, OpenAIEmbedder
from .extract import SUPPORTED_EXTENSIONS, ExtractionError, InvalidFile, UnsupportedFile, extract_text
from .filters import InvalidFilter, matches_filter, validate_filter
from .index import Hit, SearchIndex
from .pg_index import PgSearchIndex
from .query import build_match_query

Index = SearchIndex | PgSearchIndex  # SQLite's FTS5 file, or PostgreSQL's full-text search (replicas)

__all__ = [
    "AUTO_CHUNK_OVERLAP_TOKENS",
    "AUTO_MAX_CHUNK_SIZE_TOKENS",
    "SUPPORTED_EXTENSIONS",
    "Chunk",
    "ChunkingStrategy",
    "Embedder",
    "EmbeddingError",
    "EmbeddingsUnavailable",
    "ExtractionError",
    "Hit",
    "Index",
    "InvalidChunkingStrategy",
    "InvalidFile",
    "InvalidFilter",
    "OpenAIEmbedder",
    "PgSearchIndex",
    "SearchIndex",
    "UnsupportedFile",
    "build_match_query",
    "chunk_text",
    "count_tokens",
    "extract_text",
    "matches_filter",
    "validate_filter",
]
