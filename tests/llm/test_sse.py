from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.llm.sse import SSEFormatError, iter_sse_data


async def feed(*chunks: bytes) -> AsyncIterator[bytes]:
    for c in chunks:
        yield c


async def test_lines_split_anywhere() -> None:
    got = [
        d
        async for d in iter_sse_data(
            feed(b'data: {"a"', b":1}\r\n\r\n: keep-alive\n\nevent: x\nda", b"ta: [DONE]")
        )
    ]
    assert got == ['{"a":1}', "[DONE]"]


async def test_events_without_blank_lines_between() -> None:
    assert [d async for d in iter_sse_data(feed(b"data: 1\ndata: 2\n"))] == ["1", "2"]


async def test_garbage_line() -> None:
    with pytest.raises(SSEFormatError, match="<html>"):
        [d async for d in iter_sse_data(feed(b"<html>\n"))]
