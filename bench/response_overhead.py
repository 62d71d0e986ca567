"""Gateway overhead per streamed response (create → response.completed), as a ratio to calling the
scripted model directly (the floor, measured in the same run), next to an Assistants run.

    .venv/bin/python bench/response_overhead.py [--n 200]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai
from _harness import service, summary
from run_overhead import direct, one_run


async def one_response(client: openai.AsyncOpenAI) -> float:
    t0 = time.perf_counter()
    stream = await client.responses.create(model="m", input="q", stream=True)
    last = None
    async for event in stream:
        last = event.type
    assert last == "response.completed", last
    return (time.perf_counter() - t0) * 1000


def p50(xs: list[float]) -> float:
    return sorted(xs)[len(xs) // 2]


async def main(n: int) -> None:
    with service() as (server, model):
        api = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        raw = openai.AsyncOpenAI(base_url=model.url, api_key="x", max_retries=0)
        assistant = (await api.beta.assistants.create(model="m")).id
        threads = [(await api.beta.threads.create()).id for _ in range(n + 10)]
        for thread in threads[:10]:  # warm up every path
            await direct(raw)
            await one_response(api)
            await one_run(api, assistant, thread)
        base = [await direct(raw) for _ in range(n)]
        responses = [await one_response(api) for _ in range(n)]
        runs = [await one_run(api, assistant, thread) for thread in threads[10:]]
        print(summary("model directly (floor)", base))
        print(summary("response through the service", responses))
        print(summary("run through the service", runs))
        print(
            f"p50 ratio to the floor: response {p50(responses) / p50(base):.2f}x, run {p50(runs) / p50(base):.2f}x; "
            f"overhead p50: response {p50(responses) - p50(base):.2f} ms, run {p50(runs) - p50(base):.2f} ms"
        )
        await api.close()
        await raw.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200)
    asyncio.run(main(p.parse_args().n))
