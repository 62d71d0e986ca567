"""Kill -9 the server mid-run: after restart the run resumes to completion; expiry of waiting runs."""

from __future__ import annotations

import time
from pathlib import Path

from tests.fakes.model_server import Call, Gate, ScriptedModel, Text, ToolCalls
from tests.process import ServerProcess


def test_run_resumes_after_kill9(tmp_path: Path, scripted: ScriptedModel) -> None:
    with scripted._lock:
        scripted._turns.clear()
        scripted.requests.clear()
    held = Gate()
    scripted.script(
        Text("first answer", pieces=["first", " answer"], pause=held, pause_after=1),
        Text("answer after restart"),
    )
    server = ServerProcess(tmp_path, AGENT_MODEL_URL=scripted.url, AGENT_SANDBOX_ENABLED="false").start()
    try:
        c = server.client()
        a = c.beta.assistants.create(model="m")
        t = c.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        run = c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
        while not c.beta.threads.messages.list(t.id, run_id=run.id).data:  # the answer has begun
            pass
        server.kill9()
        held.set()
        server.start()
        c = server.client()
        final = c.beta.threads.runs.poll(run.id, thread_id=t.id)
        assert final.status == "completed"
        msgs = c.beta.threads.messages.list(t.id, order="asc").data
        assert [m.content[0].text.value for m in msgs] == ["hello", "answer after restart"]
        steps = c.beta.threads.runs.steps.list(run.id, thread_id=t.id).data
        assert [s.status for s in steps] == ["completed"]
    finally:
        server.stop()


def test_requires_action_run_expires(tmp_path: Path, scripted: ScriptedModel) -> None:
    with scripted._lock:
        scripted._turns.clear()
    scripted.script(ToolCalls([Call("lookup", {"q": "x"})]))
    server = ServerProcess(
        tmp_path, AGENT_MODEL_URL=scripted.url, AGENT_SANDBOX_ENABLED="false", AGENT_RUN_TIMEOUT="1"
    ).start()
    try:
        c = server.client()
        a = c.beta.assistants.create(model="m", tools=[{"type": "function", "function": {"name": "lookup"}}])
        t = c.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
        assert run.status == "requires_action" and run.expires_at is not None
        deadline = time.monotonic() + 30
        while run.status == "requires_action" and time.monotonic() < deadline:
            run = c.beta.threads.runs.retrieve(run.id, thread_id=t.id)
        assert run.status == "expired"
        step = c.beta.threads.runs.steps.list(run.id, thread_id=t.id).data[0]
        assert step.status == "expired" and step.expired_at
        c.beta.threads.messages.create(t.id, role="user", content="thread unlocked")
    finally:
        server.stop()
