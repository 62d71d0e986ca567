"""Timeouts and shutdown a person can rely on, with the service as a real subprocess.

A hung model server fails the run with a clear ``last_error``; SIGTERM ends open streams and leaves
executing runs for the next start, which resumes them at once; a client that goes away is not an error.
"""

from __future__ import annotations

import signal
from pathlib import Path

import openai
import pytest

from tests.fakes.model_server import Comments, Gate, ScriptedModel, Text
from tests.process import ServerProcess


def _server(tmp_path: Path, model: ScriptedModel, **env: str) -> ServerProcess:
    return ServerProcess(tmp_path, AGENT_MODEL_URL=model.url, AGENT_SANDBOX_ENABLED="false", **env)


def _errors(server: ServerProcess) -> list[str]:
    return [
        line
        for line in server.log.read_text().splitlines()
        if " ERROR " in line or " CRITICAL " in line or "Traceback" in line
    ]


def test_a_hung_model_server_fails_the_run_with_a_clear_error(tmp_path: Path, model: ScriptedModel) -> None:
    hung = Gate()
    model.script(Text("never", gate=hung), Comments(every=0.05))
    server = _server(tmp_path, model, AGENT_MODEL_READ_TIMEOUT="1", AGENT_MODEL_TURN_TIMEOUT="60").start()
    try:
        c = server.client()
        a = c.beta.assistants.create(model="m")
        for _ in ("no bytes at all", "only SSE comments"):
            t = c.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
            run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, poll_interval_ms=100)
            assert run.status == "failed"
            assert run.last_error is not None and run.last_error.code == "server_error"
            assert (
                run.last_error.message == f"model server at {model.url} sent no data for 1 s (read timeout)"
            )
            c.beta.threads.messages.create(t.id, role="user", content="the thread is usable again")
    finally:
        hung.set()
        server.stop()


def test_sigterm_ends_streams_and_the_next_start_resumes_the_run_at_once(
    tmp_path: Path, model: ScriptedModel
) -> None:
    held = Gate()
    model.script(Text("first answer", pieces=["first", " answer"], pause=held, pause_after=1))
    model.default = Text("answer after restart")
    # Leases that never lapse within the test: only a lease given back at shutdown lets the run resume.
    env = {"AGENT_LEASE_SECONDS": "3600", "AGENT_SHUTDOWN_TIMEOUT": "10"}
    server = _server(tmp_path, model, **env).start()
    try:
        c = server.client()
        a = c.beta.assistants.create(model="m")
        stream = c.beta.threads.create_and_run(
            assistant_id=a.id, thread={"messages": [{"role": "user", "content": "hello"}]}, stream=True
        )
        seen, ids = [], {}
        with pytest.raises(openai.APIError, match="shutting down") as raised:
            for event in stream:
                seen.append(event.event)
                if event.event in ("thread.created", "thread.run.created"):
                    ids[event.event] = event.data.id
                if event.event == "thread.message.delta":
                    assert server.proc is not None
                    server.proc.send_signal(signal.SIGTERM)
        assert raised.value.body == {
            "message": "The server is shutting down. The run goes on when it is back: retrieve the run "
            "to follow it.",
            "type": "server_error",
            "param": None,
            "code": "server_shutting_down",
        }
        assert seen[:2] == ["thread.created", "thread.run.created"] and "thread.message.delta" in seen
        assert server.proc is not None
        assert server.proc.wait(60) == 0  # a clean exit, well before a supervisor's SIGKILL
        assert _errors(server) == []
        held.set()

        server.start()
        c = server.client()
        thread_id, run_id = ids["thread.created"], ids["thread.run.created"]
        final = c.beta.threads.runs.poll(run_id, thread_id=thread_id, poll_interval_ms=100)
        assert final.status == "completed"
        msgs = c.beta.threads.messages.list(thread_id, order="asc").data
        assert [m.content[0].text.value for m in msgs] == ["hello", "answer after restart"]
    finally:
        held.set()
        model.default = Text("OK")
        server.stop()


def test_a_client_that_leaves_mid_stream_is_not_an_error(tmp_path: Path, model: ScriptedModel) -> None:
    held = Gate()
    model.script(Text("the whole answer", pieces=["the", " whole", " answer"], pause=held, pause_after=1))
    server = _server(tmp_path, model).start()
    try:
        c = server.client()
        a = c.beta.assistants.create(model="m")
        t = c.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
        with c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, stream=True) as stream:
            for event in stream:
                if event.event == "thread.message.delta":
                    break
            run_id = event.data.id if event.event.startswith("thread.run") else None
        held.set()
        run = c.beta.threads.runs.list(t.id).data[0]
        assert run_id is None or run.id == run_id
        final = c.beta.threads.runs.poll(run.id, thread_id=t.id, poll_interval_ms=100)
        assert final.status == "completed"
        assert c.beta.threads.messages.list(t.id).data[0].content[0].text.value == "the whole answer"
    finally:
        held.set()
        server.stop()
    log = server.log.read_text()
    assert _errors(server) == [], log
    assert "the client closed the stream" in log
