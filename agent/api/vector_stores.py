"""/v1/vector_stores (filled in by the file_search work)."""

from __future__ import annotations

from aiohttp import web

from agent.api.common import ToolResources

routes = web.RouteTableDef()


async def create_helper_stores(request: web.Request, res: ToolResources | None) -> list[str] | None:
    return None


async def attach_thread_files(request: web.Request, thread_id: str, file_ids: list[str]) -> None:
    return None
