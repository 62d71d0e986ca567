from __future__ import annotations

import random

import pytest

from agent.retrieval import ChunkingStrategy, InvalidChunkingStrategy, chunk_text, count_tokens


def _corpus(n_words: int, seed: int = 7) -> str:
    rng = random.Random(seed)
    vocab = ["".join(rng.choice("abcdefghijklmnop") for _ in range(rng.randint(1, 11))) for _ in range(500)]
    words = []
    for i in range(n_words):
        words.append(rng.choice(vocab) + ("," if i % 17 == 0 else ""))
        if i % 40 == 39:
            words.append("\n\n")
    return " ".join(words)


def _static(size: int, overlap: int) -> dict[str, object]:
    return {"type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}}


def test_token_estimate_is_deterministic_and_plausible() -> None:
    assert count_tokens("") == 0
    assert count_tokens("the cat sat") == 3
    assert count_tokens("internationalization") == 4  # ceil(20 / 5)
    assert count_tokens("Hello, world!") == 4  # Hello , world !
    assert count_tokens("日本語") == 3
    prose = "The quick brown fox jumps over the lazy dog while the farmer watches from the porch. " * 20
    words = len(prose.split())
    assert 1.0 * words <= count_tokens(prose) <= 1.6 * words


def test_auto_strategy_is_800_with_400_overlap() -> None:
    text = _corpus(6000)
    chunks = chunk_text(text, {"type": "auto"})
    assert chunk_text(text) == chunks == chunk_text(text, None)
    assert ChunkingStrategy.from_request({"type": "auto"}) == ChunkingStrategy(800, 400)
    assert len(chunks) > 5
    assert all(c.tokens <= 800 for c in chunks)
    assert all(c.tokens >= 790 for c in chunks[:-1])  # full except the last
    _check_overlaps(text, chunks, 400)


def _check_overlaps(text: str, chunks: list, overlap: int) -> None:
    for i, c in enumerate(chunks):
        assert c.index == i
        assert text[c.start : c.end] == c.text
        assert c.tokens == count_tokens(c.text)
        assert not c.text[0].isspace() and not c.text[-1].isspace()
        assert c.start == 0 or text[c.start - 1].isspace()  # boundaries at whitespace
        assert c.end == len(text) or text[c.end].isspace()
    for prev, nxt in zip(chunks, chunks[1:], strict=False):
        assert prev.start < nxt.start and prev.end < nxt.end  # progress
        shared = count_tokens(text[nxt.start : prev.end]) if nxt.start < prev.end else 0
        assert shared <= overlap
        if overlap:
            assert shared >= overlap - 12  # as much overlap as whole words allow
        else:
            assert nxt.start >= prev.end
    # Everything is covered.
    assert chunks[0].start == len(text) - len(text.lstrip())
    assert chunks[-1].end == len(text.rstrip())
    covered_to = chunks[0].start
    for c in chunks:
        assert c.start <= covered_to or text[covered_to : c.start].isspace()
        covered_to = max(covered_to, c.end)


@pytest.mark.parametrize(("size", "overlap"), [(100, 0), (100, 50), (257, 100), (1000, 1), (4096, 2048)])
def test_static_sizes_and_overlaps(size: int, overlap: int) -> None:
    text = _corpus(12000, seed=size)
    chunks = chunk_text(text, _static(size, overlap))
    assert all(c.tokens <= size for c in chunks)
    assert all(c.tokens >= size - 12 for c in chunks[:-1])
    _check_overlaps(text, chunks, overlap)


def test_small_and_empty_inputs() -> None:
    assert chunk_text("") == []
    assert chunk_text("  \n\t ") == []
    (only,) = chunk_text("  hello world  ")
    assert (only.text, only.start, only.end, only.tokens) == ("hello world", 2, 13, 2)


def test_overlong_word_is_cut_to_the_limit() -> None:
    blob = "x" * 3000  # 600 tokens, no whitespace
    text = f"start {blob} end"
    chunks = chunk_text(text, _static(100, 50))
    assert all(c.tokens <= 100 for c in chunks)
    assert "".join(c.text for c in chunks if c.text not in ("start", "end")) == blob
    assert chunks[0].text.startswith("start") and chunks[-1].text.endswith("end")


@pytest.mark.parametrize(
    "bad",
    [
        {"type": "static", "static": {"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}},
        {"type": "static", "static": {"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}},
        {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}},
        {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": -1}},
        {"type": "static", "static": {"max_chunk_size_tokens": "200", "chunk_overlap_tokens": 0}},
        {"type": "static", "static": {"max_chunk_size_tokens": 200}},
        {"type": "static"},
        {"type": "other"},
    ],
)
def test_invalid_strategies(bad: dict[str, object]) -> None:
    with pytest.raises(InvalidChunkingStrategy):
        chunk_text("some text", bad)


def test_strategy_response_form() -> None:
    assert ChunkingStrategy.from_request(_static(300, 150)).to_response() == _static(300, 150)
    assert ChunkingStrategy.auto().to_response() == _static(800, 400)
