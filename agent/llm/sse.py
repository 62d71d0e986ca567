"""Server-sent events, as OpenAI-compatible servers send them: the payload of each `data:` line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

_FIELDS = (b"data", b"event", b"id", b"retry")


class SSEFormatError(ValueError):
    """A line that is neither an SSE field, a comment nor blank."""


async def iter_sse_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """Yield each `data:` payload. Each line is its own payload (JSON chunks never span lines, and some
    servers omit the blank line between events); `event:`/`id:`/`retry:` lines and comments are
    skipped; anything else raises `SSEFormatError`."""
    buf = bytearray()
    async for chunk in chunks:
        buf += chunk
        while (nl := buf.find(b"\n")) >= 0:
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            data = _data(line)
            if data is not None:
                yield data
    if buf:
        data = _data(bytes(buf))
        if data is not None:
            yield data


def _data(line: bytes) -> str | None:
    line = line.rstrip(b"\r")
    if not line or line.startswith(b":"):
        return None
    field, colon, value = line.partition(b":")
    if not colon or field not in _FIELDS:
        raise SSEFormatError(line.decode("utf-8", "replace"))
    if field != b"data":
        return None
    return value.removeprefix(b" ").decode("utf-8", "replace")
