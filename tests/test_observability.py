"""What the service shows about itself: Prometheus metrics, request ids, and logs without secrets."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer, LoopThread, make_settings, serve
from tests.fakes.model_server import Call, ScriptedModel, Text, ToolCalls
from tests.process import ServerProcess

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, **headers: str) -> Samples:
    resp = httpx.get(url + "/metrics", headers=headers, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_a_run(engine_server: LiveServer, sdk: openai.OpenAI, model: ScriptedModel) -> None:
    before = scrape(engine_server.url)
    model.script(
        ToolCalls(
            [Call("calculator", {"expression": "1/3 + 1/6"}), Call("calculator", {"expression": "(("})]
        ),
        Text("One third plus one sixth is one half."),
    )
    a = sdk.beta.assistants.create(model="m", tools=[{"type": "calculator"}])  # type: ignore[list-item]
    t = sdk.beta.threads.create(messages=[{"role": "user", "content": "1/3 + 1/6?"}])
    with sdk.beta.threads.runs.stream(thread_id=t.id, assistant_id=a.id) as stream:
        stream.until_done()
        assert stream.current_run is not None and stream.current_run.status == "completed"
    after = scrape(engine_server.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    runs_route = {"method": "POST", "route": "/v1/threads/{thread_id}/runs", "status": "200"}
    assert grew("agent_http_requests_total", **runs_route) == 1
    assert grew("agent_http_requests_total", method="POST", route="/v1/assistants", status="200") == 1
    assert grew("agent_runs_total", status="completed") == 1
    assert grew("agent_run_duration_seconds_count", status="completed") == 1
    assert grew("agent_model_time_to_first_token_seconds_count") == 2  # two model turns
    assert grew("agent_model_tokens_per_second_count") == 2
    assert grew("agent_tool_calls_total", tool="calculator", outcome="ok") == 1
    assert grew("agent_tool_calls_total", tool="calculator", outcome="error") == 1  # "((" is no expression
    assert grew("agent_tool_call_duration_seconds_count", tool="calculator") == 2
    assert value(after, "agent_open_streams") == 0
    assert ("agent_calculator_timeouts_total", frozenset()) in after
    assert value(after, "process_open_fds") > 0


def test_unknown_paths_share_one_route_label(engine_server: LiveServer) -> None:
    before = scrape(engine_server.url)
    assert httpx.get(engine_server.url + "/v1/no/such/thing").status_code == 404
    after = scrape(engine_server.url)
    key = (
        "agent_http_requests_total",
        frozenset({"method": "GET", "route": "(unmatched)", "status": "404"}.items()),
    )
    assert after[key] - before.get(key, 0) == 1


@pytest.fixture(scope="module")
def locked(loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("locked"), api_keys="sk-test", metrics_auth=True)
    yield from serve(loop_thread, settings)


def test_metrics_are_open_unless_a_setting_locks_them(spine: LiveServer, locked: LiveServer) -> None:
    assert httpx.get(spine.url + "/v1/assistants").status_code == 401  # the API needs a key…
    scrape(spine.url)  # …the metrics do not
    assert httpx.get(locked.url + "/metrics").status_code == 401
    assert httpx.get(locked.url + "/metrics", headers={"Authorization": "Bearer sk-wrong"}).status_code == 401
    scrape(locked.url, Authorization="Bearer sk-test")


def test_request_ids_are_taken_or_made_and_returned(spine: LiveServer) -> None:
    given = httpx.get(spine.url + "/v1/assistants", headers={"X-Request-ID": "trace-42.a"})
    assert given.status_code == 401 and given.headers["X-Request-ID"] == "trace-42.a"
    made = httpx.get(spine.url + "/health")
    assert made.headers["X-Request-ID"].startswith("req_")
    other = httpx.get(spine.url + "/health")
    assert other.headers["X-Request-ID"] != made.headers["X-Request-ID"]
    bad = httpx.get(spine.url + "/health", headers={"X-Request-ID": "x" * 500})
    assert bad.headers["X-Request-ID"].startswith("req_")  # unusable ids are replaced, never echoed


def test_json_logs_carry_request_and_run_ids_and_no_secret(tmp_path: Path, model: ScriptedModel) -> None:
    secret, model_secret = "sk-local-secret-1234", "sk-model-secret-5678"
    model.api_key = model_secret
    model.script(Text("Hello there"))
    server = ServerProcess(
        tmp_path,
        AGENT_MODEL_URL=model.url,
        AGENT_SANDBOX_ENABLED="false",
        AGENT_LOG_FORMAT="json",
        AGENT_API_KEYS=secret,
        AGENT_MODEL_API_KEY=model_secret,
    ).start()
    try:
        c = openai.OpenAI(base_url=server.url + "/v1", api_key=secret, max_retries=0)
        server.clients.append(c)
        a = c.beta.assistants.create(model="m")
        t = c.beta.threads.create(messages=[{"role": "user", "content": f"my key is {secret}"}])
        run = c.beta.threads.runs.with_raw_response.create(
            thread_id=t.id, assistant_id=a.id, extra_headers={"X-Request-ID": "trace-run-1"}
        )
        run_id = run.parse().id
        assert run.headers["X-Request-ID"] == "trace-run-1"
        assert c.beta.threads.runs.poll(run_id, thread_id=t.id, poll_interval_ms=100).status == "completed"
        bad = httpx.get(server.url + "/v1/assistants", headers={"Authorization": f"Bearer {secret}x"})
        assert bad.status_code == 401
    finally:
        model.api_key = None
        server.stop()
    text = server.log.read_text()
    assert secret not in text and model_secret not in text
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    access = [line for line in lines if line["logger"] == "agent.access"]
    assert all(line["request_id"] for line in access)
    created = [line for line in access if line["request_id"] == "trace-run-1"]
    assert [(x["method"], x["route"], x["status"]) for x in created] == [
        ("POST", "/v1/threads/{thread_id}/runs", 200)
    ]
    engine = [line for line in lines if line.get("run_id") == run_id and line["logger"] != "agent.access"]
    assert engine and engine[-1]["message"] == f"run {run_id} is completed"
    assert engine[-1]["request_id"] == "trace-run-1"  # the run's lines name the request that started it


@pytest.mark.docker
def test_sandbox_metrics_after_a_code_interpreter_run(
    ci_server: LiveServer, ci: openai.OpenAI, model: ScriptedModel
) -> None:
    before = scrape(ci_server.url)
    model.script(ToolCalls([Call("code_interpreter", {"code": "print(6 * 7)"})]), Text("42"))
    a = ci.beta.assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    t = ci.beta.threads.create(messages=[{"role": "user", "content": "6 * 7?"}])
    assert ci.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id).status == "completed"
    after = scrape(ci_server.url)
    assert value(after, "agent_sandbox_sessions") >= 1  # this thread's session lives on
    assert ("agent_sandbox_pool_ready", frozenset()) in after
    started = value(after, "agent_sandbox_cold_starts_total") - value(
        before, "agent_sandbox_cold_starts_total"
    )
    assert started in (0, 1)  # from the warm pool, or cold when the pool was still filling
    for name in ("agent_sandbox_kills_total", "agent_sandbox_ooms_total"):
        assert (name, frozenset()) in after
    ok = {"tool": "code_interpreter", "outcome": "ok"}
    assert value(after, "agent_tool_calls_total", **ok) - value(before, "agent_tool_calls_total", **ok) == 1


def test_odd_methods_do_not_make_new_labels(spine: LiveServer) -> None:
    httpx.request("PROPFIND", spine.url + "/v1/assistants")
    samples = scrape(spine.url)
    methods = {dict(labels).get("method") for name, labels in samples if name == "agent_http_requests_total"}
    assert "PROPFIND" not in methods and "OTHER" in methods
