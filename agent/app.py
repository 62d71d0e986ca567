"""``create_app(settings)``: routes, middlewares, typed app state and background resources."""

from __future__ import annotations

import hmac
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from agent import metrics as prom
from agent import web as playground
from agent.api import (
    assistants,
    body,
    containers,
    conversations,
    expiry,
    files,
    messages,
    models,
    responses,
    runs,
    steps,
    threads,
    vector_stores,
)
from agent.api.common import owner_of_key
from agent.app_keys import (
    BUS,
    CONTAINERS,
    EXECUTOR,
    FILE_DELETED,
    INGESTOR,
    MANAGED,
    METRICS,
    MODEL,
    OWNER,
    SETTINGS,
    STORE,
    THREAD_DELETED,
    TOOLS,
    VALIDATOR,
)
from agent.engine.bus import EventBus
from agent.engine.executor import Executor
from agent.engine.identity import Identity
from agent.engine.ingest import Ingestor
from agent.engine.loop import Env
from agent.errors import Handler, Unauthorized, error_middleware
from agent.llm import ChatModel, OpenAICompatModel
from agent.llm.managed import ManagedModel, ManagedModelError
from agent.metrics import Metrics
from agent.observe import add_request_id, observe
from agent.retrieval import Index, OpenAIEmbedder, PgSearchIndex, SearchIndex
from agent.settings import Settings
from agent.store import Store
from agent.tools import ServerTool
from agent.tools.calculator import Calculator
from agent.tools.calculator_tool import CalculatorTool
from agent.tools.code_interpreter import CodeInterpreterTool, OutputLimits
from agent.tools.containers import ContainerPolicy, Containers
from agent.tools.file_search import FileSearchTool
from agent.tools.hosted import CODE, SEARCH, ContainerCodeTool, HostedFileSearch
from sandbox import Limits, SandboxManager

log = logging.getLogger(__name__)


def _auth_middleware(keys: list[str], open_paths: tuple[str, ...] = ("/health",)) -> Any:
    accepted = [k.encode() for k in keys]

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path in open_paths or playground.is_public(request.path):
            return await handler(request)
        header = request.headers.get("Authorization", "")
        key = header[7:].strip() if header[:7].lower() == "bearer " else ""
        given = key.encode("utf-8", "surrogateescape")  # compared as bytes: any header text is safe
        if keys and not any(hmac.compare_digest(given, k) for k in accepted):
            if not key:
                raise Unauthorized(
                    "You didn't provide an API key. You need to provide your API key in an Authorization "
                    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    code="invalid_api_key",
                )
            raise Unauthorized("Incorrect API key provided.", code="invalid_api_key")
        request[OWNER] = owner_of_key(key if keys else None)
        return await handler(request)

    return auth


async def health(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(settings: Settings | None = None, model: ChatModel | None = None) -> web.Application:
    """The service. ``model`` replaces the HTTP model client (a test double, or another backend)."""
    settings = settings or Settings()
    open_paths = ("/health",) if settings.metrics_auth else ("/health", "/metrics")
    app = web.Application(
        middlewares=[observe, error_middleware, _auth_middleware(settings.keys, open_paths)],
        client_max_size=settings.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[METRICS] = Metrics()
    app.on_response_prepare.append(add_request_id)
    app.router.add_get("/metrics", prom.handler(lambda request: request.app[METRICS]))
    app[THREAD_DELETED] = []
    app[FILE_DELETED] = []
    app.router.add_get("/health", health)
    for module in (assistants, threads, messages, runs, steps, files, vector_stores, models):
        app.router.add_routes(module.routes)
    for module in (responses, conversations):
        app.router.add_routes(module.routes)
    app.router.add_routes(containers.routes)
    app.router.add_routes(playground.routes)  # the playground page, served without a key
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.insert(0, _managed_model_ctx)  # first: later contexts use the model server's URL
    app.cleanup_ctx.append(_validator_ctx)
    app.cleanup_ctx.append(_model_ctx(model))
    app.cleanup_ctx.append(_ingest_ctx)
    app.cleanup_ctx.append(_tools_ctx)
    app.cleanup_ctx.append(_containers_ctx)
    app.cleanup_ctx.append(_executor_ctx)
    app.cleanup_ctx.append(expiry.expiry_ctx)
    app.on_shutdown.append(_drain)
    if not settings.keys:
        log.warning("AGENT_API_KEYS is empty: the API is open to anyone who can reach it")
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_url, settings.data_dir / "files")
    await store.open()
    app[STORE] = store
    await files.sweep_partial_uploads(app)
    yield
    await store.close()


async def _validator_ctx(app: web.Application) -> AsyncIterator[None]:
    pool = body.validator_pool()
    app[VALIDATOR] = pool
    yield
    pool.shutdown(wait=False, cancel_futures=True)


def _model_ctx(model: ChatModel | None) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        if model is not None:
            app[MODEL] = model
        else:
            key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
            app[MODEL] = OpenAICompatModel(
                settings.model_url,
                api_key=key,
                aliases=settings.aliases,
                tool_mode=settings.model_tool_mode,
                read_timeout=settings.model_read_timeout,
                turn_timeout=settings.model_turn_timeout,
            )
        yield
        await app[MODEL].close()

    return ctx


async def _executor_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[BUS] = EventBus(app[METRICS])
    env = Env(
        model=app[MODEL],
        tools=app[TOOLS],
        context=settings.model_context,
        max_turns=settings.max_run_turns,
        max_mistakes=settings.max_model_mistakes,
        metrics=app[METRICS],
    )
    identity = Identity.claim(settings.data_dir, settings.instance_id)
    executor = Executor(
        app[STORE],
        app[BUS],
        env,
        instance=identity.name,
        lease_seconds=settings.lease_seconds,
        max_runs=settings.max_runs,
    )
    app[EXECUTOR] = executor
    app[THREAD_DELETED].append(executor.thread_deleted)
    await executor.start()
    yield
    await executor.close()
    identity.release()


async def _managed_model_ctx(app: web.Application) -> AsyncIterator[None]:
    """``AGENT_MODEL_FILE``: run llama-server for it (a second one for embeddings when they are wanted)."""
    settings = app[SETTINGS]
    if settings.model_file is None:
        yield
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    def managed(role: str) -> ManagedModel:
        log_file = settings.data_dir / f"llama-server-{role}.log"
        return ManagedModel.from_args(
            settings.model_file,  # type: ignore[arg-type]
            settings.model_server_bin,
            settings.model_context,
            settings.model_server_args,
            log_file=log_file,
            role=role,
        )

    started = app[MANAGED] = [managed("chat")]
    await started[0].start()
    update = {"model_url": started[0].url}
    if settings.embeddings and not settings.embeddings_url:
        embedder = managed("embeddings")
        try:
            update["embeddings_url"] = await embedder.start()
            started.append(embedder)
        except ManagedModelError as err:
            log.info("file_search: no embeddings server for %s: %s", settings.model_file, err.message)
    app[SETTINGS] = settings.model_copy(update=update)
    try:
        yield
    finally:
        for server in started:
            await server.close()


async def _drain(app: web.Application) -> None:
    """Shutdown begins (SIGTERM): stop executing runs, left in the store for the next start to resume at
    once, then end every open stream with an ``error`` event, so no handler holds the shutdown up."""
    if EXECUTOR in app:
        await app[EXECUTOR].close()
    if BUS in app:
        app[BUS].shutdown()


async def _embedder(settings: Settings) -> OpenAIEmbedder | None:
    """Embeddings for hybrid search, if the server offers them now; lexical search otherwise."""
    if not settings.embeddings:
        return None
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    embedder = OpenAIEmbedder(settings.embeddings_url or settings.model_url, api_key=key, timeout=10)
    try:
        if await embedder.probe():
            log.info("file_search: hybrid ranking with embeddings from %s", embedder.url)
            return embedder
    except Exception as err:
        log.info("file_search: lexical ranking only (embeddings unavailable: %s)", err)
    return None


async def _ingest_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    embedder = await _embedder(settings)
    index: Index = (
        SearchIndex(settings.data_dir / "search.db", embedder=embedder)
        if app[STORE].sqlite
        else PgSearchIndex(app[STORE].engine, embedder=embedder)  # shared by every replica
    )
    await index.open()
    ingestor = Ingestor(app[STORE], index)
    app[INGESTOR] = ingestor
    app[FILE_DELETED].append(ingestor.file_deleted)
    await ingestor.start()
    yield
    await ingestor.close()
    await index.close()


def _sandbox_out(data_dir: Path) -> Path:
    """Where code_interpreter outputs are staged on their way from a sandbox into the file store."""
    path = data_dir / "sandbox-out"
    path.mkdir(parents=True, exist_ok=True)
    for leftover in path.glob("ci-*"):
        leftover.unlink(missing_ok=True)
    return path


async def _tools_ctx(app: web.Application) -> AsyncIterator[None]:
    """The server-side tools: calculator workers, the sandbox manager (when Docker is there), file_search."""

    settings = app[SETTINGS]
    calculator = Calculator(
        workers=settings.calculator_workers,
        timeout=settings.calculator_timeout,
        per_key=settings.calculator_per_key,
    )
    await calculator.start()
    app[METRICS].watch(prom.calculator_metrics(lambda: calculator.timeouts))
    manager: SandboxManager | None = SandboxManager(
        image=settings.sandbox_image,
        runtime=settings.sandbox_runtime,
        pool_size=settings.sandbox_pool,
        limits=Limits(timeout=settings.code_timeout, data_mb=settings.sandbox_data_mb),
        idle_ttl=settings.sandbox_idle_ttl,
        max_sessions_per_owner=settings.code_sessions_per_key,
        io_workers=settings.sandbox_io_threads,
    )
    try:
        if not settings.sandbox_enabled:
            raise RuntimeError("AGENT_SANDBOX_ENABLED is false")
        if not await manager.available():  # type: ignore[union-attr]
            raise RuntimeError(f"image {settings.sandbox_image} or the Docker engine is missing")
        await manager.start()  # type: ignore[union-attr]
    except Exception as err:
        log.warning("code_interpreter disabled: %s", err)
        await manager.close()  # type: ignore[union-attr]
        manager = None

    async def save(who: str, filename: str, data: bytes) -> dict[str, Any]:
        return await files.save_bytes(app, who, filename, data)

    async def load(who: str, file_id: str) -> tuple[str, bytes] | None:
        return await files.load_bytes(app, who, file_id)

    tools: dict[str, ServerTool] = {
        "calculator": CalculatorTool(calculator),
        "code_interpreter": CodeInterpreterTool(
            manager,
            save,
            load,
            timeout=settings.code_timeout,
            adopt=lambda who, name, tmp, size: files.adopt_file(app, who, name, tmp, size),
            tmp_dir=_sandbox_out(settings.data_dir),
            limits=OutputLimits(
                files_per_call=settings.code_files_per_call,
                bytes_per_call=settings.code_bytes_per_call,
                files_per_thread=settings.code_files_per_thread,
                bytes_per_thread=settings.code_bytes_per_thread,
            ),
        ),
        "file_search": FileSearchTool(app[INGESTOR].index),
    }
    app[TOOLS] = tools
    if manager is not None:
        app[THREAD_DELETED].append(manager.drop)
        app[METRICS].watch(prom.sandbox_metrics(manager.stats))
    yield
    await calculator.close()
    if manager is not None:
        await manager.close()


async def _containers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Containers (the Containers API) and the Responses built-in tools that use them."""
    settings, tools = app[SETTINGS], app[TOOLS]

    async def load(who: str, file_id: str) -> tuple[str, bytes] | None:
        return await files.load_bytes(app, who, file_id)

    policy = ContainerPolicy(
        revive=settings.container_revive,
        memory_cap_mb=settings.container_memory_cap_mb,
        files_per_call=settings.container_files_per_call,
    )
    manager = getattr(tools["code_interpreter"], "manager", None)
    service = Containers(app[STORE], manager, settings.data_dir / "containers", policy, load)
    app[CONTAINERS] = service
    tools[CODE] = ContainerCodeTool(service, timeout=settings.code_timeout)
    tools[SEARCH] = HostedFileSearch(app[INGESTOR].index)
    service.start()
    yield
    await service.close()
