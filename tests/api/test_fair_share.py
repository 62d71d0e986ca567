"""Per-key limits: a key over its concurrent-run limit gets the hosted 429; other keys are unaffected."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.conftest import LiveServer, LoopThread, make_settings, serve
from tests.fakes.model_server import Gate, ScriptedModel, Text


@pytest.fixture(scope="module")
def limited(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("limited"), model_url=scripted.url, api_keys="sk-a,sk-b", max_runs_per_key=1
    )
    yield from serve(loop_thread, settings)


def test_runs_over_the_per_key_limit_get_429(limited: LiveServer, model: ScriptedModel) -> None:
    a, b = limited.client("sk-a"), limited.client("sk-b")
    gate = Gate()
    model.script(Text("held", gate=gate))
    asst = a.beta.assistants.create(model="m").id
    held = a.beta.threads.create(messages=[{"role": "user", "content": "1"}]).id
    run = a.beta.threads.runs.create(held, assistant_id=asst)
    try:
        other = a.beta.threads.create(messages=[{"role": "user", "content": "2"}]).id
        with pytest.raises(openai.RateLimitError) as err:
            a.beta.threads.runs.create(other, assistant_id=asst)
        assert err.value.status_code == 429 and err.value.code == "rate_limit_exceeded"
        assert err.value.body["type"] == "requests" and "limit 1" in err.value.message  # type: ignore[index]
        assert err.value.response.headers["retry-after"]
        with pytest.raises(openai.RateLimitError):
            a.beta.threads.create_and_run(assistant_id=asst)
        assert a.beta.threads.runs.list(other).data == []  # the refused run left nothing
        # another key is not held back by this one
        b_asst = b.beta.assistants.create(model="m").id
        b_thread = b.beta.threads.create(messages=[{"role": "user", "content": "3"}]).id
        assert (
            b.beta.threads.runs.create_and_poll(thread_id=b_thread, assistant_id=b_asst).status == "completed"
        )
    finally:
        gate.set()
    assert a.beta.threads.runs.poll(run.id, thread_id=held).status == "completed"
    assert a.beta.threads.runs.create_and_poll(thread_id=other, assistant_id=asst).status == "completed"
