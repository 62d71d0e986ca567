"""A code_interpreter call inside a run, against the raw sandbox round trip.

    .venv/bin/python bench/code_interpreter_bench.py [--runs 50]

Needs a Docker engine and the sandbox image. Inside a run, the tool's own share is its ``invoke`` (session
lookup, file placement, outputs) around `Session.execute` of `print(1)` on a warm session; whole runs
with one code_interpreter call and with one calculator call are printed for context (their difference
is within this machine's run-to-run noise).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import openai
from _harness import pct, service, summary

from agent.tools.base import ToolContext
from agent.tools.code_interpreter import CodeInterpreterTool
from sandbox import SandboxManager
from tests.fakes.model_server import Call, Text, ToolCalls


async def raw_and_tool(n: int) -> tuple[list[float], list[float]]:
    """``Session.execute`` directly, and the tool's ``invoke`` (session lookup, files, outputs) around it."""
    manager = SandboxManager(pool_size=1, label_prefix="agent-sandbox-bench")
    await manager.start()

    async def save(who: str, name: str, data: bytes) -> dict[str, Any]:
        return {"id": "file-x"}

    async def load(who: str, file_id: str) -> tuple[str, bytes] | None:
        return None

    async def adopt(who: str, name: str, tmp: Path, size: int) -> dict[str, Any]:
        os.unlink(tmp)
        return {"id": "file-x"}

    tool = CodeInterpreterTool(manager, save, load, adopt=adopt, tmp_dir=Path(tempfile.gettempdir()))
    ctx = ToolContext(owner="o", thread_id="bench", run_id="r", assistant={}, thread={})
    try:
        session = await manager.session("bench")
        await session.execute("print(1)")
        raw, via_tool = [], []
        for _ in range(n):
            t0 = time.perf_counter()
            await session.execute("print(1)")
            t1 = time.perf_counter()
            await tool.invoke({"code": "print(1)"}, ctx)
            t2 = time.perf_counter()
            raw.append((t1 - t0) * 1000)
            via_tool.append((t2 - t1) * 1000)
        return raw, via_tool
    finally:
        await manager.close()


async def in_run(n: int, tool: str, args: dict[str, str]) -> tuple[list[float], list[float]]:
    with service(AGENT_SANDBOX_ENABLED="true", AGENT_SANDBOX_POOL="1") as (server, model):
        api = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        a = (await api.beta.assistants.create(model="m", tools=[{"type": tool}])).id  # type: ignore[misc,list-item]
        t = (await api.beta.threads.create()).id
        tool_ms, run_ms = [], []
        for i in range(n + 3):
            model.script(ToolCalls([Call(tool, args)]), Text("done"))
            t0 = time.perf_counter()
            stream = await api.beta.threads.runs.create(thread_id=t, assistant_id=a, stream=True)
            last_delta = done = 0.0
            async for event in stream:
                now = time.perf_counter()
                if event.event == "thread.run.step.delta":
                    call = event.data.delta.step_details.tool_calls[0]  # type: ignore[union-attr]
                    if getattr(call, "code_interpreter", None) and call.code_interpreter.outputs:  # type: ignore[union-attr]
                        done = done or now  # outputs are out
                    else:
                        last_delta = now  # the model is still writing the call
            if i >= 3:  # the first runs start the thread's session
                tool_ms.append((done - last_delta) * 1000)
                run_ms.append((time.perf_counter() - t0) * 1000)
        await api.close()
        return tool_ms, run_ms


async def main(n: int) -> None:
    raw, via_tool = await raw_and_tool(n)
    _, run = await in_run(n, "code_interpreter", {"code": "print(1)"})
    _, calc = await in_run(n, "calculator", {"expression": "1+1"})
    print(summary("raw sandbox round trip, print(1)", raw))
    print(summary("the code_interpreter tool's invoke, print(1)", via_tool))
    print(
        f"added by the tool over the raw round trip: p50 {pct(via_tool, 50) - pct(raw, 50):.2f} ms, "
        f"p95 {pct(via_tool, 95) - pct(raw, 95):.2f} ms"
    )
    print(summary("whole run with one code_interpreter call (two model turns, streamed)", run))
    print(summary("the same run with one calculator call instead", calc))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=50)
    asyncio.run(main(p.parse_args().runs))
