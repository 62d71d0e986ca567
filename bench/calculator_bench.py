"""Calculator tool benchmark: call latency, fail-fast refusals, and kill-and-recover time.

Run: ``.venv/bin/python bench/calculator_bench.py [--calls 3000] [--timeout 2.0]``
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from agent.tools.calculator import Calculator, check_expression

TYPICAL = [
    "1/3 + 1/6",
    "2**100 + 1/4",
    "sqrt(2)",
    "(3*4 - 2) / 5",
    "factorial(20) / factorial(18)",
    "sin(pi/6) + cos(pi/3)",
    "log(1000, 10)",
    "0.1 + 0.2 == 0.3",
    "comb(52, 5)",
    "round(7/3, 4)",
]
FAIL_FAST = [
    "9**9**9",
    "(10**3000)**3000",
    "factorial(10**6)",
    "'a'*10**10",
    "(1).__class__",
    "1+" * 20_000 + "1",
]
# Legal, passes every pre-check, but needs seconds of big-integer work: only the kill stops it.
EXPENSIVE = "min(" + ",".join(f"3**200000/(7**110000+{2 * i})" for i in range(60)) + ")"


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f} ms"


async def main(calls: int, kill_after: float) -> None:
    timeout = kill_after
    calc = Calculator(workers=2, timeout=timeout)
    t0 = time.perf_counter()
    await calc.start()
    print(f"start 2 workers            {ms(time.perf_counter() - t0)}")

    for expr in TYPICAL * 10:  # warm-up
        await calc.evaluate(expr)

    samples: list[float] = []
    for i in range(calls):
        expr = TYPICAL[i % len(TYPICAL)]
        t = time.perf_counter()
        result = await calc.evaluate(expr)
        samples.append(time.perf_counter() - t)
        assert not result.startswith("Error"), (expr, result)
    print(f"sequential calls (n={calls}):")
    print(f"  p50                      {ms(pct(samples, 0.50))}")
    print(f"  p95                      {ms(pct(samples, 0.95))}")
    print(f"  p99                      {ms(pct(samples, 0.99))}")
    print(f"  mean                     {ms(statistics.fmean(samples))}")

    t = time.perf_counter()
    n_conc = 2000
    await asyncio.gather(*(calc.evaluate(TYPICAL[i % len(TYPICAL)]) for i in range(n_conc)))
    elapsed = time.perf_counter() - t
    print(f"concurrent throughput      {n_conc / elapsed:8.0f} calls/s ({n_conc} calls, 2 workers)")

    t = time.perf_counter()
    for _ in range(1000):
        check_expression("sin(pi/6) + cos(pi/3) * (1/3 + 1/6)")
    print(f"check_expression only      {ms((time.perf_counter() - t) / 1000)}")

    print("fail-fast refusals (pre-checks, no timeout burned):")
    for expr in FAIL_FAST:
        t = time.perf_counter()
        result = await calc.evaluate(expr)
        label = expr if len(expr) < 24 else expr[:20] + "..."
        print(f"  {label:24} {ms(time.perf_counter() - t)}  {result[:60]}")
    await calc.close()

    # Kill and recover: one worker, so the next call must wait for a fresh process.
    calc = Calculator(workers=1, timeout=timeout)
    await calc.start()
    await calc.evaluate("1+1")
    print(f"kill and recover (timeout {timeout:g} s, 1 worker):")
    for _ in range(3):
        t = time.perf_counter()
        result = await calc.evaluate(EXPENSIVE)
        killed = time.perf_counter() - t
        assert "timed out" in result, result
        t = time.perf_counter()
        again = await calc.evaluate("1/3 + 1/6")
        recovered = time.perf_counter() - t
        assert again == "1/2", again
        print(
            f"  hostile answered after {ms(killed)} (timeout + {ms(killed - timeout).strip()}); "
            f"next call (respawn) {ms(recovered)}; total {ms(killed + recovered)}"
        )
    await calc.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.timeout))
