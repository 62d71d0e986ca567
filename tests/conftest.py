"""Shared fixtures: the service on a real loopback port, driven by the official openai SDK."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from agent.app import create_app
from agent.settings import Settings
from tests.fakes.model_server import ScriptedModel
from tests.postgres import cluster, fresh_database


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LoopThread:
    """An asyncio loop in a background thread, so synchronous SDK calls can drive async servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any, timeout: float = 60) -> Any:
        fut: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


class LiveServer:
    def __init__(self, loop: LoopThread, settings: Settings) -> None:
        self.loop, self.settings = loop, settings
        self.runner: web.AppRunner | None = None
        self.clients: list[openai.OpenAI] = []  # kept (and closed at the end) so no pooled socket leaks
        self.url = f"http://127.0.0.1:{settings.port}"

    async def start(self) -> None:
        self.runner = web.AppRunner(create_app(self.settings), handle_signals=False)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.settings.port).start()

    async def stop(self) -> None:
        if self.runner:
            await self.runner.cleanup()

    def client(self, key: str = "sk-test", **kw: Any) -> openai.OpenAI:
        client = openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)
        self.clients.append(client)
        return client


def serve(loop_thread: LoopThread, settings: Settings) -> Iterator[LiveServer]:
    """Run the service for a fixture's lifetime (stopping waits for sandboxes to be removed)."""
    server = LiveServer(loop_thread, settings)
    loop_thread.run(server.start())
    yield server
    for client in server.clients:
        client.close()
    loop_thread.run(server.stop(), timeout=120)


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    lt = LoopThread()
    yield lt
    lt.stop()


def make_settings(tmp: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "port": free_port(),
        "data_dir": tmp,
        "model_url": "http://127.0.0.1:9/v1",
        "sandbox_enabled": False,
        # the shared test servers serve many tests' threads and containers under one key; the tests of the
        # per-key session limit set their own
        "code_sessions_per_key": 64,
    }
    base.update(overrides)
    return Settings(**base)


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """The admin URL of a real PostgreSQL cluster (see tests/postgres.py)."""
    yield from cluster()


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The store the API services below use: SQLite in their data directory, or a fresh PostgreSQL
    database (each test using them runs against both)."""
    if request.param == "sqlite":
        return {}
    return {"database_url": fresh_database(request.getfixturevalue("postgres"))}


@pytest.fixture(scope="session")
def spine(
    loop_thread: LoopThread, tmp_path_factory: pytest.TempPathFactory, backend: dict[str, Any]
) -> Iterator[LiveServer]:
    """A service with two accepted keys (for isolation tests) and no model behind it."""
    settings = make_settings(
        tmp_path_factory.mktemp("spine"), api_keys="sk-test,sk-other", max_body_bytes=1024 * 1024, **backend
    )
    yield from serve(loop_thread, settings)


@pytest.fixture
def client(spine: LiveServer) -> openai.OpenAI:
    return spine.client()


def require_docker(image: str = "agent-sandbox:latest") -> None:
    """Skip without a Docker engine and the sandbox image, except in CI (CI=true), where it fails."""
    import docker

    try:
        client = docker.from_env()
        client.images.get(image)
        client.close()
    except Exception as err:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and no usable Docker engine/image: {err}", pytrace=False)
        pytest.skip(f"no Docker engine or image: {err}")


@pytest.fixture(scope="session")
def ci_server(
    loop_thread: LoopThread, scripted: ScriptedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """A service with the real sandbox behind code_interpreter."""
    require_docker()
    settings = make_settings(
        tmp_path_factory.mktemp("ci"),
        model_url=scripted.url,
        sandbox_enabled=True,
        sandbox_pool=1,
        code_timeout=3.0,
    )
    yield from serve(loop_thread, settings)


@pytest.fixture
def ci(ci_server: LiveServer, model: ScriptedModel) -> openai.OpenAI:
    return ci_server.client()


@pytest.fixture(scope="session")
def scripted() -> Iterator[ScriptedModel]:
    with ScriptedModel() as model:
        yield model


@pytest.fixture(scope="session")
def engine_server(
    loop_thread: LoopThread,
    scripted: ScriptedModel,
    tmp_path_factory: pytest.TempPathFactory,
    backend: dict[str, Any],
) -> Iterator[LiveServer]:
    """A service whose model is the scripted fake (no sandbox), on each backend."""
    settings = make_settings(
        tmp_path_factory.mktemp("engine"), model_url=scripted.url, sse_keepalive=0.2, **backend
    )
    yield from serve(loop_thread, settings)


@pytest.fixture
def model(scripted: ScriptedModel) -> ScriptedModel:
    """The scripted model, with an empty script and no recorded requests for this test."""
    with scripted._lock:
        scripted._turns.clear()
        scripted.requests.clear()
        scripted.embedding_requests.clear()
    return scripted


@pytest.fixture
def sdk(engine_server: LiveServer, model: ScriptedModel) -> openai.OpenAI:
    return engine_server.client()


LLAMA_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "llama-server.sh"
LLAMA_N_PREDICT = 256  # the tiny model rambles; bound each answer server-side


@pytest.fixture(scope="session")
def llama_url() -> Iterator[str]:
    """A real llama-server (.ci/llama-server.sh) on a loopback port; skipped when not built, unless CI=true."""
    if subprocess.run(["bash", str(LLAMA_SCRIPT), "path"], capture_output=True).returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("llama-server is not built: run .ci/llama-server.sh build")
        pytest.skip("llama-server is not built (.ci/llama-server.sh build)")
    port = free_port()
    subprocess.run(["bash", str(LLAMA_SCRIPT), "start", str(port), "-n", str(LLAMA_N_PREDICT)], check=True)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        subprocess.run(["bash", str(LLAMA_SCRIPT), "stop", str(port)], check=True)
