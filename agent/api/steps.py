"""/v1/threads/{thread_id}/runs/{run_id}/steps: list and retrieve (``include[]`` for file_search content)."""

from __future__ import annotations

from aiohttp import web

from agent.api.common import get_or_404, list_query, owner, page_response, store
from agent.engine.records import render_step as render
from agent.errors import not_found

routes = web.RouteTableDef()
CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def include_content(request: web.Request) -> bool:
    return CONTENT in request.query.getall("include[]", []) + request.query.getall("include", [])


@routes.get("/v1/threads/{thread_id}/runs/{run_id}/steps")
async def list_(request: web.Request) -> web.Response:
    m = request.match_info
    await get_or_404(request, "thread", m["thread_id"])
    await get_or_404(request, "run", m["run_id"], m["thread_id"])
    q = list_query(request)
    page = await store(request).list(
        "step", owner(request), parent=m["thread_id"], where={"run_id": m["run_id"]}, **q.model_dump()
    )
    keep = include_content(request)
    page.data = [render(s, keep) for s in page.data]
    return page_response(page)


@routes.get("/v1/threads/{thread_id}/runs/{run_id}/steps/{step_id}")
async def retrieve(request: web.Request) -> web.Response:
    m = request.match_info
    await get_or_404(request, "thread", m["thread_id"])
    await get_or_404(request, "run", m["run_id"], m["thread_id"])
    step = await get_or_404(request, "step", m["step_id"], m["thread_id"], label="run step")
    if step["run_id"] != m["run_id"]:  # a step of another run of this thread: unknown under this run
        raise not_found("run step", m["step_id"])
    return web.json_response(render(step, include_content(request)))
