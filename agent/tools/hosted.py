"""The Responses API's built-in tools: ``code_interpreter`` in a container and ``file_search`` over the
tool's own vector stores. The model sees the same one-string-argument functions as in Assistants; what
differs is where the state lives (a container of the key, not the thread) and the record they leave,
which the Responses adapter renders as ``code_interpreter_call`` / ``file_search_call`` items.

Their options come from the run's tool entries (``responses.code_interpreter`` with the resolved
``container``; ``responses.file_search`` with ``vector_store_ids``, ``filters``, …), validated and
checked for their owner when the response was created.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from agent.domain import new_id
from agent.tools.base import ToolContext, ToolOutput, function_schema
from agent.tools.code_interpreter import MAX_MODEL_OUTPUT, _logs
from agent.tools.containers import ContainerExpired, ContainerGone, Containers, safe_name
from agent.tools.file_search import FileSearchTool
from sandbox import SessionLimit
from sandbox.files import TooLarge

log = logging.getLogger(__name__)
CODE = "responses.code_interpreter"
SEARCH = "responses.file_search"
DEFAULT_SEARCH_RESULTS = 20
MAX_SEARCH_TEXT = 12_000
"""Characters of search results the model reads (a local model's context is small); ``results`` keep all."""


def options(ctx: ToolContext, kind: str) -> dict[str, Any]:
    return next((t for t in ctx.tools if t.get("type") == kind), {})


def spec_base(ctx: ToolContext) -> str:
    """The service's URL as the client reached it (image outputs are URLs the client can fetch)."""
    return str((options(ctx, CODE).get("container") or {}).get("base_url") or "")


class ContainerCodeTool:
    name = "code_interpreter"
    step_type = "code_interpreter"
    input_field: str | None = "code"

    def __init__(self, containers: Containers, timeout: float = 30) -> None:
        self.containers, self.timeout = containers, timeout

    def schema(self) -> dict[str, Any]:
        return function_schema(
            "code_interpreter",
            "Run Python code in a stateful sandbox (variables and files persist in this container). Files are "
            "in /mnt/data; save charts with matplotlib and files to /mnt/data. No network access.",
            "code",
            "The Python code to run",
        )

    def start_record(self, call_id: str) -> dict[str, Any]:
        return {"id": call_id, "type": "code_interpreter", "code_interpreter": {"code": "", "outputs": []}}

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        code = arguments.get("code")
        spec = options(ctx, CODE).get("container") or {}
        cid = spec.get("id", "")
        record: dict[str, Any] = {
            "code": code if isinstance(code, str) else "",
            "outputs": [],
            "container_id": cid,
        }
        if not isinstance(code, str):
            return ToolOutput("Error: code_interpreter takes one string argument 'code'.", record)
        if self.containers.manager is None:
            return ToolOutput(
                "Error: code_interpreter is unavailable on this server (no Docker engine).", record
            )
        try:
            obj = await self._container(ctx.owner, spec)
            session = await self.containers.session(ctx.owner, obj)
            await ctx.started_work(self.name)
            result = await session.execute(code, timeout=self.timeout)
        except ContainerExpired:
            return ToolOutput(f"Error: Container is expired ({cid}); code cannot run there any more.", record)
        except ContainerGone:
            return ToolOutput(f"Error: the container {cid} was deleted.", record)
        except SessionLimit:
            limit = self.containers.manager.max_sessions_per_owner
            return ToolOutput(
                f"Error: too many code_interpreter sessions are active for this API key (limit {limit}); "
                "the code was not run. Retry later, when another container's sandbox has expired.",
                record,
            )
        except Exception as err:  # infrastructure trouble is something the model can read and report
            log.warning("code_interpreter failed in %s: %s", cid, err)
            return ToolOutput(f"Error: the sandbox failed ({type(err).__name__}: {err}).", record)
        if result.reset:
            await self.containers.forget(cid)
        return await self._outputs(ctx, obj, session, result, record)

    async def _container(self, owner: str, spec: dict[str, Any]) -> dict[str, Any]:
        """The response's container; an ``auto`` one is made now, when code first runs."""
        cid = spec["id"]
        if spec.get("new") and await self.containers.store.get("container", cid, owner) is None:
            obj = self.containers.new(spec.get("name") or "auto", memory_limit=spec.get("memory_limit"))
            obj["id"] = cid
            await self.containers.store.insert("container", obj, owner)
        else:
            obj = await self.containers.usable(owner, cid)
        if spec.get("file_ids"):  # the tool's file_ids that the container does not hold yet
            have = {f["path"] for f in await self.containers.files(owner, cid)}
            for file_id in spec["file_ids"]:
                loaded = await self.containers.load(owner, file_id)
                if loaded is not None and f"/mnt/data/{safe_name(loaded[0])}" not in have:
                    await self.containers.add_bytes(owner, cid, loaded[0], loaded[1], "user")
        return obj

    async def _outputs(
        self, ctx: ToolContext, obj: dict[str, Any], session: Any, result: Any, record: dict[str, Any]
    ) -> ToolOutput:
        cid, policy = obj["id"], self.containers.policy
        text = _logs(result)
        outputs: list[dict[str, Any]] = [{"type": "logs", "logs": text}] if text else []
        notes: list[str] = []
        made: list[dict[str, Any]] = []
        for png in result.images[: policy.files_per_call]:
            f = await self.containers.add_bytes(
                ctx.owner, cid, f"image_{new_id('')[:12]}.png", png, "assistant"
            )
            url = f"{spec_base(ctx)}/v1/containers/{cid}/files/{f['id']}/content"
            outputs.append({"type": "image", "url": url})
            notes.append(f"[chart shown to the user as image {f['path']}]")
        budget, skipped = policy.bytes_per_call, 0
        for info in result.files:
            if len(made) >= policy.files_per_call or budget <= 0:
                skipped += 1
                continue
            tmp = self.containers.tmp_path()  # copied in chunks off the loop, sized on the host side
            try:
                await asyncio.to_thread(tmp.parent.mkdir, parents=True, exist_ok=True)
                got = await session.export_file(info.path, str(tmp), budget)
                name = safe_name(info.path)
                f = await self.containers.add_file(ctx.owner, cid, name, tmp, got.size, "assistant")
            except TooLarge:
                skipped += 1
                continue
            except Exception as err:  # not a regular file, a link, gone: the model reads why
                notes.append(f"[file {info.path} could not be kept: {type(err).__name__}]")
                continue
            finally:
                tmp.unlink(missing_ok=True)
            budget -= got.size
            made.append({"container_id": cid, "file_id": f["id"], "filename": name, "path": f["path"]})
            notes.append(f"[file written: {f['path']} — link it as [{name}](sandbox:{f['path']})]")
        if skipped:
            notes.append(f"[{skipped} more files were not kept: over the per-call limit]")
        record["outputs"] = outputs
        model_text = "\n".join(p for p in (text[-MAX_MODEL_OUTPUT:], *notes) if p) or "(no output)"
        record["_model_output"] = model_text
        return ToolOutput(model_text, record, files=made)


class HostedFileSearch(FileSearchTool):
    """file_search over the tool's ``vector_store_ids`` with its filters and ranking options."""

    async def invoke(self, arguments: dict[str, Any], ctx: ToolContext) -> ToolOutput:
        query = arguments.get("query")
        opts = options(ctx, SEARCH)
        record: dict[str, Any] = {"queries": [query] if isinstance(query, str) else [], "results": []}
        if not isinstance(query, str) or not query.strip():
            return ToolOutput("Error: file_search takes one string argument 'query'.", record)
        ranking = opts.get("ranking_options") or {}
        await ctx.started_work(self.name)
        hits = await self.index.search(
            list(opts.get("vector_store_ids") or []),
            query,
            opts.get("filters"),
            int(opts.get("max_num_results") or DEFAULT_SEARCH_RESULTS),
            float(ranking.get("score_threshold") or 0.0),
        )
        lines, room = [], MAX_SEARCH_TEXT
        for hit in hits:
            if room > 0:
                line = f"{ctx.cite(hit.file_id, hit.filename)} {hit.text}"[:room]
                lines.append(line)
                room -= len(line)
            record["results"].append(
                {
                    "file_id": hit.file_id,
                    "filename": hit.filename,
                    "score": hit.score,
                    "text": hit.text,
                    "attributes": hit.attributes or {},
                    "vector_store_id": hit.store_id,
                }
            )
        text = "\n\n".join(lines) if lines else "No results."
        record["_model_output"] = text
        return ToolOutput(text, record)


def spec_tool(tool: dict[str, Any], resp: dict[str, Any]) -> dict[str, Any]:
    """A Responses built-in tool as the run's tool entry (the loop's Toolbox finds it by ``type``)."""
    kind = tool["type"]
    if kind == "code_interpreter":
        return {"type": CODE, "container": resp.get("_container") or {}}
    if kind == "file_search":
        keys = ("vector_store_ids", "max_num_results", "filters", "ranking_options")
        return {"type": SEARCH, **{k: tool.get(k) for k in keys}}
    if kind in ("mcp", "calculator"):
        return {"type": "calculator"}
    return {"type": kind}
