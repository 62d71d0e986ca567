"""The constants users tune are settings: the model-mistake limit and the calculator's timeout reach runs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import LiveServer, LoopThread, make_settings, serve
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls
from tests.tools.test_calculator import EXPENSIVE


@pytest.fixture(scope="module")
def tuned(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("tuned"),
        model_url=scripted.url,
        max_model_mistakes=1,
        calculator_workers=1,
        calculator_timeout=0.5,
    )
    yield from serve(loop_thread, settings)


def test_one_bad_call_is_enough_when_the_limit_is_one(tuned: LiveServer, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("no_such_tool", {})]))
    sdk = tuned.client()
    a = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=a.id, thread={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert run.status == "failed"
    assert run.last_error is not None
    assert run.last_error.message == "The model made invalid tool calls 1 times in a row."


def test_the_calculator_timeout_is_the_setting(tuned: LiveServer, model: ScriptedModel) -> None:
    model.script(ToolCalls([Call("calculator", {"expression": EXPENSIVE})]), Text("too hard"))
    sdk = tuned.client()
    a = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=a.id, thread={"messages": [{"role": "user", "content": "compute"}]}
    )
    assert run.status == "completed"
    step = sdk.beta.threads.runs.steps.list(run.id, thread_id=run.thread_id, order="asc").data[0]
    output = step.step_details.tool_calls[0].function.output  # type: ignore[union-attr]
    assert output.startswith("Error: the calculation timed out after 0.5 seconds")
