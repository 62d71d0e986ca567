"""file_search as a run tool: searches the assistant's and the thread's vector stores."""

from __future__ import annotations

from typing import Any

from agent.retrieval import Index
from agent.tools.base import ToolContext, ToolOutput, function_schema

DEFAULT_RESULTS = 5


def store_ids(ctx: ToolContext) -> list[str]:
    ids: list[str] = []
    for owner_obj in (ctx.assistant, ctx.thread):
        fs = (owner_obj.get("tool_resources") or {}).get("file_search") or {}
        ids.extend(i for i in fs.get("vector_store_ids") or [] if i not in ids)
    return ids


class FileSearchTool:
    name = "file_search"
    step_type = "file_search"
    input_field: str | None = None

    def __init__(self, index: Index) -> None:
        self.index = index

    def schema(self) -> dict[str, Any]:
        return function_schema(
            "file_search",
            "Search the user's uploaded files. Cite what you use with the result's marker, e.g. 【0†file.txt】.",
            "query",
            "What to look for",
        )

    def start_record(self, call_id: str) -> dict[str, Any]:
        return {"id": call_id, "type": "file_search", "file_search": {}}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        query = arguments.get("query")
        options = next((t.get("file_search") or {} for t in ctx.tools if t["type"] == "file_search"), {})
        ranking = options.get("ranking_options") or {}
        threshold = float(ranking.get("score_threshold") or 0.0)
        record: dict[str, Any] = {
            "ranking_options": {"ranker": ranking.get("ranker") or "auto", "score_threshold": threshold},
            "results": [],
        }
        if not isinstance(query, str) or not query.strip():
            return ToolOutput("Error: file_search takes one string argument 'query'.", record)
        ids = store_ids(ctx)
        if not ids:
            return ToolOutput("No files are available to search.", record)
        hits = await self.index.search(
            ids, query, None, options.get("max_num_results") or DEFAULT_RESULTS, threshold
        )
        lines = []
        for hit in hits:
            marker = ctx.cite(hit.file_id, hit.filename)
            lines.append(f"{marker} {hit.text}")
            record["results"].append(
                {
                    "file_id": hit.file_id,
                    "file_name": hit.filename,
                    "score": hit.score,
                    "content": [{"type": "text", "text": hit.text}],
                }
            )
        record["_model_input"] = query
        text = "\n\n".join(lines) if lines else "No results."
        record["_model_output"] = text
        return ToolOutput(text, record)
