"""Sandbox benchmark: cold start, warm round trip, chart round trip, 8 concurrent sessions.

    .venv/bin/python bench/sandbox_bench.py [--image agent-sandbox:latest] [--runtime runsc] [--quick]

Needs the Docker engine and the image (.ci/build-sandbox-image.sh). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere

from sandbox import SandboxManager  # noqa: E402
from sandbox.container import DEFAULT_PRELOAD  # noqa: E402

PREFIX = "agent-sandbox-bench"


def ms(values: list[float]) -> str:
    v = sorted(x * 1000 for x in values)
    p95 = v[min(len(v) - 1, int(len(v) * 0.95))]
    return f"min {v[0]:8.2f}  p50 {statistics.median(v):8.2f}  p95 {p95:8.2f}  ms  (n={len(v)})"


async def timed(n: int, fn: Callable[[], Awaitable[object]]) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - start)
    return out


def raw_docker_run(image: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(
            [
                "docker",
                "run",
                "--rm",
                "--network",
                "none",
                "--entrypoint",
                "python3",
                image,
                "-c",
                "print(1)",
            ],
            check=True,
            capture_output=True,
        )
        out.append(time.perf_counter() - start)
    return out


async def cold_starts(image: str, runtime: str | None, n: int, preload: bool) -> list[float]:
    mods = DEFAULT_PRELOAD if preload else ()
    mgr = SandboxManager(image, runtime=runtime, pool_size=0, label_prefix=PREFIX, preload=mods)
    await mgr.start()
    try:
        out = []
        for i in range(n):
            start = time.perf_counter()
            session = await mgr.session(f"cold-{i}")
            await session.execute("print(1)")
            out.append(time.perf_counter() - start)
            await mgr.drop(f"cold-{i}")
        return out
    finally:
        await mgr.close()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default=os.environ.get("AGENT_SANDBOX_IMAGE", "agent-sandbox:latest"))
    ap.add_argument("--runtime", default=os.environ.get("AGENT_SANDBOX_RUNTIME") or None)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = ap.parse_args()
    reps = 3 if args.quick else 8
    calls = 300 if args.quick else 2000
    print(f"image {args.image}  runtime {args.runtime or 'default'}  cpus {os.cpu_count()}")

    print("\n== cold start (create + start + kernel ready + print(1) + remove excluded) ==")
    print("raw `docker run --rm python3 -c print(1)` ", ms(raw_docker_run(args.image, reps)))
    print(
        "session, no preload                      ",
        ms(await cold_starts(args.image, args.runtime, reps, False)),
    )
    print(
        "session, numpy/pandas/matplotlib preload  ",
        ms(await cold_starts(args.image, args.runtime, reps, True)),
    )

    mgr = SandboxManager(args.image, runtime=args.runtime, pool_size=2, label_prefix=PREFIX)
    await mgr.start()
    try:
        await mgr.warm()
        start = time.perf_counter()
        session = await mgr.session("warm")
        print("session from the warm pool               ", ms([time.perf_counter() - start]))

        print("\n== warm round trip ==")
        await session.execute("x = 1")
        print(
            "print(1)                                 ",
            ms(await timed(calls, lambda: session.execute("print(1)"))),
        )
        print(
            "x += 1; x (trailing expression)          ",
            ms(await timed(calls, lambda: session.execute("x += 1\nx"))),
        )
        chart = "import matplotlib.pyplot as plt\nplt.plot(range(100))\nplt.title('bench')\nNone"
        first = await session.execute("import matplotlib.pyplot as plt")
        assert first.ok, first.error
        results = []

        async def one_chart() -> None:
            r = await session.execute(chart)
            results.append(len(r.images[0]) if r.images else 0)

        print("chart (plot + PNG back to the host)      ", ms(await timed(max(reps, 10), one_chart)))
        print(f"   PNG size {statistics.median(results) / 1024:.1f} KiB")
        data = os.urandom(1 << 20)
        print(
            "write_file 1 MiB                         ",
            ms(await timed(50, lambda: session.write_file("b", data))),
        )
        print(
            "read_file 1 MiB                          ", ms(await timed(50, lambda: session.read_file("b")))
        )

        print("\n== 8 concurrent sessions, print(1) in a loop each ==")
        sessions = [await mgr.session(f"c{i}") for i in range(8)]
        for s in sessions:
            await s.execute("print(1)")
        per = calls // 4
        latencies: list[float] = []

        async def worker(s: object) -> None:
            latencies.extend(await timed(per, lambda: s.execute("print(1)")))  # type: ignore[attr-defined]

        start = time.perf_counter()
        await asyncio.gather(*(worker(s) for s in sessions))
        wall = time.perf_counter() - start
        print(f"{len(latencies) / wall:8.0f} calls/s   latency", ms(latencies))

        print("\n== 8 concurrent sessions, 0.2 s of CPU each (numpy) ==")
        work = (
            "import time, numpy as np\nt = time.process_time()\n"
            "while time.process_time() - t < 0.2:\n    np.sort(np.random.rand(10000))"
        )
        start = time.perf_counter()
        done = await asyncio.gather(*(s.execute(work) for s in sessions))
        wall = time.perf_counter() - start
        ok = all(r.ok for r in done)
        print(f"wall {wall:.2f} s for 8 x 0.2 s CPU on {os.cpu_count()} cores;  all ok: {ok}")
    finally:
        await mgr.close()


if __name__ == "__main__":
    asyncio.run(main())
