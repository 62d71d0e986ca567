"""The search index filters by owner (a second line of defence behind the API's ownership checks)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.retrieval import SearchIndex, chunk_text


async def test_search_sees_only_the_owners_files(tmp_path: Path) -> None:
    async with SearchIndex(tmp_path / "search.db") as index:
        text = "The launch code is kept in the blue folder."
        await index.add_file("vs_one", "file-1", "secret.txt", chunk_text(text), None, owner="one")
        assert [h.file_id for h in await index.search(["vs_one"], "launch code", owner="one")] == ["file-1"]
        assert await index.search(["vs_one"], "launch code", owner="two") == []  # a foreign store id
        assert len(await index.search(["vs_one"], "launch code")) == 1  # no owner given: not filtered


async def test_indexes_made_before_owners_gain_the_column(tmp_path: Path) -> None:
    path = tmp_path / "search.db"
    async with SearchIndex(path) as index:
        await index.add_file("vs_old", "file-1", "a.txt", chunk_text("blue folder"), None)
    with sqlite3.connect(path) as conn:  # the older layout: no owner column
        conn.execute("ALTER TABLE files DROP COLUMN owner")
    async with SearchIndex(path) as index:
        assert await index.stores_without_owner() == ["vs_old"]
        assert await index.search(["vs_old"], "blue folder", owner="one") == []
        await index.set_owner("vs_old", "one")
        assert len(await index.search(["vs_old"], "blue folder", owner="one")) == 1
        assert await index.stores_without_owner() == []
