"""Turning user query text into a safe FTS5 MATCH expression (see index.py for the rationale)."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence

__all__ = ["build_match_query", "or_terms", "prune_common_terms", "query_terms"]

# fmt: off
_STOP_WORDS = frozenset([
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "how", "i",
    "in", "is", "it", "its", "of", "on", "or", "that", "the", "this", "to", "was", "what", "when",
    "where", "which", "who", "why", "will", "with", "you", "your", "do", "does", "did", "can"
])
# fmt: on
_TERM = re.compile(r"\w+")
_MAX_TERMS = 64


def query_terms(query: str | Sequence[str]) -> list[str]:
    """Distinct lower-cased ``\\w+`` terms of the query (stop words dropped unless nothing else is left)."""
    texts = [query] if isinstance(query, str) else list(query)
    terms: dict[str, None] = {}
    for text in texts:
        for term in _TERM.findall(text.lower()):
            terms.setdefault(term, None)
    words = list(terms)
    content = [t for t in words if t not in _STOP_WORDS]
    return (content or words)[:_MAX_TERMS]


def build_match_query(query: str | Sequence[str]) -> str:
    """An FTS5 MATCH expression OR-ing the quoted terms of ``query`` ("" when there are none)."""
    return or_terms(query_terms(query))


def or_terms(terms: Sequence[str]) -> str:
    return " OR ".join(f'"{t}"' for t in terms)


def prune_common_terms(conn: sqlite3.Connection, terms: list[str]) -> list[str]:
    """Drop terms found in more than half of all chunks, unless no other term occurs at all.

    FTS5 clamps the IDF of such terms to ~0, so they cannot change the ranking, but scoring their
    (huge) posting lists dominates query time. Each probe reads at most N/2 + 1 postings.
    """
    if len(terms) < 2:
        return terms
    half = int(conn.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]) // 2
    probe = "SELECT COUNT(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?)"
    kept = [t for t in terms if 0 < conn.execute(probe, (f'"{t}"', half + 1)).fetchone()[0] <= half]
    return kept or terms
