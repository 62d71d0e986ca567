"""A request that fails writes nothing, and a run that is not launched never holds the thread lock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import openai
import pytest

from tests.api.test_boundary import row_counts
from tests.conftest import LiveServer
from tests.fakes.model_server import Gate, ScriptedModel, Text

GHOST = "file-000000000000000000000000"
ATTACH = [{"file_id": GHOST, "tools": [{"type": "file_search"}]}]
BAD_CHUNKING = {"type": "static", "static": {"max_chunk_size_tokens": 50, "chunk_overlap_tokens": 40}}

# name → (the request, given a fresh thread and assistant of the caller; the status and words it gets)
CASES: dict[str, tuple[Callable[[openai.OpenAI, str, str], Any], int, str]] = {
    "thread with an unknown attachment": (
        lambda c, t, a: c.beta.threads.create(
            messages=[{"role": "user", "content": "x", "attachments": ATTACH}]  # type: ignore[list-item]
        ),
        404,
        f"No such File object: {GHOST}",
    ),
    "message with an unknown attachment": (
        lambda c, t, a: c.beta.threads.messages.create(t, role="user", content="x", attachments=ATTACH),  # type: ignore[arg-type]
        404,
        f"No such File object: {GHOST}",
    ),
    "vector store with an unknown file": (
        lambda c, t, a: c.vector_stores.create(name="kb", file_ids=["file-abc", GHOST]),
        404,
        "No such File object: file-abc",
    ),
    "assistant whose vector_stores helper names an unknown file": (
        lambda c, t, a: c.beta.assistants.create(
            model="m", tool_resources={"file_search": {"vector_stores": [{"file_ids": [GHOST]}]}}
        ),
        404,
        f"No such File object: {GHOST}",
    ),
    "assistant whose vector_stores helper has a bad chunking strategy": (
        lambda c, t, a: c.beta.assistants.create(
            model="m",
            tool_resources={"file_search": {"vector_stores": [{"chunking_strategy": BAD_CHUNKING}]}},  # type: ignore[typeddict-item]
        ),
        400,
        "max_chunk_size_tokens must be between 100 and 4096",
    ),
    "create_and_run with a tool_choice the run does not offer": (
        lambda c, t, a: c.beta.threads.create_and_run(
            assistant_id=a,
            thread={"messages": [{"role": "user", "content": "x"}]},
            tool_choice={"type": "function", "function": {"name": "nope"}},
        ),
        400,
        "Tool choice 'nope' not found",
    ),
    "run whose additional_messages name an unknown file": (
        lambda c, t, a: c.beta.threads.runs.create(
            t,
            assistant_id=a,
            additional_messages=[{"role": "user", "content": "x", "attachments": ATTACH}],  # type: ignore[list-item]
        ),
        404,
        f"No such File object: {GHOST}",
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_failed_request_writes_nothing(spine: LiveServer, name: str) -> None:
    call, status, words = CASES[name]
    c = spine.client()
    thread = c.beta.threads.create().id
    assistant = c.beta.assistants.create(model="m").id
    before = row_counts(spine)
    with pytest.raises(openai.APIStatusError) as err:
        call(c, thread, assistant)
    assert err.value.status_code == status and words in err.value.message
    assert row_counts(spine) == before, "the refused request left rows behind"
    # the thread is not locked by a run that never started: a message lands at once
    c.beta.threads.messages.create(thread, role="user", content="still open")
    assert c.beta.threads.runs.list(thread).data == []


def test_run_refused_by_the_lock_adds_no_messages(sdk: openai.OpenAI, model: ScriptedModel) -> None:
    gate = Gate()
    model.script(Text("held", gate=gate))
    a = sdk.beta.assistants.create(model="m").id
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "first"}]).id
    run = sdk.beta.threads.runs.create(t, assistant_id=a)
    try:
        with pytest.raises(openai.BadRequestError, match="already has an active run"):
            sdk.beta.threads.runs.create(
                t, assistant_id=a, additional_messages=[{"role": "user", "content": "second"}]
            )
        texts = [m.content[0].text.value for m in sdk.beta.threads.messages.list(t).data]  # type: ignore[union-attr]
        assert "second" not in texts
    finally:
        gate.set()
    assert sdk.beta.threads.runs.poll(run.id, thread_id=t).status == "completed"
