"""Typed application state (aiohttp ``AppKey``s), in one place so modules can share it without cycles."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from concurrent.futures import Executor as PoolExecutor
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from agent.engine.bus import EventBus
    from agent.engine.executor import Executor
    from agent.engine.ingest import Ingestor
    from agent.llm import ChatModel
    from agent.llm.managed import ManagedModel
    from agent.metrics import Metrics
    from agent.settings import Settings
    from agent.store import Store
    from agent.tools import ServerTool
    from agent.tools.containers import Containers

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
STORE: web.AppKey[Store] = web.AppKey("store")
THREAD_DELETED: web.AppKey[list[Callable[[str], Awaitable[None]]]] = web.AppKey("thread_deleted")
FILE_DELETED: web.AppKey[list[Callable[[str, str], Awaitable[None]]]] = web.AppKey("file_deleted")
BUS: web.AppKey[EventBus] = web.AppKey("bus")
EXECUTOR: web.AppKey[Executor] = web.AppKey("executor")
MODEL: web.AppKey[ChatModel] = web.AppKey("model")
INGESTOR: web.AppKey[Ingestor] = web.AppKey("ingestor")
OWNER: web.RequestKey[str] = web.RequestKey("owner", str)
TOOLS: web.AppKey[dict[str, ServerTool]] = web.AppKey("tools")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
MANAGED: web.AppKey[list[ManagedModel]] = web.AppKey("managed_models")
VALIDATOR: web.AppKey[PoolExecutor] = web.AppKey("validator")  # big request bodies are validated here
CONTAINERS: web.AppKey[Containers] = web.AppKey("containers")
