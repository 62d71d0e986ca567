"""The calculator tool: exact arithmetic for math tutoring, evaluated in sandboxed worker processes.

Layers of defence (see ``calc_worker.py`` for the evaluation side):

1. :func:`check_expression` parses with :mod:`ast` and accepts only numbers, arithmetic, comparisons,
   boolean operators and a fixed set of math names (no strings, attributes, subscripts, calls to
   anything else ...), with a length cap.  It runs in the service process and is pure.
2. Workers (``python -I calc_worker.py``) re-check, rewrite the arithmetic into guarded helpers that
   refuse explosive results up front (``9**9**9``, ``factorial(10**6)``), and evaluate with asteval.
   Each worker runs under RLIMIT_AS (memory) and a per-request RLIMIT_CPU backstop.
3. The service kills a worker that does not answer within ``timeout`` seconds (a thread cannot do
   this: big-integer arithmetic holds the GIL) and starts a fresh one for the next call.

Every failure is returned as text starting with ``Error:``; :meth:`Calculator.evaluate` does not
raise (except for cancellation of the calling task).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from agent.tools.calc_worker import CONSTANTS, FUNCTIONS, MAX_LENGTH, CalculatorError, check_expression

__all__ = ["CONSTANTS", "FUNCTIONS", "Calculator", "CalculatorError", "check_expression"]

log = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("calc_worker.py")
STARTUP_TIMEOUT = 30.0
"""Seconds a new worker may take to import asteval and report ready (generous for loaded CI boxes)."""
_READ_LIMIT = 1 << 20
# How a worker ends when our own rlimits stop it; any other death (the OOM killer, an operator, or a
# status the child watcher could not collect) gets the request one more try on a fresh worker.
_OWN_LIMITS = (-signal.SIGXCPU,)


class _Slot:
    """One worker position in the pool; only the task that took it from the queue touches it."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.proc: asyncio.subprocess.Process | None = None
        self.next_id = 0


class Calculator:
    """A pool of calculator worker processes.

    >>> calc = Calculator()
    >>> await calc.evaluate("1/3 + 1/6")
    '1/2'
    >>> await calc.close()
    """

    def __init__(
        self,
        workers: int = 2,
        timeout: float = 2.0,
        memory_mb: int = 256,
        max_length: int = MAX_LENGTH,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if memory_mb < 64:
            raise ValueError("memory_mb must be at least 64")
        if max_length < 1:
            raise ValueError("max_length must be positive")
        self.workers = workers
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.max_length = max_length
        self._slots = [_Slot(i) for i in range(workers)]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        for slot in self._slots:
            self._idle.put_nowait(slot)
        self._closed = False
        self.timeouts = 0
        """Expressions whose worker was killed at the timeout, since start."""
        self._reapers: set[asyncio.Task[None]] = set()

    # ------------------------------------------------------------------------------------------
    # lifecycle

    async def start(self) -> None:
        """Start all workers now (otherwise they start on first use).  Raises if one cannot start."""
        if self._closed:
            raise RuntimeError("the calculator has been closed")
        taken = [await self._idle.get() for _ in self._slots]
        try:
            results = await asyncio.gather(
                *(self._spawn(slot) for slot in taken if not self._alive(slot)), return_exceptions=True
            )
        finally:
            for slot in taken:
                self._idle.put_nowait(slot)
        for result in results:
            if isinstance(result, BaseException):
                raise RuntimeError(f"calculator worker failed to start: {result}") from result

    async def close(self) -> None:
        """Kill all workers.  Never raises; safe to call more than once."""
        self._closed = True
        procs = [slot.proc for slot in self._slots if slot.proc is not None]
        for slot in self._slots:
            slot.proc = None
        for proc in procs:
            await self._kill(proc)
        reapers = list(self._reapers)
        if reapers:
            with contextlib.suppress(Exception):
                await asyncio.gather(*reapers, return_exceptions=True)

    async def __aenter__(self) -> Calculator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------
    # evaluation

    async def evaluate(self, expression: str) -> str:
        """Evaluate ``expression``; return the result as text, or a message starting with ``Error:``."""
        try:
            try:
                check_expression(expression, max_length=self.max_length)
            except CalculatorError as exc:
                return f"Error: {exc}"
            if self._closed:
                return "Error: the calculator has been shut down"
            slot = await self._idle.get()
            try:
                return await self._evaluate_on(slot, expression)
            finally:
                self._idle.put_nowait(slot)
        except Exception as exc:  # never raise out of the tool
            log.exception("calculator failure")
            return f"Error: internal calculator error ({type(exc).__name__})"

    async def _evaluate_on(self, slot: _Slot, expression: str, *, retry: bool = True) -> str:
        if self._closed:
            return "Error: the calculator has been shut down"
        if not self._alive(slot):
            try:
                await self._spawn(slot)
            except Exception as exc:
                log.error("calculator worker failed to start: %s", exc)
                return "Error: the calculator is unavailable (its worker process failed to start)"
        proc = slot.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        slot.next_id += 1
        request_id = slot.next_id
        payload = (json.dumps({"id": request_id, "expr": expression}) + "\n").encode()
        finished = False
        try:
            async with asyncio.timeout(self.timeout):
                proc.stdin.write(payload)
                await proc.stdin.drain()
                raw = await proc.stdout.readline()
            finished = True
        except TimeoutError:
            self.timeouts += 1
            finished = True
            await self._retire(slot)
            return (
                f"Error: the calculation timed out after {self.timeout:g} seconds and was stopped; "
                "the expression is too expensive to evaluate"
            )
        except (ConnectionError, OSError):  # broken pipe: the worker is gone, handled like EOF
            finished = True
            raw = b""
        except ValueError:  # reply over the read limit (cannot happen with the worker's formatting)
            finished = True
            await self._retire(slot)
            return "Error: the calculator worker sent a malformed reply; please try again"
        finally:
            if not finished:  # cancelled mid-request: the worker's state is unknown, replace it
                self._retire_nowait(slot)

        if not raw:  # EOF: the worker died (CPU rlimit, killed from outside, or by close())
            await self._retire(slot)
            if self._closed:
                return "Error: the calculator has been shut down"
            if retry and proc.returncode not in _OWN_LIMITS:
                # not our own limits (those end in SIGXCPU or a MemoryError reply) but e.g. the OOM
                # killer or an operator; run the request once more on a fresh worker
                return await self._evaluate_on(slot, expression, retry=False)
            return self._aborted_message()
        try:
            response = json.loads(raw)
            if response["id"] != request_id:
                raise ValueError("response id mismatch")
            result = response["result"]
            if not isinstance(result, str):
                raise ValueError("bad result")
        except (ValueError, KeyError, TypeError):
            await self._retire(slot)
            return "Error: the calculator worker sent a malformed reply; please try again"
        if response.get("fatal"):
            await self._retire(slot)
        return result

    def _aborted_message(self) -> str:
        return (
            f"Error: the calculation was aborted because it exceeded the calculator's limits "
            f"(memory {self.memory_mb} MB / CPU time); the expression is too expensive to evaluate"
        )

    # ------------------------------------------------------------------------------------------
    # worker processes

    @staticmethod
    def _alive(slot: _Slot) -> bool:
        return slot.proc is not None and slot.proc.returncode is None

    async def _spawn(self, slot: _Slot) -> None:
        if slot.proc is not None:
            await self._retire(slot)
        env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "LC_ALL", "TMPDIR")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-I",  # isolated: ignore PYTHON* variables, user site-packages and the working directory
            str(WORKER_SCRIPT),
            str(self.memory_mb),
            repr(self.timeout),
            str(self.max_length),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=env,
            limit=_READ_LIMIT,
            start_new_session=True,  # terminal signals go to the service, not the workers
        )
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT):
                line = await proc.stdout.readline()
            if json.loads(line or b"null") != {"ready": True}:
                raise RuntimeError(f"unexpected worker greeting {line[:200]!r}")
        except BaseException:
            await self._kill(proc)
            raise
        if self._closed:  # close() ran while this worker was starting
            await self._kill(proc)
            raise RuntimeError("the calculator has been closed")
        slot.proc = proc

    async def _retire(self, slot: _Slot) -> None:
        proc, slot.proc = slot.proc, None
        if proc is not None:
            await self._kill(proc)

    def _retire_nowait(self, slot: _Slot) -> None:
        """Kill without awaiting (used while being cancelled); a task reaps the process."""
        proc, slot.proc = slot.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        task = asyncio.get_running_loop().create_task(self._kill(proc))
        self._reapers.add(task)
        task.add_done_callback(self._reapers.discard)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        """Kill and reap ``proc``; never raises."""
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            await proc.wait()
        except Exception:
            log.debug("error while stopping a calculator worker", exc_info=True)
