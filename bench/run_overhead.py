"""Gateway overhead per run (create → completed) against calling the scripted model directly.

    .venv/bin/python bench/run_overhead.py [--runs 200] [--concurrent 50]

Each run is a streamed create (the fastest way to learn it completed); the direct baseline is a
streamed chat completion to the same scripted model. Also: runs/s with N concurrent runs.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai
from _harness import service, summary


async def direct(client: openai.AsyncOpenAI) -> float:
    t0 = time.perf_counter()
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True
    )
    async for _ in stream:
        pass
    return (time.perf_counter() - t0) * 1000


async def one_run(client: openai.AsyncOpenAI, assistant: str, thread: str | None = None) -> float:
    t0 = time.perf_counter()
    if thread is None:
        stream = await client.beta.threads.create_and_run(
            assistant_id=assistant, thread={"messages": [{"role": "user", "content": "q"}]}, stream=True
        )
    else:
        stream = await client.beta.threads.runs.create(thread_id=thread, assistant_id=assistant, stream=True)
    last = None
    async for event in stream:
        last = event.event
    assert last == "thread.run.completed", last
    return (time.perf_counter() - t0) * 1000


async def main(runs: int, concurrent: int) -> None:
    with service() as (server, model):
        api = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
        raw = openai.AsyncOpenAI(base_url=model.url, api_key="x", max_retries=0)
        assistant = (await api.beta.assistants.create(model="m")).id
        threads = [
            (await api.beta.threads.create(messages=[{"role": "user", "content": "q"}])).id
            for _ in range(runs + 10)
        ]  # a conversation per run, made before timing
        for thread in threads[:10]:  # warm up both paths
            await direct(raw)
            await one_run(api, assistant, thread)
        base = [await direct(raw) for _ in range(runs)]
        full = [await one_run(api, assistant, thread) for thread in threads[10:]]
        print(summary("model directly (streamed chat completion)", base))
        print(summary("run through the service (create → completed)", full))
        base.sort()
        full.sort()
        print(
            f"overhead: p50 {full[len(full) // 2] - base[len(base) // 2]:.2f} ms, "
            f"p95 {full[int(len(full) * 0.95)] - base[int(len(base) * 0.95)]:.2f} ms"
        )
        t0 = time.perf_counter()
        lat = await asyncio.gather(*(one_run(api, assistant) for _ in range(concurrent * 4)))
        wall = time.perf_counter() - t0
        print(
            f"{concurrent} concurrent (x4 = {len(lat)} runs, each its own thread): {len(lat) / wall:.1f} runs/s, "
            f"{summary('latency', list(lat))}"
        )
        await api.close()
        await raw.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--concurrent", type=int, default=50)
    a = p.parse_args()
    asyncio.run(main(a.runs, a.concurrent))
