"""Message attachments: ``file_search`` files go into the thread's vector store (created when missing)."""

from __future__ import annotations

from typing import Any

from aiohttp import web


async def attach_to_thread(request: web.Request, thread_id: str, attachments: list[dict[str, Any]]) -> None:
    file_ids = [a["file_id"] for a in attachments if any(t["type"] == "file_search" for t in a["tools"])]
    if not file_ids:
        return
    from agent.api.vector_stores import attach_thread_files

    await attach_thread_files(request, thread_id, file_ids)
