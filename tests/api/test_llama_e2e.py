"""End to end through a REAL llama.cpp llama-server (tiny stories260K model, Qwen tool template) with the
official SDK as the client. Built and started by .ci/llama-server.sh; skipped when the binary is not
built, unless CI=true (then a failure)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.conftest import LiveServer, LoopThread, make_settings, require_docker, serve

pytestmark = pytest.mark.llama
LOOKUP = {"type": "function", "function": {
    "name": "lookup", "description": "Look a word up",
    "parameters": {"type": "object", "additionalProperties": False, "required": ["word"],
                   "properties": {"word": {"type": "string", "maxLength": 12}}}}}  # fmt: skip


@pytest.fixture(scope="module")
def real(
    llama_url: str, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    docker_ok = (
        subprocess.run(["docker", "image", "inspect", "agent-sandbox:latest"], capture_output=True).returncode
        == 0
    )
    settings = make_settings(
        tmp_path_factory.mktemp("llama"),
        model_url=llama_url,
        model_aliases="*=stories",
        sandbox_enabled=docker_ok,
        sandbox_pool=0,
        code_timeout=5.0,
    )
    yield from serve(loop_thread, settings)


@pytest.fixture
def sdk(real: LiveServer) -> openai.OpenAI:
    return real.client()


def test_plain_run_matches_the_server_at_temperature_0(sdk: openai.OpenAI, llama_url: str) -> None:
    prompt = "Once upon a time"
    direct = httpx.post(
        f"{llama_url}/chat/completions",
        timeout=60,
        json={"model": "stories", "messages": [{"role": "user", "content": prompt}], "temperature": 0},
    ).json()
    expected = direct["choices"][0]["message"]["content"]
    a = sdk.beta.assistants.create(model="gpt-4o", temperature=0)
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": prompt}])
    run = sdk.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id)
    assert run.status == "completed"
    assert run.usage and run.usage.completion_tokens == direct["usage"]["completion_tokens"]
    assert run.usage.prompt_tokens == direct["usage"]["prompt_tokens"]
    text = sdk.beta.threads.messages.list(t.id, run_id=run.id).data[0].content[0].text.value  # type: ignore[union-attr]
    assert text == expected and text
    t2 = sdk.beta.threads.create(messages=[{"role": "user", "content": prompt}])
    with sdk.beta.threads.runs.stream(thread_id=t2.id, assistant_id=a.id) as stream:
        streamed = "".join(stream.text_deltas)
        assert stream.get_final_run().status == "completed"
    assert streamed == expected


def test_forced_function_round_trip(sdk: openai.OpenAI) -> None:
    a = sdk.beta.assistants.create(model="gpt-4o", temperature=0, tools=[LOOKUP])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "Look up the word cat"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, tool_choice={"type": "function", "function": {"name": "lookup"}}
    )
    assert run.status == "requires_action", run.last_error
    call = run.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
    assert call.function.name == "lookup" and call.id.startswith("call_")
    assert isinstance(json.loads(call.function.arguments)["word"], str)
    run = sdk.beta.threads.runs.submit_tool_outputs_and_poll(
        run_id=run.id, thread_id=t.id, tool_outputs=[{"tool_call_id": call.id, "output": "a small animal"}]
    )
    assert run.status == "completed"


def test_forced_code_interpreter_ends_in_a_terminal_state(sdk: openai.OpenAI) -> None:
    require_docker()
    a = sdk.beta.assistants.create(model="gpt-4o", temperature=0, tools=[{"type": "code_interpreter"}])
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "Compute 2+2 in Python"}])
    run = sdk.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, tool_choice={"type": "code_interpreter"}
    )
    assert run.status in ("completed", "incomplete", "failed")
    steps = sdk.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc").data
    call = steps[0].step_details.tool_calls[0]  # type: ignore[union-attr]
    assert call.type == "code_interpreter" and call.code_interpreter.outputs  # type: ignore[union-attr]
