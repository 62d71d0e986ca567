"""Chunking with an approximate, deterministic token count.

No tokenizer can be downloaded here, so tokens are *estimated* (see :func:`count_tokens`): the text is
split by the regex ``\\w+|[^\\w\\s]`` into word runs and single punctuation characters; a punctuation
character counts 1 token, a word run counts ``ceil(n/5)`` tokens for its ``n`` non-CJK characters plus
1 per CJK/kana/hangul character. For English prose that is ~1.3 tokens per word (~0.75 words per
token), close to what BPE tokenizers such as cl100k produce.

Chunks are runs of whole whitespace-separated words, so boundaries always sit on whitespace. The
only exception is a single "word" longer than the chunk size (a base64 blob, minified JSON), which is
cut inside. Each chunk carries its text and ``[start, end)`` character offsets into the source text
(``text[start:end] == chunk.text``).

Strategies follow the Assistants API: ``{"type": "auto"}`` is 800 tokens with 400 overlap;
``{"type": "static", "static": {"max_chunk_size_tokens": 100..4096, "chunk_overlap_tokens": <= max/2}}``.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "AUTO_CHUNK_OVERLAP_TOKENS",
    "AUTO_MAX_CHUNK_SIZE_TOKENS",
    "Chunk",
    "ChunkingStrategy",
    "InvalidChunkingStrategy",
    "chunk_text",
    "count_tokens",
]

AUTO_MAX_CHUNK_SIZE_TOKENS = 800
AUTO_CHUNK_OVERLAP_TOKENS = 400
MIN_CHUNK_SIZE_TOKENS = 100
MAX_CHUNK_SIZE_TOKENS = 4096

_WORD = re.compile(r"\S+")
_PIECE = re.compile(r"\w+|[^\w\s]")
_CHARS_PER_TOKEN = 5


class InvalidChunkingStrategy(ValueError):
    """The chunking_strategy object is malformed or out of range (an HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    start: int  # character offset of the first character in the source text
    end: int  # character offset one past the last character
    tokens: int  # estimated token count
    index: int = 0  # position of the chunk in its file


@dataclass(frozen=True, slots=True)
class ChunkingStrategy:
    max_chunk_size_tokens: int = AUTO_MAX_CHUNK_SIZE_TOKENS
    chunk_overlap_tokens: int = AUTO_CHUNK_OVERLAP_TOKENS

    def __post_init__(self) -> None:
        for name in ("max_chunk_size_tokens", "chunk_overlap_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise InvalidChunkingStrategy(f"{name} must be an integer")
        if not MIN_CHUNK_SIZE_TOKENS <= self.max_chunk_size_tokens <= MAX_CHUNK_SIZE_TOKENS:
            raise InvalidChunkingStrategy(
                f"max_chunk_size_tokens must be between {MIN_CHUNK_SIZE_TOKENS} and {MAX_CHUNK_SIZE_TOKENS}"
            )
        if self.chunk_overlap_tokens < 0:
            raise InvalidChunkingStrategy("chunk_overlap_tokens must be non-negative")
        if self.chunk_overlap_tokens > self.max_chunk_size_tokens // 2:
            raise InvalidChunkingStrategy(
                "chunk_overlap_tokens must not exceed half of max_chunk_size_tokens"
            )

    @classmethod
    def auto(cls) -> ChunkingStrategy:
        return cls(AUTO_MAX_CHUNK_SIZE_TOKENS, AUTO_CHUNK_OVERLAP_TOKENS)

    @classmethod
    def from_request(cls, obj: Mapping[str, Any] | None) -> ChunkingStrategy:
        """Parse a request ``chunking_strategy`` (``None`` or missing type means auto)."""
        if obj is None:
            return cls.auto()
        if not isinstance(obj, Mapping):
            raise InvalidChunkingStrategy("chunking_strategy must be an object")
        kind = obj.get("type", "auto")
        if kind == "auto":
            return cls.auto()
        if kind != "static":
            raise InvalidChunkingStrategy(f"Invalid chunking_strategy type: {kind!r}")
        static = obj.get("static")
        if not isinstance(static, Mapping):
            raise InvalidChunkingStrategy("chunking_strategy.static is required for type 'static'")
        try:
            return cls(static["max_chunk_size_tokens"], static["chunk_overlap_tokens"])
        except KeyError as exc:
            raise InvalidChunkingStrategy(f"chunking_strategy.static.{exc.args[0]} is required") from None

    def to_response(self) -> dict[str, Any]:
        """The response form (auto is reported as the static values it stands for)."""
        return {
            "type": "static",
            "static": {
                "max_chunk_size_tokens": self.max_chunk_size_tokens,
                "chunk_overlap_tokens": self.chunk_overlap_tokens,
            },
        }


def _cjk(ch: str) -> bool:
    o = ord(ch)
    return 0x2E80 <= o <= 0x9FFF or 0xAC00 <= o <= 0xD7AF or 0xF900 <= o <= 0xFAFF or 0x20000 <= o <= 0x3FFFF


def _word_tokens(word: str) -> int:
    if word.isascii() and word.isalnum():  # fast path: the overwhelmingly common case
        return (len(word) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN
    total = 0
    for piece in _PIECE.findall(word):
        if not (piece[0].isalnum() or piece[0] == "_"):
            total += 1
        elif piece.isascii():
            total += (len(piece) + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN
        else:
            cjk = sum(1 for ch in piece if _cjk(ch))
            total += cjk + (len(piece) - cjk + _CHARS_PER_TOKEN - 1) // _CHARS_PER_TOKEN
    return total


def count_tokens(text: str) -> int:
    """Estimated token count of ``text`` (deterministic; see the module docstring)."""
    return sum(_word_tokens(m.group()) for m in _WORD.finditer(text))


def _split_long_word(word: str, offset: int, limit: int) -> list[tuple[int, int, int]]:
    """Cut an over-long word into (start, end, tokens) pieces of at most ``limit`` tokens."""
    out: list[tuple[int, int, int]] = []
    i = 0
    while i < len(word):
        lo, hi = i + 1, len(word)
        while lo < hi:  # largest end with tokens(word[i:end]) <= limit
            mid = (lo + hi + 1) // 2
            if _word_tokens(word[i:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        out.append((offset + i, offset + lo, _word_tokens(word[i:lo])))
        i = lo
    return out


def chunk_text(text: str, strategy: ChunkingStrategy | Mapping[str, Any] | None = None) -> list[Chunk]:
    """Split ``text`` into overlapping chunks of at most ``max_chunk_size_tokens`` estimated tokens.

    Consecutive chunks share at most ``chunk_overlap_tokens`` tokens (whole words, as many as fit).
    Whitespace-only text gives no chunks.
    """
    if not isinstance(strategy, ChunkingStrategy):
        strategy = ChunkingStrategy.from_request(strategy)
    limit = strategy.max_chunk_size_tokens
    overlap = strategy.chunk_overlap_tokens

    starts = array("q")
    ends = array("q")
    cum = array("q", [0])  # cum[i] = tokens of words [0, i)
    total = 0
    for m in _WORD.finditer(text):
        word = m.group()
        n = _word_tokens(word)
        if n <= limit:
            starts.append(m.start())
            ends.append(m.end())
            total += n
            cum.append(total)
        else:
            for s, e, t in _split_long_word(word, m.start(), limit):
                starts.append(s)
                ends.append(e)
                total += t
                cum.append(total)

    count = len(starts)
    chunks: list[Chunk] = []
    first = 0
    while first < count:
        # Largest `stop` with cum[stop] - cum[first] <= limit (at least one word: every unit fits).
        stop = max(first + 1, bisect_right(cum, cum[first] + limit) - 1)
        start_char, end_char = starts[first], ends[stop - 1]
        chunks.append(
            Chunk(text[start_char:end_char], start_char, end_char, cum[stop] - cum[first], len(chunks))
        )
        if stop >= count:
            break
        # Next chunk begins at the earliest word whose tail up to `stop` fits in `overlap` tokens,
        # and always after `first` so that the walk progresses.
        nxt = max(first + 1, bisect_left(cum, cum[stop] - overlap, first + 1, stop + 1))
        if cum[stop + 1] - cum[nxt] > limit:  # the overlap would leave no room for new words
            nxt = stop
        first = nxt
    return chunks
