"""Runs/s and p95 run latency through 1, 2 and 3 replicas, on PostgreSQL and on SQLite, in one run.

    .venv/bin/python bench/replicas_bench.py [--runs 150] [--concurrency 24]

Each replica is a `python -m agent serve` process; runs are created round-robin across the replicas
(polled, as most SDK users do) and each is polled until completed. SQLite replicas share one data
directory (one database file); PostgreSQL replicas each have their own, and share a fresh database on a
throwaway cluster (.ci/postgres.sh, or AGENT_TEST_POSTGRES_URL). The floor is the scripted model alone
at the same concurrency (chat completions straight to it), measured in the same run: figures are given
as ratios to it. On two shared cores every replica, the database and the model compete for the same
CPU, so more replicas add no CPU: what they show is the cost of coordination (leases, claims, polls).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import warnings
from pathlib import Path

import openai
from _harness import pct

from tests.fakes.model_server import ScriptedModel, Text
from tests.postgres import cluster, fresh_database
from tests.process import ServerProcess


async def floor(model: ScriptedModel, runs: int, concurrency: int) -> float:
    client = openai.AsyncOpenAI(base_url=model.url, api_key="x", max_retries=0)
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q"}])

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(runs)))
    await client.close()
    return runs / (time.perf_counter() - t0)


async def load(urls: list[str], runs: int, concurrency: int) -> tuple[float, float]:
    """(runs/s, p95 ms from creation to seen completed)."""
    clients = [openai.AsyncOpenAI(base_url=u + "/v1", api_key="sk-test", max_retries=2) for u in urls]
    asst = await clients[0].beta.assistants.create(model="m")
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        client = clients[i % len(clients)]
        async with gate:
            t0 = time.perf_counter()
            run = await client.beta.threads.create_and_run(
                assistant_id=asst.id, thread={"messages": [{"role": "user", "content": f"q {i}"}]}
            )
            while run.status not in ("completed", "failed", "cancelled", "expired", "incomplete"):
                await asyncio.sleep(0.05)
                run = await client.beta.threads.runs.retrieve(run.id, thread_id=run.thread_id)
            assert run.status == "completed", run.last_error
            latencies.append((time.perf_counter() - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(runs)))
    rate = runs / (time.perf_counter() - t0)
    for c in clients:
        await c.close()
    return rate, pct(latencies, 95)


def measure(
    backend: str, replicas: int, pg_admin: str, model: ScriptedModel, args: argparse.Namespace
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = {"AGENT_MODEL_URL": model.url, "AGENT_SANDBOX_ENABLED": "false", "AGENT_EMBEDDINGS": "false"}
        if backend == "postgres":
            env["AGENT_DATABASE_URL"] = fresh_database(pg_admin)
        procs = []
        try:
            for i in range(replicas):
                data = Path(tmp) / (f"r{i}" if backend == "postgres" else "shared")
                data.mkdir(exist_ok=True)
                procs.append(ServerProcess(data, **env).start())
            return asyncio.run(load([p.url for p in procs], args.runs, args.concurrency))
        finally:
            for p in procs:
                p.stop()


def main() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning)  # the SDK's notice about Assistants
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=150)
    parser.add_argument("--concurrency", type=int, default=24)
    args = parser.parse_args()
    pg = cluster()
    pg_admin = next(pg)
    try:
        with ScriptedModel(
            default=Text("The answer is forty-two.", pieces=["The", " answer", " is", " 42."])
        ) as model:
            base = asyncio.run(floor(model, args.runs * 2, args.concurrency))
            print(
                f"floor: the scripted model alone, {base:.1f} completions/s at concurrency {args.concurrency}"
            )
            print(f"{'backend':<10} {'replicas':>8} {'runs/s':>8} {'× floor':>8} {'p95 ms':>8}")
            for backend in ("sqlite", "postgres"):
                for n in (1, 2, 3):
                    rate, p95 = measure(backend, n, pg_admin, model, args)
                    print(f"{backend:<10} {n:>8} {rate:>8.1f} {rate / base:>8.3f} {p95:>8.0f}", flush=True)
    finally:
        pg.close()


if __name__ == "__main__":
    main()
