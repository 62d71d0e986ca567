"""Responses are durable like runs: a background response survives kill -9; a foreground one whose
client left is still recorded."""

from __future__ import annotations

import time
from pathlib import Path

import openai

from tests.fakes.model_server import Gate, ScriptedModel, Text
from tests.process import ServerProcess


def _reset(model: ScriptedModel) -> None:
    with model._lock:
        model._turns.clear()
        model.requests.clear()


def _until(check: object, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what


def test_background_response_resumes_after_kill9(tmp_path: Path, scripted: ScriptedModel) -> None:
    _reset(scripted)
    held = Gate()
    scripted.script(
        Text("first answer", pieces=["first", " answer"], pause=held, pause_after=1), Text("after restart")
    )
    server = ServerProcess(tmp_path, AGENT_MODEL_URL=scripted.url, AGENT_SANDBOX_ENABLED="false").start()
    try:
        c = server.client()
        resp = c.responses.create(model="m", input="hello", background=True)
        _until(lambda: c.responses.retrieve(resp.id).status == "in_progress", "the response never started")
        server.kill9()
        held.set()
        server.start()
        c = server.client()
        _until(lambda: c.responses.retrieve(resp.id).status == "completed", "the response was not resumed")
        final = c.responses.retrieve(resp.id)
        assert final.output_text == "after restart" and len(final.output) == 1
        events = list(c.responses.retrieve(resp.id, stream=True))  # type: ignore[call-overload]
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert [e.sequence_number for e in events] == list(range(len(events)))
    finally:
        server.stop()


def test_a_foreground_response_whose_client_left_is_recorded(
    sdk: openai.OpenAI, model: ScriptedModel
) -> None:
    held = Gate()
    model.script(Text("one two three", pause=held, pause_after=1))
    response_id = ""
    with sdk.responses.create(model="m", input="count", stream=True) as stream:
        for event in stream:
            if event.type == "response.created":
                response_id = event.response.id
            if event.type == "response.output_text.delta":
                break  # the client leaves mid-answer
    held.set()
    _until(lambda: sdk.responses.retrieve(response_id).status == "completed", "the response was not finished")
    assert sdk.responses.retrieve(response_id).output_text == "one two three"
