"""Fair sharing of the calculator workers between keys (real worker processes; ordering, not timing)."""

from __future__ import annotations

import asyncio

import pytest

from agent.tools.calculator import Calculator
from tests.tools.test_calculator import EXPENSIVE, TEST_TIMEOUT


async def test_a_hostile_key_cannot_starve_another() -> None:
    async with Calculator(workers=2, timeout=TEST_TIMEOUT) as calc:
        assert calc.per_key == 1  # all workers but one: a worker is always left for the other keys
        hostile = [asyncio.create_task(calc.evaluate(EXPENSIVE, key="hostile")) for _ in range(6)]
        victim = asyncio.create_task(calc.evaluate("1/3 + 1/6", key="victim"))  # queued after them
        assert await victim == "1/2"
        # answered while the hostile key's first call was still running: delayed by less than one timeout
        assert sum(t.done() for t in hostile) == 0
        results = await asyncio.gather(*hostile)
        assert all("timed out" in r for r in results)


async def test_keys_take_turns_when_every_worker_is_busy() -> None:
    async with Calculator(workers=2, timeout=TEST_TIMEOUT) as calc:
        a = [asyncio.create_task(calc.evaluate(EXPENSIVE, key="a")) for _ in range(4)]
        b = [asyncio.create_task(calc.evaluate(EXPENSIVE, key="b")) for _ in range(4)]
        victim = asyncio.create_task(calc.evaluate("2**10", key="c"))
        assert await victim == "1024"
        # c waited for one worker to free up, not for a's and b's queues: at most one call each went first
        assert sum(t.done() for t in a) <= 1 and sum(t.done() for t in b) <= 1
        await asyncio.gather(*a, *b)


async def test_a_key_waits_its_turn_but_is_served_in_order() -> None:
    async with Calculator(workers=2, timeout=TEST_TIMEOUT, per_key=1) as calc:
        results = await asyncio.gather(*(calc.evaluate(f"{i}*3", key="k") for i in range(8)))
        assert results == [str(i * 3) for i in range(8)]


async def test_cancelled_waiters_leave_no_trace() -> None:
    async with Calculator(workers=2, timeout=TEST_TIMEOUT) as calc:
        busy = asyncio.create_task(calc.evaluate(EXPENSIVE, key="k"))
        waiting = asyncio.create_task(calc.evaluate("1+1", key="k"))  # over k's cap: waits
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert await calc.evaluate("2+2", key="other") == "4"
        await busy
        assert await calc.evaluate("3+3", key="k") == "6"


def test_per_key_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_key"):
        Calculator(per_key=0)
