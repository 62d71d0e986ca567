"""Replica processes on one real PostgreSQL: a run is never executed twice.

Each replica is its own `python -m agent serve` process with its own data directory; the lease is short
(AGENT_LEASE_SECONDS) so that renewals are stressed and takeovers happen within the tests.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.fakes.model_server import Call, Gate, ScriptedModel, Text, ToolCalls
from tests.postgres import fresh_database
from tests.process import ServerProcess

LEASE = 3
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}


class Replicas:
    def __init__(self, tmp_path: Path, postgres: str, model: ScriptedModel) -> None:
        self.tmp_path, self.model = tmp_path, model
        self.db = fresh_database(postgres)
        self.env = {
            "AGENT_MODEL_URL": model.url,
            "AGENT_SANDBOX_ENABLED": "false",
            "AGENT_EMBEDDINGS": "false",
            "AGENT_DATABASE_URL": self.db,
            "AGENT_LEASE_SECONDS": str(LEASE),
        }
        self.procs: list[ServerProcess] = []

    def start(self, name: str, **env: str) -> ServerProcess:
        proc = ServerProcess(self.tmp_path / name, **{**self.env, **env})
        (self.tmp_path / name).mkdir(exist_ok=True)
        self.procs.append(proc.start())
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.proc.send_signal(signal.SIGCONT)
            proc.stop()

    def query(self, sql: str, **params: Any) -> list[Any]:
        """Read the shared database directly (what no replica can hide)."""

        async def run() -> list[Any]:
            engine = create_async_engine(self.db)
            try:
                async with engine.connect() as conn:
                    return list((await conn.execute(sa.text(sql), params)).all())
            finally:
                await engine.dispose()

        return asyncio.run(run())


@pytest.fixture
def cluster(tmp_path: Path, postgres: str, model: ScriptedModel) -> Iterator[Replicas]:
    replicas = Replicas(tmp_path, postgres, model)
    try:
        yield replicas
    finally:
        replicas.stop()


def wait_for(what: str, check: Any, timeout: float = 90) -> Any:
    """Poll an observable condition (with a deadline) — never a sleep standing in for synchronisation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def simultaneously(*calls: Any) -> list[str]:
    """Start the calls at the same moment from threads of their own: "accepted" or "rejected" (400) each."""
    start = threading.Barrier(len(calls))
    outcomes: dict[int, str] = {}

    def one(i: int) -> None:
        start.wait()
        try:
            calls[i]()
            outcomes[i] = "accepted"
        except openai.BadRequestError:
            outcomes[i] = "rejected"

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(calls))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    return [outcomes.get(i, "no answer") for i in range(len(calls))]


def assistant_texts(client: openai.OpenAI, thread_id: str) -> list[str]:
    msgs = client.beta.threads.messages.list(thread_id, order="asc", limit=100).data
    return [m.content[0].text.value for m in msgs if m.role == "assistant" and m.content]  # type: ignore[union-attr]


def asked_for(model: ScriptedModel, text: str) -> int:
    """How many model calls carried this user message as the last one."""
    n = 0
    for body in list(model.requests):
        users = [m for m in body["messages"] if m["role"] == "user"]
        if users and text in str(users[-1]["content"]):
            n += 1
    return n


@pytest.mark.timeout(900)
def test_many_runs_through_one_replica_never_run_twice(tmp_path: Path, postgres: str) -> None:
    """Runs created through A faster than it executes them: A keeps its leases, takes only what it can keep,
    and B executes the rest; every thread gets one answer from one model call."""
    n = int(os.environ.get("AGENT_TEST_LOAD_RUNS", "240"))
    slow = Text("a b c d e f", pieces=["a ", "b ", "c ", "d ", "e ", "f"], delay=0.02)
    with ScriptedModel(default=slow) as model:
        replicas = Replicas(tmp_path, postgres, model)
        try:
            a = replicas.start("a", AGENT_MAX_RUNS="40", AGENT_MAX_RUNS_PER_KEY=str(n))
            replicas.start("b", AGENT_MAX_RUNS="40", AGENT_MAX_RUNS_PER_KEY=str(n))
            ca = a.client()
            asst = ca.beta.assistants.create(model="m")
            runs = [
                ca.beta.threads.create_and_run(
                    assistant_id=asst.id, thread={"messages": [{"role": "user", "content": f"load {i}."}]}
                )
                for i in range(n)
            ]

            def done() -> bool:
                rows = replicas.query("SELECT count(*) FROM run WHERE status = 'completed'")
                return rows[0][0] == n

            wait_for("every run to complete", done, timeout=600)
            doubled = [r.thread_id for r in runs if len(assistant_texts(ca, r.thread_id)) != 1]
            assert doubled == []
            asked = Counter(asked_for(model, f"load {i}.") for i in range(n))
            assert asked == Counter({1: n})  # no turn was asked twice
            assert len(model.requests) == n
        finally:
            replicas.stop()


def test_paused_replica_writes_nothing_after_losing_its_lease(
    cluster: Replicas, model: ScriptedModel
) -> None:
    held = Gate()
    model.script(
        Text("from a", pieces=["from", " a"], pause=held, pause_after=1),
        Text("answer from b"),
    )
    a, b = cluster.start("a"), cluster.start("b")
    ca, cb = a.client(), b.client()
    asst = ca.beta.assistants.create(model="m")
    t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    wait_for("a to write the answer", lambda: ca.beta.threads.messages.list(t.id, run_id=run.id).data)
    assert a.proc is not None
    a.proc.send_signal(signal.SIGSTOP)  # past its lease: b takes the run over and asks again
    final = cb.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=100)
    assert final.status == "completed" and len(model.requests) == 2
    held.set()
    a.proc.send_signal(signal.SIGCONT)  # a's stream goes on; everything it would write is fenced
    wait_for("a to notice", lambda: "this leg stops" in a.log.read_text())
    assert assistant_texts(cb, t.id) == ["answer from b"]
    assert cb.beta.threads.runs.retrieve(run.id, thread_id=t.id).status == "completed"
    assert len(model.requests) == 2


def test_tool_outputs_sent_to_two_replicas_are_accepted_once(cluster: Replicas, model: ScriptedModel) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ca, cb = a.client(), b.client()
    fn = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    asst = ca.beta.assistants.create(model="m", tools=[fn])  # type: ignore[list-item]
    for trial in range(8):
        model.requests.clear()
        model.script(ToolCalls([Call("lookup", {})]), Text(f"done {trial}"))
        t = ca.beta.threads.create(messages=[{"role": "user", "content": "go"}])
        run = ca.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, poll_interval_ms=50)
        assert run.status == "requires_action"
        call_id = run.required_action.submit_tool_outputs.tool_calls[0].id  # type: ignore[union-attr]
        outputs = [{"tool_call_id": call_id, "output": "42"}]
        outcomes = simultaneously(
            *(
                lambda c=c, run=run, t=t, outputs=outputs: c.beta.threads.runs.submit_tool_outputs(
                    run.id, thread_id=t.id, tool_outputs=outputs
                )
                for c in (ca, cb)
            )
        )
        assert sorted(outcomes) == ["accepted", "rejected"]
        final = cb.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=50)
        assert final.status == "completed"
        assert assistant_texts(cb, t.id) == [f"done {trial}"]
        assert len(model.requests) == 2  # the run went on once


def test_a_cancel_accepted_is_never_overwritten(cluster: Replicas, model: ScriptedModel) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ca, cb = a.client(), b.client()
    asst = ca.beta.assistants.create(model="m")
    seen: Counter[str] = Counter()
    for trial in range(10):
        held = Gate()
        model.script(Text(f"answer {trial}", pieces=["answer", f" {trial}"], pause=held, pause_after=1))
        t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
        wait_for(
            "a to stream the answer",
            lambda t=t, run=run: ca.beta.threads.messages.list(t.id, run_id=run.id).data,
        )
        # the answer completes (a) while the cancel arrives (b)
        outcome, _ = simultaneously(
            lambda t=t, run=run: cb.beta.threads.runs.cancel(run.id, thread_id=t.id), held.set
        )
        final = cb.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=50)
        seen[final.status] += 1
        if outcome == "accepted":
            assert final.status == "cancelled"
            msgs = cb.beta.threads.messages.list(t.id, run_id=run.id).data
            assert all(m.status == "incomplete" for m in msgs)
        else:
            assert final.status == "completed"
    assert sum(seen.values()) == 10


def test_a_restarted_replica_resumes_its_runs_without_waiting_for_its_old_lease(
    tmp_path: Path, postgres: str, model: ScriptedModel
) -> None:
    replicas = Replicas(tmp_path, postgres, model)
    try:
        held = Gate()
        model.script(Text("lost", pieces=["lost", " here"], pause=held, pause_after=1), Text("resumed"))
        a = replicas.start("a", AGENT_LEASE_SECONDS="120")
        ca = a.client()
        asst = ca.beta.assistants.create(model="m")
        t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
        wait_for("a to stream the answer", lambda: ca.beta.threads.messages.list(t.id, run_id=run.id).data)
        [(lease_until,)] = replicas.query("SELECT lease_until FROM run WHERE id = :id", id=run.id)
        a.kill9()
        held.set()
        a.start()  # the same data directory: the same instance name
        final = a.client().beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=100)
        assert final.status == "completed"
        assert final.completed_at is not None and final.completed_at < lease_until  # its old lease still held
        assert assistant_texts(a.client(), t.id) == ["resumed"]
    finally:
        replicas.stop()


def test_replicas_with_separate_data_directories_share_files_and_search(
    cluster: Replicas, model: ScriptedModel
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ca, cb = a.client(), b.client()
    big = bytes(range(256)) * (3 * 4096 + 7)  # three chunks and a bit: streamed, never whole
    up = ca.files.create(file=("big.bin", big), purpose="assistants")
    assert cb.files.content(up.id).read() == big
    doc = ca.files.create(
        file=("notes.md", b"# Pumps\n\nThe bilge pump on deck three is serviced every Tuesday."),
        purpose="assistants",
    )
    vs = ca.vector_stores.create(name="shared", file_ids=[doc.id])
    wait_for("the file to be ingested", lambda: cb.vector_stores.retrieve(vs.id).file_counts.completed == 1)
    hits = cb.vector_stores.search(vs.id, query="when is the bilge pump serviced?").data
    assert hits and hits[0].file_id == doc.id and "Tuesday" in hits[0].content[0].text
    cb.files.delete(up.id)
    with pytest.raises(openai.NotFoundError):
        ca.files.content(up.id)
    on_disk = [p.name for name in ("a", "b") for p in (cluster.tmp_path / name).rglob("*") if p.is_file()]
    assert [
        n for n in on_disk if n.startswith("file-") or n == "search.db"
    ] == []  # nothing on a replica's disk


def test_concurrent_runs_on_one_thread_through_two_replicas_exactly_one_wins(
    cluster: Replicas, model: ScriptedModel
) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    ca, cb = a.client(), b.client()
    asst = ca.beta.assistants.create(model="m")
    for trial in range(5):
        held = Gate()  # the winner's run stays active until both requests are answered
        model.script(Text(f"answer {trial}", gate=held))
        t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        outcomes = simultaneously(
            *(
                lambda c=c, t=t: c.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
                for c in (ca, cb)
            )
        )
        held.set()
        assert sorted(outcomes) == ["accepted", "rejected"]
        [run] = cb.beta.threads.runs.list(t.id).data
        assert cb.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=50).status == "completed"
        assert assistant_texts(cb, t.id) == [f"answer {trial}"]


def test_run_of_a_killed_replica_is_finished_by_another(cluster: Replicas, model: ScriptedModel) -> None:
    held = Gate()
    model.script(Text("lost", pieces=["lost", " with a"], pause=held, pause_after=1), Text("finished by b"))
    a, b = cluster.start("a"), cluster.start("b")
    ca, cb = a.client(), b.client()
    asst = ca.beta.assistants.create(model="m")
    t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
    run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    wait_for("a to stream the answer", lambda: ca.beta.threads.messages.list(t.id, run_id=run.id).data)
    a.kill9()
    held.set()
    final = cb.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=100)
    assert final.status == "completed"
    assert assistant_texts(cb, t.id) == ["finished by b"] and len(model.requests) == 2
