"""AGENT_MODEL_FILE: the service runs a REAL llama-server itself (the tiny model in models/). Skipped when
the binary is not built (.ci/llama-server.sh build), unless CI=true (then a failure)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from agent.app_keys import MANAGED, SETTINGS
from agent.llm.managed import ManagedModel, find_binary
from tests.conftest import LLAMA_SCRIPT, LiveServer, LoopThread, make_settings, serve

pytestmark = pytest.mark.llama
MODEL = Path(__file__).resolve().parents[2] / "models" / "stories260K-qwen-tools.gguf"


@pytest.fixture(scope="module")
def built() -> None:
    if subprocess.run(["bash", str(LLAMA_SCRIPT), "path"], capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("llama-server is not built: run .ci/llama-server.sh build")
        pytest.skip("llama-server is not built (.ci/llama-server.sh build)")


@pytest.fixture(scope="module")
def managed(
    built: None, loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    tmp = tmp_path_factory.mktemp("managed")
    model_file = tmp / "model.gguf"  # a copy the restart test can take away and give back
    shutil.copy(MODEL, model_file)
    settings = make_settings(tmp, model_file=model_file, model_context=1024, model_server_args="-n 24 -t 1")
    yield from serve(loop_thread, settings)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().split()[2] if Path(f"/proc/{pid}/stat").exists() else "X"
    return state != "Z"


def cmdline(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def wait_for(condition: object, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_a_run_on_the_managed_model(managed: LiveServer) -> None:
    app = managed.runner.app  # type: ignore[union-attr]
    chat = app[MANAGED][0]
    assert chat.pid is not None and alive(chat.pid)
    argv = cmdline(chat.pid)
    assert argv[0] == find_binary()
    assert "--jinja" in argv and argv[argv.index("-c") + 1] == "1024"
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert app[SETTINGS].model_url == chat.url
    props = httpx.get(chat.url.removesuffix("/v1") + "/props").json()
    assert props["default_generation_settings"]["n_ctx"] == 1024

    sdk = managed.client()
    assert "model" in {m.id for m in sdk.models.list().data}  # the file's name, not its path
    a = sdk.beta.assistants.create(model="gpt-4o", instructions="Tell a story.")
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=a.id, thread={"messages": [{"role": "user", "content": "Once upon a time"}]}
    )
    assert run.status == "completed", run.last_error
    answer = sdk.beta.threads.messages.list(run.thread_id).data[0]
    assert answer.role == "assistant" and answer.content[0].text.value  # type: ignore[union-attr]


def test_embeddings_come_from_a_managed_server(managed: LiveServer) -> None:
    app = managed.runner.app  # type: ignore[union-attr]
    roles = {m.role: m for m in app[MANAGED]}
    assert set(roles) == {"chat", "embeddings"}
    assert app[SETTINGS].embeddings_url == roles["embeddings"].url
    assert "--embeddings" in cmdline(roles["embeddings"].pid)  # type: ignore[arg-type]
    got = httpx.post(roles["embeddings"].url + "/embeddings", json={"input": ["a cat"]}, timeout=30).json()
    assert len(got["data"][0]["embedding"]) > 0


def test_a_dead_server_fails_runs_clearly_and_comes_back(managed: LiveServer) -> None:
    app = managed.runner.app  # type: ignore[union-attr]
    chat: ManagedModel = app[MANAGED][0]
    model_file = chat.model_file
    hidden = model_file.with_suffix(".away")
    first = chat.pid
    assert first is not None
    sdk = managed.client()
    a = sdk.beta.assistants.create(model="m")
    model_file.rename(hidden)  # the restart cannot load the model until it is back
    try:
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: chat.restarts >= 1)
        run = sdk.beta.threads.create_and_run_poll(
            assistant_id=a.id,
            thread={"messages": [{"role": "user", "content": "hello"}]},
            poll_interval_ms=100,
        )
        assert run.status == "failed"
        assert run.last_error is not None and run.last_error.code == "server_error"
        assert run.last_error.message in (  # down, or up again and failing to load the model
            f"model server unreachable at {chat.url}: Connection refused",
            "model server returned 503: Loading model",
        )
    finally:
        hidden.rename(model_file)
    wait_for(lambda: chat.pid is not None and chat.pid != first)
    wait_for(lambda: httpx.get(chat.url.removesuffix("/v1") + "/health").status_code == 200)
    run = sdk.beta.threads.create_and_run_poll(
        assistant_id=a.id, thread={"messages": [{"role": "user", "content": "hello"}]}, poll_interval_ms=100
    )
    assert run.status == "completed", run.last_error


async def test_stopped_by_pid_on_close(built: None, tmp_path: Path) -> None:
    chat = ManagedModel(MODEL, context=512, args=["-t", "1"], log_file=tmp_path / "llama.log")
    url = await chat.start()
    pid = chat.pid
    assert pid is not None and alive(pid)
    async with httpx.AsyncClient() as client:
        assert (await client.get(url + "/models")).status_code == 200
    await chat.close()
    assert not alive(pid) and chat.pid is None
    assert "llama" in (tmp_path / "llama.log").read_text().lower()


def test_doctor_starts_and_checks_the_managed_model(built: None, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AGENT_DATA_DIR": str(tmp_path),
        "AGENT_SANDBOX_ENABLED": "false",
        "AGENT_MODEL_FILE": str(MODEL),
        "AGENT_MODEL_SERVER_ARGS": "-n 16 -t 1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "agent", "doctor"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok    managed model   {find_binary()} serves {MODEL}" in done.stdout
    assert "answers; models: stories260K-qwen-tools" in done.stdout
