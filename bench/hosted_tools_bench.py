"""Responses built-in tools: a whole response with one code_interpreter call in a reused container, and
one that starts a new ``auto`` container, as ratios to the floor: the same two-turn response with one
calculator call (an in-process tool), measured in the same run.

    .venv/bin/python bench/hosted_tools_bench.py [--runs 30]

Needs a Docker engine and the sandbox image.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai
from _harness import pct, service, summary

from tests.fakes.model_server import Call, Text, ToolCalls

AUTO = {"type": "code_interpreter", "container": {"type": "auto"}}


async def timed(
    api: openai.AsyncOpenAI, model: object, tool: dict[str, object], call: Call, **kw: object
) -> tuple[float, str]:
    model.script(ToolCalls([call]), Text("done"))  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    resp = await api.responses.create(model="m", input="go", tools=[tool], **kw)  # type: ignore[list-item, arg-type]
    assert resp.status == "completed", resp.error
    return (time.perf_counter() - t0) * 1000, resp.id


async def main(n: int) -> None:
    with service(AGENT_SANDBOX_ENABLED="true", AGENT_SANDBOX_POOL="2") as (server, model):
        api = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        calc, reused, fresh = [], [], []
        _, prev = await timed(api, model, AUTO, Call("code_interpreter", {"code": "x = 1"}))
        for i in range(n + 2):
            c_ms, _ = await timed(
                api, model, {"type": "calculator"}, Call("calculator", {"expression": "1+1"})
            )
            r_ms, prev = await timed(
                api, model, AUTO, Call("code_interpreter", {"code": "x += 1"}), previous_response_id=prev
            )
            if i >= 2:
                calc.append(c_ms)
                reused.append(r_ms)
        for _ in range(min(n, 8)):  # each starts a container: the pool refills between them
            f_ms, _ = await timed(api, model, AUTO, Call("code_interpreter", {"code": "print(1)"}))
            fresh.append(f_ms)
        await api.close()
    print(summary("floor: response with one calculator call", calc))
    print(summary("response with one code_interpreter call, container reused", reused))
    print(summary("response with one code_interpreter call, new auto container", fresh))
    floor = pct(calc, 50)
    print(f"p50 ratio reused/floor = {pct(reused, 50) / floor:.2f}, new/floor = {pct(fresh, 50) / floor:.2f}")


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=30)
    asyncio.run(main(p.parse_args().runs))
