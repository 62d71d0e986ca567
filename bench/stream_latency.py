"""Time to first text delta through the service against the scripted model's own first token, and N
concurrent streams held open at once.

    .venv/bin/python bench/stream_latency.py [--runs 200] [--concurrent 100]

Two figures for the service: from the run's creation to the first delta (everything a user waits
for: the run's set-up, the model's first token, the relay), and the relay alone: from the moment the
scripted model (in this process, same clock) writes its first token to the client's first delta.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import openai
from _harness import pct, service, summary

from tests.fakes.model_server import Gate, Text


async def direct_ttft(client: openai.AsyncOpenAI) -> float:
    t0 = time.perf_counter()
    stream = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "q"}], stream=True
    )
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            ms = (time.perf_counter() - t0) * 1000
            break
    async for _ in stream:
        pass
    return ms


async def service_ttft(
    client: openai.AsyncOpenAI, assistant: str, thread: str, model_first: list[float]
) -> tuple[float, float]:
    """(run create → first delta, model's first token → first delta), in ms."""
    t0 = time.perf_counter()
    stream = await client.beta.threads.runs.create(thread_id=thread, assistant_id=assistant, stream=True)
    seen = 0.0
    async for event in stream:
        if event.event == "thread.message.delta" and not seen:
            seen = time.perf_counter()
    return (seen - t0) * 1000, (seen - model_first[-1]) * 1000


async def held_stream(
    client: openai.AsyncOpenAI, assistant: str, started: list[int], total: int, all_open: asyncio.Event
) -> str:
    stream = await client.beta.threads.create_and_run(
        assistant_id=assistant, thread={"messages": [{"role": "user", "content": "q"}]}, stream=True
    )
    last = ""
    async for event in stream:
        if event.event == "thread.run.in_progress":
            started.append(1)
            if len(started) == total:
                all_open.set()
        last = event.event
    return last


async def main(runs: int, concurrent: int) -> None:
    with service() as (server, model):
        api = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0, timeout=120)
        raw = openai.AsyncOpenAI(base_url=model.url, api_key="x", max_retries=0)
        a = (await api.beta.assistants.create(model="m")).id
        threads = [
            (await api.beta.threads.create(messages=[{"role": "user", "content": "q"}])).id
            for _ in range(runs + 10)
        ]
        for t in threads[:10]:
            await direct_ttft(raw)
            await service_ttft(api, a, t, model.first_token_at)
        base = [await direct_ttft(raw) for _ in range(runs)]
        both = [await service_ttft(api, a, t, model.first_token_at) for t in threads[10:]]
        full, relay = [b[0] for b in both], [b[1] for b in both]
        print(summary("first token, model directly (request → first token at the client)", base))
        print(summary("first text delta through the service (run create → first delta)", full))
        print(
            f"added by the service: p50 {pct(full, 50) - pct(base, 50):.2f} ms, "
            f"p95 {pct(full, 95) - pct(base, 95):.2f} ms, ratio p50 {pct(full, 50) / pct(base, 50):.1f}x"
        )
        print(summary("relay: model writes its first token → client has the first delta", relay))
        gate = Gate()
        model.script(
            *[
                Text("held answer", pieces=["held", " answer"], pause=gate, pause_after=1)
                for _ in range(concurrent)
            ]
        )
        started: list[int] = []
        all_open = asyncio.Event()
        tasks = [
            asyncio.create_task(held_stream(api, a, started, concurrent, all_open)) for _ in range(concurrent)
        ]
        await asyncio.wait_for(all_open.wait(), 120)
        print(f"{len(started)} streams open at once (model holding every answer)")
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        ok = sum(1 for r in results if r == "thread.run.completed")
        print(f"{concurrent} concurrent streams: {ok} completed, {concurrent - ok} errors")
        await api.close()
        await raw.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--concurrent", type=int, default=100)
    args = p.parse_args()
    asyncio.run(main(args.runs, args.concurrent))
