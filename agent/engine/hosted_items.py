"""Built-in tool calls in a response: ``code_interpreter_call``, ``file_search_call`` and the calculator
as an ``mcp_call`` (server label ``calculator``), with their ``response.*`` events, and the citations
(``container_file_citation``, ``file_citation``) added to the answer text.

Items keep everything (outputs, results) and the response's ``include`` (``_include``); what a client
sees without the include is ``null`` (``items.render``). What the model reads of a call is kept in
``_call`` / ``_model_output``, so a later response in the chain reads it too.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from agent.domain import new_id
from agent.engine import items
from agent.engine.events import ToolCallArgumentsDelta, ToolCallOutput, ToolCallStarted
from agent.tools import ToolContext

if TYPE_CHECKING:
    from agent.engine.responding import ResponseRecorder

CITATION = re.compile(r"【(?:\d+:)?(\d+)†[^】]*】")
KINDS = {
    "code_interpreter": "code_interpreter_call",
    "file_search": "file_search_call",
    "calculator": "mcp_call",
}


def started(rec: ResponseRecorder, event: ToolCallStarted) -> dict[str, Any] | None:
    """A built-in call's item, added to the output as the model starts writing it."""
    assert event.tool is not None
    kind = KINDS.get(event.tool.name)
    if kind is None:
        return None
    include = list(rec.run.get("_include") or [])
    if kind == "code_interpreter_call":
        container = next((t.get("container") for t in rec.spec.tools if t.get("container")), None) or {}
        item: dict[str, Any] = {
            "id": new_id("ci_"), "type": kind, "status": "in_progress", "code": "",
            "container_id": container.get("id"), "outputs": [],
        }  # fmt: skip
    elif kind == "file_search_call":
        item = {"id": new_id("fs_"), "type": kind, "status": "in_progress", "queries": [], "results": None}
    else:
        item = {
            "id": new_id("mcp_"), "type": kind, "status": "in_progress", "server_label": "calculator",
            "name": "calculator", "arguments": "", "output": None, "error": None,
        }  # fmt: skip
    item.update(_include=include, _call_id=event.call_id)
    rec._calls[event.index] = item
    rec.run["output"].append(item)
    i = rec._index(item)
    rec.publish("response.output_item.added", output_index=i, item=items.render(item))
    prefix = {"code_interpreter_call": "code_interpreter_call", "file_search_call": "file_search_call"}
    rec.publish(f"response.{prefix.get(kind, 'mcp_call')}.in_progress", item_id=item["id"], output_index=i)
    return item


def delta(rec: ResponseRecorder, event: ToolCallArgumentsDelta) -> None:
    item = rec._calls.get(event.index)
    if item is None:
        return
    if item["type"] == "code_interpreter_call" and event.input_piece:
        item["code"] += event.input_piece
        rec.publish(
            "response.code_interpreter_call_code.delta",
            item_id=item["id"], output_index=rec._index(item), delta=event.input_piece,
        )  # fmt: skip
    elif item["type"] == "mcp_call":
        item["arguments"] += event.delta
        rec.publish(
            "response.mcp_call_arguments.delta", item_id=item["id"], output_index=rec._index(item),
            delta=event.delta,
        )  # fmt: skip


async def working(rec: ResponseRecorder, tool: str) -> None:
    """The tool started its real work: ``…call_code.done`` + ``…interpreting``, or ``…searching``."""
    kind = KINDS.get(tool)
    item = next((i for i in rec._calls.values() if i["type"] == kind and i["status"] == "in_progress"), None)
    if item is None or kind not in ("code_interpreter_call", "file_search_call"):
        return
    ids = {"item_id": item["id"], "output_index": rec._index(item)}
    if kind == "code_interpreter_call":
        item["status"] = "interpreting"
        rec.publish("response.code_interpreter_call_code.done", **ids, code=item["code"])
        rec.publish("response.code_interpreter_call.interpreting", **ids)
    else:
        item["status"] = "searching"
        rec.publish("response.file_search_call.searching", **ids)


def finished(rec: ResponseRecorder, event: ToolCallOutput, item: dict[str, Any]) -> dict[str, Any]:
    """The call ran (or was refused): its final shape and closing events; returns what the model reads."""
    text = event.error or (event.output.text if event.output else "")
    record = dict(event.output.record) if event.output else {}
    item.update(_call={"name": event.name, "arguments": event.arguments}, _model_output=text)
    i = rec._index(item)
    ids = {"item_id": item["id"], "output_index": i}
    failed = event.error is not None or text.startswith("Error:")
    if item["type"] == "code_interpreter_call":
        code = record.get("code")
        item["code"] = code if isinstance(code, str) and code else item["code"]
        item["outputs"] = record.get("outputs") or []
        item["container_id"] = record.get("container_id") or item["container_id"]
        if item["status"] == "in_progress":  # the code never ran (e.g. no sandbox)
            rec.publish("response.code_interpreter_call_code.done", **ids, code=item["code"])
            rec.publish("response.code_interpreter_call.interpreting", **ids)
        item["status"] = "completed"
        rec.publish("response.code_interpreter_call.completed", **ids)
    elif item["type"] == "file_search_call":
        item["queries"] = record.get("queries") or []
        item["results"] = record.get("results") or []
        if item["status"] == "in_progress":
            rec.publish("response.file_search_call.searching", **ids)
        item["status"] = "failed" if event.error is not None else "completed"
        rec.publish("response.file_search_call.completed", **ids)
    else:
        item["arguments"] = event.arguments
        rec.publish("response.mcp_call_arguments.done", **ids, arguments=event.arguments)
        item["status"] = "failed" if failed else "completed"
        item["output" if not failed else "error"] = text
        rec.publish(f"response.mcp_call.{item['status']}", **ids)
    rec.publish("response.output_item.done", output_index=i, item=items.render(item))
    return item


def annotate(ctx: ToolContext | None, part: dict[str, Any]) -> list[dict[str, Any]]:
    """Citations in the answer: ``【n†name】`` markers of file_search results, and links to (or names of)
    files code_interpreter wrote in this response; a written file the text does not mention is cited at
    the end, so the client always learns of it."""
    if ctx is None:
        return []
    text: str = part["text"]
    found: list[dict[str, Any]] = []
    for m in CITATION.finditer(text):
        n = int(m.group(1))
        if n < len(ctx.sources):
            name = m.group(0).split("†", 1)[1].rstrip("】")
            found.append(
                {"type": "file_citation", "file_id": ctx.sources[n], "filename": name, "index": m.start()}
            )
    for made in (m for m in ctx.made if m.get("container_id") and not m.get("cited")):
        made["cited"] = True
        link = re.search(r"\[[^\]]*\]\(sandbox:" + re.escape(made["path"]) + r"\)", text)
        span = (link.start(), link.end()) if link else None
        if span is None and made["filename"] in text:
            start = text.rindex(made["filename"])
            span = (start, start + len(made["filename"]))
        start, end = span or (len(text), len(text))
        found.append(
            {
                "type": "container_file_citation", "container_id": made["container_id"],
                "file_id": made["file_id"], "filename": made["filename"], "start_index": start, "end_index": end,
            }
        )  # fmt: skip
    found.sort(key=lambda a: a.get("index", a.get("start_index", 0)))
    return found
