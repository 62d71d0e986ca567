"""What the sandbox boundary hardening (issue 11) costs: warm ``print(1)`` round trip, before and after.

    .venv/bin/python bench/hardening_bench.py [--before REF] [--rounds 10] [--calls 200]

"Before" is the ``sandbox/`` package as of git ``REF`` (default: the commit the hardening started from),
extracted with ``git archive`` into a temporary directory and imported as a separate package; "after" is the
working tree's. Both run in this process against the same engine and image, in interleaved rounds (so
machine noise hits both alike), each on a warm session from its own manager. Prints p50 per round, the
overall p50s and their ratio (after / before). Needs the Docker engine and the sandbox image.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402

BEFORE = "ccc7bdd"


def load_before(ref: str, into: str) -> Any:
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "sandbox"], check=True, capture_output=True)
    with tarfile.open(fileobj=io.BytesIO(tar.stdout)) as archive:
        archive.extractall(into, filter="data")
    os.rename(os.path.join(into, "sandbox"), os.path.join(into, "sandbox_before"))
    sys.path.insert(0, into)
    return importlib.import_module("sandbox_before")


async def round_trips(session: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        r = await session.execute("print(1)")
        out.append(time.perf_counter() - start)
        assert r.stdout == "1\n", r
    return out


async def lag_while(work: Any) -> float:
    """The event loop's worst lateness (ms) for 1 ms ticks while ``work`` runs."""
    worst = 0.0
    task = asyncio.ensure_future(work)
    while not task.done():
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        worst = max(worst, time.perf_counter() - start - 0.001)
    await task
    return worst * 1000


async def loop_lag(session: Any, tmp: str) -> None:
    """Loop lateness while a big output is exported (chunked, on the sandbox executor) against idle."""
    mb = session._spec.limits.data_mb - 16
    r = await session.execute(
        f"with open('/mnt/data/big.bin', 'wb') as f:\n    for _ in range({mb}):\n        f.write(b'1' * (1 << 20))"
    )
    assert r.ok, r.error
    dest = os.path.join(tmp, "big.out")
    busy = await lag_while(session.export_file("big.bin", dest, mb << 20))
    os.unlink(dest)
    idle = await lag_while(asyncio.sleep(1.0))
    print(f"event loop worst lateness: {busy:.1f} ms while exporting {mb} MiB, {idle:.1f} ms idle (1 s)")


async def main(ref: str, rounds: int, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        before_pkg = load_before(ref, tmp)
        image = os.environ.get("AGENT_SANDBOX_IMAGE", "agent-sandbox:latest")
        managers = {
            "before": before_pkg.SandboxManager(
                image, pool_size=1, label_prefix="agent-sandbox-bench-before"
            ),
            "after": sandbox.SandboxManager(image, pool_size=1, label_prefix="agent-sandbox-bench-after"),
        }
        try:
            sessions = {}
            for name, mgr in managers.items():
                await mgr.start()
                sessions[name] = await mgr.session("bench")
                await round_trips(sessions[name], 50)  # warm
            samples: dict[str, list[float]] = {"before": [], "after": []}
            paired: list[float] = []
            print(
                f"before = sandbox/ at {ref}; after = working tree; {rounds} interleaved rounds x {calls} calls"
            )
            for i in range(rounds):
                order = ("before", "after") if i % 2 == 0 else ("after", "before")
                line, medians = [], {}
                for name in order:
                    got = await round_trips(sessions[name], calls)
                    samples[name].extend(got)
                    medians[name] = statistics.median(got)
                    line.append(f"{name} p50 {medians[name] * 1000:.3f} ms")
                paired.append(medians["after"] / medians["before"])
                print(f"  round {i + 1:2d}: " + ", ".join(line) + f"  ratio {paired[-1]:.3f}")
            p50 = {k: statistics.median(v) * 1000 for k, v in samples.items()}
            print(f"warm print(1) round trip p50: before {p50['before']:.3f} ms, after {p50['after']:.3f} ms")
            print(
                f"ratio after/before of the overall p50s: {p50['after'] / p50['before']:.3f}  (target <= 1.10)"
            )
            print(f"median of the per-round ratios:        {statistics.median(paired):.3f}")
            await loop_lag(sessions["after"], tmp)
        finally:
            for mgr in managers.values():
                await mgr.close()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--before", default=BEFORE, help="git ref of the sandbox before the hardening")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--calls", type=int, default=100)
    a = p.parse_args()
    asyncio.run(main(a.before, a.rounds, a.calls))
