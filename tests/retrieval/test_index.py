from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.retrieval import InvalidFilter, SearchIndex, build_match_query, chunk_text, extract_text
from tests.retrieval.pdfgen import make_pdf

DOCS = {
    "file-solar": ("solar.txt", "Solar panels convert sunlight into electricity using photovoltaic cells. "
                   "Panel efficiency depends on temperature and the angle of the sun."),
    "file-bread": ("bread.md", "# Sourdough\nBaking sourdough bread needs a starter, flour, water and salt. "
                   "Proof the dough overnight before baking in a hot oven."),
    "file-rust": ("borrow.rs", "// The borrow checker enforces ownership rules in Rust.\n"
                  "fn main() { let s = String::from(\"hello\"); let r = &s; println!(\"{}\", r); }"),
    "file-tax": ("tax.html", "<html><body><h1>Tax guide</h1><p>File your income tax return before April. "
                 "Keep receipts for deductions.</p><script>var sunlight = 1;</script></body></html>"),
}  # fmt: skip
ATTRS: dict[str, dict[str, Any]] = {
    "file-solar": {"topic": "energy", "year": 2023, "public": True},
    "file-bread": {"topic": "food", "year": 2019, "public": True},
    "file-rust": {"topic": "code", "year": 2021, "public": False},
    "file-tax": {"topic": "finance", "year": 2024, "public": False, "region": "us"},
}


@pytest.fixture
async def index(tmp_path: Path) -> AsyncIterator[SearchIndex]:
    idx = SearchIndex(tmp_path / "sub" / "search.db")
    await idx.open()
    for file_id, (name, body) in DOCS.items():
        text = extract_text(body.encode(), name)
        await idx.add_file("vs_a", file_id, name, chunk_text(text), ATTRS[file_id])
    yield idx
    await idx.close()


async def test_relevant_file_ranks_first(index: SearchIndex) -> None:
    hits = await index.search(["vs_a"], "how efficient are photovoltaic solar panels?")
    assert hits[0].file_id == "file-solar"
    assert hits[0].filename == "solar.txt"
    assert hits[0].store_id == "vs_a"
    assert hits[0].attributes == ATTRS["file-solar"]
    assert hits[0].chunk_index == 0
    assert "photovoltaic" in hits[0].text
    assert 0.0 < hits[0].score < 1.0
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)

    assert (await index.search(["vs_a"], "sourdough starter"))[0].file_id == "file-bread"
    assert (await index.search(["vs_a"], "ownership borrow checker"))[0].file_id == "file-rust"
    assert (await index.search(["vs_a"], "income tax deductions"))[0].file_id == "file-tax"


async def test_partial_matches_rank_and_stemming(index: SearchIndex) -> None:
    # Only one of the terms occurs anywhere: OR semantics still find it.
    hits = await index.search(["vs_a"], "zebra unicorn baked")
    assert [h.file_id for h in hits] == ["file-bread"]  # "baked" ~ "baking" (porter)
    # A chunk matching more terms outranks one matching fewer.
    hits = await index.search(["vs_a"], "sun bread")
    assert {h.file_id for h in hits} == {"file-solar", "file-bread"}
    hits = await index.search(["vs_a"], "sunlight temperature angle bread")
    assert hits[0].file_id == "file-solar"


async def test_script_text_is_not_indexed(index: SearchIndex) -> None:
    hits = await index.search(["vs_a"], "sunlight")
    assert [h.file_id for h in hits] == ["file-solar"]


@pytest.mark.parametrize(
    "query",
    ['"unbalanced', "(solar", "solar AND", "NOT", "solar OR", "NEAR(solar panels)", "sol*", "-solar",
     "topic:solar", "text:solar", "^solar", "solar + panels", "'; DROP TABLE files; --", "\\", "{}[]",
     "\x00", "solar\"panels\"", "AND OR NOT"],
)  # fmt: skip
async def test_unsafe_queries_do_not_raise(index: SearchIndex, query: str) -> None:
    hits = await index.search(["vs_a"], query)
    if "solar" in query.lower():
        assert hits and hits[0].file_id == "file-solar"


async def test_empty_and_punctuation_only_queries(index: SearchIndex) -> None:
    assert await index.search(["vs_a"], "") == []
    assert await index.search(["vs_a"], "?!*()") == []
    assert await index.search(["vs_a"], []) == []
    assert await index.search([], "solar") == []
    assert await index.search(["vs_missing"], "solar") == []


def test_match_query_is_quoted_and_or_combined() -> None:
    assert build_match_query('What is "solar" AND (wind*)?') == '"solar" OR "wind"'
    assert build_match_query(["the", "of"]) == '"the" OR "of"'  # stop words kept when alone
    assert build_match_query(["Solar power", "solar panels"]) == '"solar" OR "power" OR "panels"'


async def test_query_list_and_limits(index: SearchIndex) -> None:
    hits = await index.search(["vs_a"], ["photovoltaic", "sourdough"], max_num_results=10)
    assert {h.file_id for h in hits} == {"file-solar", "file-bread"}
    hits = await index.search(["vs_a"], "the and sun bread tax rust", max_num_results=2)
    assert len(hits) == 2
    assert await index.search(["vs_a"], "solar", max_num_results=0) == []


async def test_score_threshold(index: SearchIndex) -> None:
    hits = await index.search(["vs_a"], "sun bread")
    top = hits[0].score
    assert await index.search(["vs_a"], "sun bread", score_threshold=top + 1e-6) == []
    assert len(await index.search(["vs_a"], "sun bread", score_threshold=top)) >= 1


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"type": "eq", "key": "topic", "value": "food"}, {"file-bread"}),
        ({"type": "ne", "key": "topic", "value": "food"}, {"file-solar", "file-rust", "file-tax"}),
        ({"type": "gt", "key": "year", "value": 2021}, {"file-solar", "file-tax"}),
        ({"type": "gte", "key": "year", "value": 2021}, {"file-solar", "file-tax", "file-rust"}),
        ({"type": "lt", "key": "year", "value": 2021}, {"file-bread"}),
        ({"type": "lte", "key": "year", "value": 2021}, {"file-bread", "file-rust"}),
        ({"type": "in", "key": "topic", "value": ["code", "finance"]}, {"file-rust", "file-tax"}),
        ({"type": "nin", "key": "topic", "value": ["code", "finance"]}, {"file-solar", "file-bread"}),
        ({"type": "eq", "key": "public", "value": True}, {"file-solar", "file-bread"}),
        ({"type": "eq", "key": "region", "value": "us"}, {"file-tax"}),
        (
            {"type": "or", "filters": [
                {"type": "eq", "key": "topic", "value": "code"},
                {"type": "and", "filters": [
                    {"type": "eq", "key": "public", "value": True},
                    {"type": "gte", "key": "year", "value": 2020},
                ]},
            ]},
            {"file-rust", "file-solar"},
        ),
        ({"type": "and", "filters": [{"type": "eq", "key": "topic", "value": "food"},
                                      {"type": "eq", "key": "public", "value": False}]}, set()),
    ],
)  # fmt: skip
async def test_filters(index: SearchIndex, flt: dict[str, Any], expected: set[str]) -> None:
    query = "sunlight sourdough borrow tax"  # matches every file
    assert len(await index.search(["vs_a"], query)) == 4
    hits = await index.search(["vs_a"], query, filters=flt)
    assert {h.file_id for h in hits} == expected


async def test_invalid_filter_raises(index: SearchIndex) -> None:
    with pytest.raises(InvalidFilter):
        await index.search(["vs_a"], "solar", filters={"type": "regex", "key": "x", "value": "y"})


async def test_update_attributes(index: SearchIndex) -> None:
    flt = {"type": "eq", "key": "topic", "value": "astronomy"}
    assert await index.search(["vs_a"], "sunlight", filters=flt) == []
    await index.update_attributes("vs_a", "file-solar", {"topic": "astronomy"})
    hits = await index.search(["vs_a"], "sunlight", filters=flt)
    assert [(h.file_id, h.attributes) for h in hits] == [("file-solar", {"topic": "astronomy"})]
    await index.update_attributes("vs_a", "file-solar", None)
    (hit,) = await index.search(["vs_a"], "sunlight")
    assert hit.attributes is None


async def test_stores_are_separate_and_removal(index: SearchIndex) -> None:
    name, body = DOCS["file-solar"]
    chunks = chunk_text(body)
    usage = await index.add_file("vs_b", "file-solar", name, chunks, None)
    assert usage == len(body.encode())
    await index.add_file("vs_b", "file-only-b", "wind.txt", chunk_text("Wind turbines and solar farms"), None)
    assert {h.store_id for h in await index.search(["vs_a"], "solar")} == {"vs_a"}
    both = await index.search(["vs_a", "vs_b"], "solar")
    assert {(h.store_id, h.file_id) for h in both} == {
        ("vs_a", "file-solar"), ("vs_b", "file-solar"), ("vs_b", "file-only-b")
    }  # fmt: skip
    assert await index.usage_bytes("vs_b", "file-solar") == usage

    await index.remove_file("vs_a", "file-solar")
    assert await index.search(["vs_a"], "photovoltaic") == []
    assert await index.file_chunks("vs_a", "file-solar") == []
    assert [h.store_id for h in await index.search(["vs_a", "vs_b"], "photovoltaic")] == ["vs_b"]

    await index.add_file("vs_a", "file-solar", name, chunks, None)
    await index.remove_file_everywhere("file-solar")
    assert await index.search(["vs_a", "vs_b"], "photovoltaic") == []
    assert (await index.search(["vs_a"], "sourdough"))[0].file_id == "file-bread"

    await index.remove_store("vs_a")
    assert await index.search(["vs_a"], "sourdough tax rust") == []
    assert [h.file_id for h in await index.search(["vs_b"], "wind")] == ["file-only-b"]
    assert await index.usage_bytes("vs_a") == 0
    await index.remove_store("vs_never")  # no-op


async def test_readd_replaces_and_file_chunks(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "i.db") as idx:
        words = " ".join(f"word{i}" for i in range(400))
        chunks = chunk_text(words, {"type": "static", "static": {"max_chunk_size_tokens": 100,
                                                                  "chunk_overlap_tokens": 20}})  # fmt: skip
        assert len(chunks) > 3
        await idx.add_file("vs", "f1", "w.txt", chunks, None)
        assert await idx.file_chunks("vs", "f1") == [c.text for c in chunks]
        await idx.add_file("vs", "f1", "w.txt", chunk_text("replacement text"), {"v": 2})
        assert await idx.file_chunks("vs", "f1") == ["replacement text"]
        assert await idx.search(["vs"], "word7") == []
        await idx.add_file("vs", "empty", "e.txt", [], None)
        assert await idx.file_chunks("vs", "empty") == []


async def test_persists_across_reopen_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "persist.db"
    pdf = make_pdf([["Hydraulic pumps move fluid"], ["Maintenance schedule for pumps"]])
    async with SearchIndex(path) as idx:
        await idx.add_file("vs", "file-pdf", "pumps.pdf", chunk_text(extract_text(pdf, "pumps.pdf")), None)
    async with SearchIndex(path) as idx:
        (hit,) = await idx.search(["vs"], "hydraulic maintenance")
        assert hit.filename == "pumps.pdf" and "Maintenance schedule" in hit.text
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


async def test_closed_index_raises(tmp_path: Path) -> None:
    idx = SearchIndex(tmp_path / "x.db")
    with pytest.raises(RuntimeError):
        await idx.search(["vs"], "anything")
    await idx.close()  # closing an unopened index is fine


async def test_very_common_terms_are_pruned_without_losing_matches(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "c.db") as idx:
        for i in range(6):
            extra = " rare gearbox" if i == 4 else ""
            await idx.add_file("vs", f"f{i}", f"{i}.txt", chunk_text(f"common words here{extra}"), None)
        hits = await idx.search(["vs"], "common gearbox")
        assert [h.file_id for h in hits] == ["f4"]
        # If no other term occurs, the common ones are still searched.
        hits = await idx.search(["vs"], "common xyzzy", max_num_results=10)
        assert len(hits) == 6
        assert len(await idx.search(["vs"], "common")) == 6


async def test_hit_wire_shapes(index: SearchIndex) -> None:
    (hit, *_) = await index.search(["vs_a"], "photovoltaic")
    assert hit.to_search_result() == {
        "file_id": "file-solar",
        "filename": "solar.txt",
        "score": hit.score,
        "attributes": ATTRS["file-solar"],
        "content": [{"type": "text", "text": hit.text}],
    }
    assert hit.to_tool_result() == {"file_id": "file-solar", "file_name": "solar.txt", "score": hit.score}
    assert hit.to_tool_result(include_content=True)["content"] == [{"type": "text", "text": hit.text}]
