"""The calculator tool, exercised through real worker processes (no mocks, no sleeps, no timings)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.tools.calc_worker import MAX_DEPTH
from agent.tools.calculator import WORKER_SCRIPT, Calculator, CalculatorError, check_expression

# A pool small enough for 2 cores; a short timeout keeps the kill tests quick.
TEST_TIMEOUT = 1.0

# Passes every cheap pre-check (each term is ~100,000 digits, under the limit) but costs seconds of
# big-integer work in total: only the process kill can stop it.
EXPENSIVE = "min(" + ",".join(f"3**200000/(7**110000+{2 * i})" for i in range(60)) + ")"


@pytest.fixture
async def calc() -> AsyncIterator[Calculator]:
    calculator = Calculator(workers=2, timeout=TEST_TIMEOUT)
    try:
        yield calculator
    finally:
        await calculator.close()


# ------------------------------------------------------------------------------------------------
# exact arithmetic and formatting


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("1 + 2 * 3", "7"),
        ("1/3 + 1/6", "1/2"),
        ("2**100 + 1/4", "1267650600228229401496703205376.25"),
        ("10/4", "2.5"),
        ("7/3", "7/3"),
        ("-7/3", "-7/3"),
        ("2**-2", "0.25"),
        ("1/2", "0.5"),
        ("0.1 + 0.2", "0.3"),
        ("1/3 * 3", "1"),
        ("(2/3)**4", "16/81"),
        ("2**100", "1267650600228229401496703205376"),
        ("7 // 2", "3"),
        ("-7 % 3", "2"),
        ("1e-5", "0.00001"),
        ("sqrt(2)", "1.4142135623730951"),
        ("sqrt(16)", "4"),
        ("sqrt(9/4)", "1.5"),
        ("8**(1/3)", "2"),
        ("(-8)**(1/3)", "-2"),
        ("16**(3/4)", "8"),
        ("2**0.5", "1.4142135623730951"),
        ("log(1000, 10)", "3"),
        ("log10(0.001)", "-3"),
        ("log2(1024)", "10"),
        ("log(e)", "1"),
        ("cos(0)", "1"),
        ("atan2(1, 1)", "0.7853981633974483"),
        ("degrees(pi)", "180"),
        ("radians(180)", "3.141592653589793"),
        ("factorial(20)", "2432902008176640000"),
        ("comb(10, 3)", "120"),
        ("perm(5, 2)", "20"),
        ("gcd(12, 18)", "6"),
        ("lcm(4, 6)", "12"),
        ("floor(-7/2)", "-4"),
        ("ceil(7/2)", "4"),
        ("abs(-3/4)", "0.75"),
        ("round(2.675, 2)", "2.68"),
        ("round(1/3, 4)", "0.3333"),
        ("min(3, 1/2, 2)", "0.5"),
        ("max(1/3, 0.3)", "1/3"),
        ("hypot(3, 4)", "5"),
        ("3 < 4", "True"),
        ("1/3 == 2/6", "True"),
        ("0.1 + 0.2 == 0.3", "True"),
        ("1 < 2 < 1", "False"),
        ("not 0", "True"),
        ("2 > 1 and 3 > 2", "True"),
        ("  2 + 2  ", "4"),
    ],
)
async def test_exact_results(calc: Calculator, expression: str, expected: str) -> None:
    assert await calc.evaluate(expression) == expected


async def test_huge_exact_results_are_summarised(calc: Calculator) -> None:
    result = await calc.evaluate("factorial(1000)")
    assert result.startswith("≈4.023872601e+2567") and "2,568 digits" in result
    assert await calc.evaluate("factorial(1000) / factorial(998)") == "999000"


# ------------------------------------------------------------------------------------------------
# errors a model can act on


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("2 +", "invalid syntax"),
        ("", "empty expression"),
        ("sqrt(-1)", "not a real number"),
        ("log(0)", "only defined for positive numbers"),
        ("log(8, 1)", "logarithm base"),
        ("asin(2)", "math domain error"),
        ("(-4)**0.5", "not a real number"),
        ("1/0", "division by zero"),
        ("5 % 0", "division by zero"),
        ("0**-1", "division by zero"),
        ("exp(1000)", "overflow"),
        ("sqrt(2)**10**6", "overflow"),
        ("factorial(2.5)", "whole numbers"),
        ("2^3", "use ** for powers"),
        ("x + 1", "unknown name 'x'"),
        ("sqrt", "is a function"),
        ("2(3)", "write the '*'"),
        ("sqrt(1, 2)", "takes 1 argument"),
        ("round(2.5, ndigits=1)", "keyword arguments"),
        ("1j", "complex numbers"),
        ("1 if 2 else 3", "not allowed"),
        ("1 << 10", "not supported"),
    ],
)
async def test_errors_are_text(calc: Calculator, expression: str, fragment: str) -> None:
    result = await calc.evaluate(expression)
    assert result.startswith("Error: ")
    assert fragment in result


async def test_non_string_input_is_an_error(calc: Calculator) -> None:
    result = await calc.evaluate(42)  # type: ignore[arg-type]
    assert result.startswith("Error: ") and "string" in result


# ------------------------------------------------------------------------------------------------
# hostile input


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("9**9**9", "too large"),
        ("(10**3000)**3000", "too large"),
        ("factorial(10**6)", "too large"),
        ("comb(10**9, 10**5)", "too large"),
        ("10**99999 * 10**99999", "too large"),
        ("'a'*10**10", "strings are not allowed"),
        ("[0]*10**9", "lists are not allowed"),
        ("(1).__class__", "attribute access"),
        ("().__class__.__bases__", "attribute access"),
        ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("__import__('os')", "names starting with '_'"),
        ("__builtins__", "names starting with '_'"),
        ("eval('1+1')", "unknown function 'eval'"),
        ("getattr(1, '__class__')", "unknown function 'getattr'"),
        ("print(1)", "unknown function 'print'"),
        ("sqrt.__globals__", "attribute access"),
        ('f"{x.__class__}"', "f-strings are not allowed"),
        ('f"{(1).__class__.__mro__}"', "f-strings are not allowed"),
        ("'{0.__class__}'.format(1)", "not allowed"),
        ("'%s' % 1", "strings are not allowed"),
        ("b'abc'", "strings are not allowed"),
        ("(lambda: 1)()", "not allowed"),
        ("[x for x in (1, 2)]", "not allowed"),
        ("(x := 5)", "assignment"),
        ("max(*(1, 2))", "not allowed"),
        ("ｏｐｅｎ('x')", "unknown function 'open'"),
        ("1" + "+1" * 20_000, "too long"),  # a 40,001-character expression
        ("-" * 1500 + "1", "nested too deeply"),
        ("(" * 300 + "1" + ")" * 300, "invalid syntax"),
    ],
)
async def test_hostile_input_fails_fast(calc: Calculator, expression: str, fragment: str) -> None:
    result = await calc.evaluate(expression)
    assert result.startswith("Error: ")
    assert fragment in result
    assert "timed out" not in result  # refused by a pre-check, not by burning the timeout
    assert await calc.evaluate("6 * 7") == "42"


async def test_forty_thousand_characters(calc: Calculator) -> None:
    expression = ("1+" * 20_000)[:39_999] + "1"
    assert len(expression) == 40_000
    result = await calc.evaluate(expression)
    assert result.startswith("Error: expression is too long (40000 characters")


async def test_long_but_legal_expression(calc: Calculator) -> None:
    expression = "+".join(["1"] * 1000)  # 1999 characters, 1000 levels deep
    assert len(expression) <= 2000 and MAX_DEPTH >= 1000
    assert await calc.evaluate(expression) == "1000"


async def test_expensive_expression_is_killed_and_worker_replaced(calc: Calculator) -> None:
    check_expression(EXPENSIVE)  # legal: only the time limit stops it
    result = await calc.evaluate(EXPENSIVE)
    assert result.startswith("Error: ") and "timed out" in result
    for i in range(4):  # both pool slots serve again (the killed one is respawned)
        assert await calc.evaluate(f"{i} + 1/2") == f"{i}.5"


async def test_event_loop_keeps_serving_during_a_kill(calc: Calculator) -> None:
    heavy = asyncio.create_task(calc.evaluate(EXPENSIVE))
    light = [await calc.evaluate(f"{i}**2") for i in range(5)]  # served by the other worker
    assert light == ["0", "1", "4", "9", "16"]
    result = await heavy
    assert result.startswith("Error: ") and "timed out" in result
    assert await calc.evaluate("1/3 + 1/6") == "1/2"


async def test_more_calls_than_workers_wait_their_turn() -> None:
    calculator = Calculator(workers=1, timeout=TEST_TIMEOUT)
    try:
        results = await asyncio.gather(*(calculator.evaluate(f"{i}/4") for i in range(12)))
        assert results == ["0", "0.25", "0.5", "0.75", "1", "1.25", "1.5", "1.75", "2", "2.25", "2.5", "2.75"]
        # a hostile call among normal ones: each normal call still gets its own answer
        mixed = await asyncio.gather(
            calculator.evaluate("2 + 2"), calculator.evaluate(EXPENSIVE), calculator.evaluate("3 * 3")
        )
        assert mixed[0] == "4" and mixed[2] == "9"
        assert "timed out" in mixed[1]
    finally:
        await calculator.close()


async def test_cancelled_call_does_not_poison_the_worker() -> None:
    calculator = Calculator(workers=1, timeout=30.0)
    try:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(calculator.evaluate(EXPENSIVE), timeout=0.5)
        assert await calculator.evaluate("1 + 1") == "2"
        assert await calculator.evaluate("2 + 2") == "4"
    finally:
        await calculator.close()


# ------------------------------------------------------------------------------------------------
# lifecycle


async def test_start_close_and_context_manager() -> None:
    calculator = Calculator(workers=2, timeout=TEST_TIMEOUT)
    await calculator.start()
    await calculator.start()  # idempotent
    assert await calculator.evaluate("2**10") == "1024"
    await calculator.close()
    await calculator.close()  # never raises, idempotent
    result = await calculator.evaluate("1 + 1")
    assert result.startswith("Error: ") and "shut down" in result
    # rejected input is still explained after close (the check needs no worker)
    assert "attribute access" in await calculator.evaluate("(1).__class__")

    async with Calculator(workers=1, timeout=TEST_TIMEOUT) as scoped:
        assert await scoped.evaluate("7/3") == "7/3"


async def test_close_while_a_call_is_running() -> None:
    calculator = Calculator(workers=1, timeout=30.0)
    assert await calculator.evaluate("1") == "1"  # worker up
    task = asyncio.create_task(calculator.evaluate(EXPENSIVE))
    await calculator.close()
    result = await task
    assert result.startswith("Error: ")


async def test_max_length_is_configurable() -> None:
    async with Calculator(workers=1, timeout=TEST_TIMEOUT, max_length=10) as calculator:
        assert await calculator.evaluate("1+2+3+4+5") == "15"
        assert "too long" in await calculator.evaluate("1+2+3+4+5+6")


def test_invalid_configuration() -> None:
    with pytest.raises(ValueError):
        Calculator(workers=0)
    with pytest.raises(ValueError):
        Calculator(timeout=0)


# ------------------------------------------------------------------------------------------------
# check_expression (pure)


@pytest.mark.parametrize(
    "expression",
    ["1 + 2", "sqrt(2) * pi", "min(1, 2, 3) < max(4, 5)", "-(3**2) + +4", "not (1 == 2) or 0", "tau/2"],
)
def test_check_expression_accepts(expression: str) -> None:
    check_expression(expression)


@pytest.mark.parametrize(
    "expression",
    [
        "'a'",
        "x",
        "(1).real",
        "a[0]",
        "[1]",
        "(1, 2)",
        "{1: 2}",
        "{1}",
        "f'{1}'",
        "lambda: 1",
        "[i for i in ()]",
        "(i for i in ())",
        "(y := 1)",
        "open('f')",
        "__import__('os')",
        "_add(1, 2)",
        "pi(1)",
        "sqrt(*[4])",
        "1 is 1",
        "1 in ()",
        "~1",
        "1 @ 2",
        "1e999",
        "None",
        "...",
        "1 +",
        "x" * 2001,
    ],
)
def test_check_expression_rejects(expression: str) -> None:
    with pytest.raises(CalculatorError):
        check_expression(expression)


def test_check_expression_max_length() -> None:
    check_expression("1+1", max_length=3)
    with pytest.raises(CalculatorError, match="too long"):
        check_expression("1+1", max_length=2)


# ------------------------------------------------------------------------------------------------
# the worker's own CPU backstop (in case the service could not kill it)


async def test_worker_cpu_rlimit_kills_a_runaway_evaluation() -> None:
    # timeout argument 0.01 s -> the worker allows itself about 1-2 s of CPU for the request
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-I",
        str(WORKER_SCRIPT),
        "256",
        "0.01",
        "2000",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert json.loads(await proc.stdout.readline()) == {"ready": True}
        proc.stdin.write((json.dumps({"id": 1, "expr": "1 + 1"}) + "\n").encode())
        assert json.loads(await proc.stdout.readline())["result"] == "2"
        proc.stdin.write((json.dumps({"id": 2, "expr": EXPENSIVE}) + "\n").encode())
        await proc.stdin.drain()
        assert await proc.stdout.readline() == b""  # died without answering
        assert await proc.wait() != 0
    finally:
        proc.stdin.close()
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


# ------------------------------------------------------------------------------------------------
# process-level guarantees (Linux)


def _worker_pids(calculator: Calculator) -> list[int]:
    return [slot.proc.pid for slot in calculator._slots if slot.proc is not None]


def _address_space_limit(pid: int) -> str:
    limits = Path(f"/proc/{pid}/limits").read_text().splitlines()
    return next(row for row in limits if row.startswith("Max address space")).split()[3]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
async def test_workers_run_under_a_memory_limit() -> None:
    async with Calculator(workers=1, timeout=TEST_TIMEOUT, memory_mb=200) as calculator:
        (pid,) = _worker_pids(calculator)
        assert _address_space_limit(pid) == str(200 * 1024 * 1024)
        assert await calculator.evaluate("2**64") == "18446744073709551616"


async def test_worker_killed_from_outside_is_replaced() -> None:
    async with Calculator(workers=1, timeout=TEST_TIMEOUT) as calculator:
        (pid,) = _worker_pids(calculator)
        os.kill(pid, signal.SIGKILL)
        assert await calculator.evaluate("1/3 + 1/6") == "1/2"
        (new_pid,) = _worker_pids(calculator)
        assert new_pid != pid
