"""Two replicas over one database: a dead replica's run is taken over; a cancel reaches the executing one."""

from __future__ import annotations

from pathlib import Path

from tests.fakes.model_server import Call, Gate, ScriptedModel, Text, ToolCalls
from tests.process import ServerProcess


def replicas(tmp_path: Path, model: ScriptedModel) -> tuple[ServerProcess, ServerProcess]:
    """Two service processes on one data directory (one SQLite database, one file store)."""
    env = {"AGENT_MODEL_URL": model.url, "AGENT_SANDBOX_ENABLED": "false", "AGENT_EMBEDDINGS": "false"}
    return ServerProcess(tmp_path, **env).start(), ServerProcess(tmp_path, **env).start()


def test_run_of_a_dead_replica_is_taken_over(tmp_path: Path, model: ScriptedModel) -> None:
    held = Gate()
    model.script(
        Text("lost with replica a", pieces=["lost", " with a"], pause=held, pause_after=1),
        Text("finished by replica b"),
    )
    a, b = replicas(tmp_path, model)
    try:
        ca = a.client()
        asst = ca.beta.assistants.create(model="m")
        t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
        while not ca.beta.threads.messages.list(t.id, run_id=run.id).data:  # a is writing the answer
            pass
        a.kill9()
        held.set()
        cb = b.client()
        final = cb.beta.threads.runs.poll(run.id, thread_id=t.id)
        assert final.status == "completed"
        texts = [m.content[0].text.value for m in cb.beta.threads.messages.list(t.id, order="asc").data]  # type: ignore[union-attr]
        assert texts == ["hi", "finished by replica b"]
    finally:
        a.stop()
        b.stop()


def test_cancel_sent_to_another_replica(tmp_path: Path, model: ScriptedModel) -> None:
    held = Gate()
    model.script(
        ToolCalls([Call("calculator", {"expression": "1+1"})], text="thinking", pause=held, pause_after=1),
        Text("next run's answer"),
    )
    a, b = replicas(tmp_path, model)
    try:
        ca, cb = a.client(), b.client()
        asst = ca.beta.assistants.create(model="m", tools=[{"type": "calculator"}])  # type: ignore[list-item]
        t = ca.beta.threads.create(messages=[{"role": "user", "content": "hi"}])
        run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
        while not ca.beta.threads.messages.list(t.id, run_id=run.id).data:  # a is executing the run
            pass
        assert cb.beta.threads.runs.cancel(run.id, thread_id=t.id).status == "cancelling"
        final = cb.beta.threads.runs.poll(run.id, thread_id=t.id)
        held.set()
        assert final.status == "cancelled"
        msg = cb.beta.threads.messages.list(t.id, run_id=run.id).data[0]
        assert msg.status == "incomplete" and msg.incomplete_details.reason == "run_cancelled"  # type: ignore[union-attr]
        # replica a really stopped: it never asked the model again, so the next answer goes to the next run
        other = cb.beta.threads.create_and_run_poll(
            assistant_id=asst.id, thread={"messages": [{"role": "user", "content": "x"}]}
        )
        answer = cb.beta.threads.messages.list(other.thread_id).data[0].content[0].text.value  # type: ignore[union-attr]
        assert answer == "next run's answer" and len(model.requests) == 2
    finally:
        a.stop()
        b.stop()
