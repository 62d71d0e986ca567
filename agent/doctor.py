"""``agent doctor``: check what the service needs, say what to fix, exit non-zero if something essential fails.

Essential: the model server (reachable, lists models, accepts tools), the database and the data
directory. Not essential (the service runs without them, with less): Docker and the sandbox image
(code_interpreter), a tool call from the model itself, embeddings.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from agent.llm import ChatRequest, Completion, ModelError, OpenAICompatModel
from agent.llm.managed import ManagedModel, ManagedModelError
from agent.settings import Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"
PROBE_TOOL = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Evaluate an arithmetic expression exactly.",
        "parameters": {
            "type": "object",
            "properties": {"expression": {"type": "string"}},
            "required": ["expression"],
        },
    },
}


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


async def check_model(settings: Settings, url: str) -> list[Check]:
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
            session.get(url.rstrip("/") + "/models", headers=headers) as resp,
        ):
            body = await resp.json(content_type=None) if resp.status == 200 else None
            status = resp.status
    except (aiohttp.ClientError, TimeoutError, ValueError) as err:
        fix = (
            "start a model server (see README, Backends) and set AGENT_MODEL_URL to its /v1 URL, "
            "or set AGENT_MODEL_FILE to a GGUF file so the service runs llama-server itself"
        )
        return [Check("model server", FAIL, f"{url} is unreachable: {err or type(err).__name__}", fix)]
    if status != 200 or not isinstance(body, dict):
        fix = "check AGENT_MODEL_URL (it ends in /v1) and AGENT_MODEL_API_KEY"
        return [Check("model server", FAIL, f"GET {url}/models answered {status}", fix)]
    names = [m["id"] for m in body.get("data") or [] if isinstance(m, dict) and m.get("id")]
    if not names:
        return [Check("model server", FAIL, f"{url} lists no models", "load a model in the model server")]
    checks = [Check("model server", OK, f"{url} answers; models: {', '.join(names[:5])}")]
    checks.append(await _probe_tools(settings, url, key, names[0]))
    return checks


async def _probe_tools(settings: Settings, url: str, key: str | None, name: str) -> Check:
    """One short chat request with a tool, through the same client the runs use."""
    model = OpenAICompatModel(
        url, api_key=key, tool_mode=settings.model_tool_mode, read_timeout=60, turn_timeout=120, max_retries=0
    )
    request = ChatRequest(
        model=name,
        messages=[{"role": "user", "content": "What is 12345 * 6789? Use the calculator tool."}],
        tools=[PROBE_TOOL],
        tool_choice="auto",
        max_tokens=64,
        temperature=0,
    )
    try:
        completion = None
        async for event in model.stream(request):
            if isinstance(event, Completion):
                completion = event
    except ModelError as err:
        fix = (
            "llama-server needs --jinja (and a chat template with tools); for a model without tool "
            "calling set AGENT_MODEL_TOOL_MODE=prompted"
        )
        return Check("tool calling", FAIL, f"a request with tools failed: {err.message}", fix)
    finally:
        await model.close()
    if completion is not None and completion.tool_calls:
        return Check("tool calling", OK, f"the model called {completion.tool_calls[0].name!r}")
    return Check(
        "tool calling",
        WARN,
        "the server accepts tools, but the model answered in text instead of calling one",
        "use a model trained for tool calling (README, Models) or AGENT_MODEL_TOOL_MODE=prompted",
    )


async def check_sandbox(settings: Settings) -> list[Check]:
    if not settings.sandbox_enabled:
        return [Check("sandbox", WARN, "code_interpreter is off (AGENT_SANDBOX_ENABLED=false)")]
    from sandbox import SandboxManager
    from sandbox.errors import SandboxUnavailable

    manager = SandboxManager(image=settings.sandbox_image, runtime=settings.sandbox_runtime, pool_size=0)
    try:
        try:
            client = await asyncio.to_thread(lambda: manager.client)
            version = (await asyncio.to_thread(client.version)).get("Version", "?")
        except SandboxUnavailable as err:
            fix = "start a Docker engine (`bash .ci/docker-up` installs and starts one) or set DOCKER_HOST"
            return [Check("docker engine", WARN, f"{err}; code_interpreter will be off", fix)]
        checks = [Check("docker engine", OK, f"Docker {version}")]
        if await manager.available():
            checks.append(Check("sandbox image", OK, settings.sandbox_image))
        else:
            fix = (
                "build it: `docker build -t agent-sandbox:latest sandbox/image` (with a registry) or "
                "`bash .ci/build-sandbox-image.sh` (offline), or set AGENT_SANDBOX_IMAGE"
            )
            checks.append(
                Check(
                    "sandbox image",
                    WARN,
                    f"{settings.sandbox_image} is missing; code_interpreter will be off",
                    fix,
                )
            )
        return checks
    finally:
        await manager.close()


async def check_database(settings: Settings) -> list[Check]:
    from agent.store import Store

    url = settings.db_url
    shown = url.split("@")[-1] if "@" in url else url  # never print a password
    fix = "check AGENT_DATABASE_URL (for PostgreSQL: `pip install -e '.[postgres]'`, server running)"
    if url.startswith("sqlite") and "///" in url:
        folder = Path(url.split("///", 1)[1].split("?")[0]).parent
        if not folder.is_dir():  # (opening it would fail in aiosqlite's own thread, noisily)
            return [Check("database", FAIL, f"{shown}: the directory {folder} does not exist", fix)]
    store = Store(url)
    try:
        await asyncio.wait_for(store.open(), 20)
    except Exception as err:
        return [Check("database", FAIL, f"{shown}: {type(err).__name__}: {str(err)[:200]}", fix)]
    finally:
        await store.close()
    return [Check("database", OK, shown)]


def check_data_dir(settings: Settings) -> list[Check]:
    path = settings.data_dir.resolve()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".doctor-"):
            pass
    except OSError as err:
        fix = "set AGENT_DATA_DIR to a directory this user can write"
        return [Check("data directory", FAIL, f"{path}: {err.strerror or err}", fix)]
    stat = os.statvfs(path)
    free = stat.f_bavail * stat.f_frsize / 2**30
    if free < 1:
        return [Check("data directory", WARN, f"{path}: only {free:.1f} GiB free", "free some disk space")]
    return [Check("data directory", OK, f"{path} ({free:.0f} GiB free)")]


ESSENTIAL = {"model server", "tool calling", "database", "data directory", "managed model"}


async def diagnose(settings: Settings) -> list[Check]:
    checks = check_data_dir(settings)
    checks += await check_database(settings)
    if settings.model_file is None:
        checks += await check_model(settings, settings.model_url)
    else:
        checks += await _check_managed(settings)
    checks += await check_sandbox(settings)
    return checks


async def _check_managed(settings: Settings) -> list[Check]:
    """Start llama-server for ``AGENT_MODEL_FILE`` as the service would, check it, stop it."""
    assert settings.model_file is not None
    log_file = Path(tempfile.mkdtemp(prefix="agent-doctor-")) / "llama-server.log"
    managed = ManagedModel.from_args(
        settings.model_file,
        settings.model_server_bin,
        settings.model_context,
        settings.model_server_args,
        log_file=log_file,
    )
    try:
        url = await managed.start()
        started = Check("managed model", OK, f"{managed.command()[0]} serves {settings.model_file} at {url}")
        return [started, *await check_model(settings, url)]
    except ManagedModelError as err:
        return [Check("managed model", FAIL, err.message, err.fix)]
    finally:
        await managed.close()
        shutil.rmtree(log_file.parent, ignore_errors=True)


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{c.status:<5} {c.name:<15} {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"{'':<5} {'':<15} fix: {c.fix}")
    failed = [c.name for c in checks if c.status == FAIL]
    lines.append(
        f"\n{len(failed)} essential check(s) failed: {', '.join(failed)}"
        if failed
        else "\nall essential checks passed"
    )
    return "\n".join(lines)


def exit_code(checks: list[Check]) -> int:
    return 1 if any(c.status == FAIL and c.name in ESSENTIAL for c in checks) else 0


def run(settings: Settings) -> int:
    """Print the checks; the exit code (1 when an essential check failed)."""
    checks = asyncio.run(diagnose(settings))
    print(render(checks))
    return exit_code(checks)
