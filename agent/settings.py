"""One settings model, read once at start-up from ``AGENT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGENT_", extra="ignore")

    host: str = "127.0.0.1"
    """Listen address."""
    port: int = 8000
    """Listen port."""
    model_url: str = "http://127.0.0.1:8080/v1"
    """Base URL of the OpenAI-compatible model server (llama-server, Ollama, vLLM)."""
    model_api_key: SecretStr | None = None
    """Key sent to the model server; never logged."""
    model_aliases: str = ""
    """``name=target,…``: model names clients send (e.g. ``gpt-4o``) mapped to local ones; ``*=x`` maps all."""
    model_tool_mode: str = "native"
    """``native`` (the backend's tool calling) or ``prompted`` (tool schemas in the system prompt)."""
    model_context: int = 8192
    """Context window of the local model in tokens; ``truncation_strategy: auto`` keeps prompts within it."""
    embeddings: bool = True
    """Rank file_search hybrid (BM25 + embeddings) when the model server answers ``/v1/embeddings``."""
    embeddings_url: str | None = None
    """Server for embeddings (e.g. a llama-server with ``--embeddings``); the model server when unset."""
    data_dir: Path = Path("./data")
    """Where the SQLite file and uploaded files live."""
    database_url: str | None = None
    """SQLAlchemy URL; overrides the SQLite default (e.g. ``postgresql+asyncpg://…``)."""
    api_keys: SecretStr = SecretStr("")
    """Comma-separated keys accepted as ``Authorization: Bearer``; empty means no auth."""
    sandbox_image: str = "agent-sandbox:latest"
    """Image for code_interpreter."""
    sandbox_runtime: str | None = None
    """Docker runtime for the sandbox (e.g. ``runsc``); Docker's default when unset."""
    sandbox_enabled: bool = True
    """Offer code_interpreter (needs a Docker engine and the sandbox image)."""
    sandbox_pool: int = 2
    """Fresh sandbox containers kept started and waiting (0 starts one on a thread's first call)."""
    code_timeout: float = 30.0
    """Seconds one code_interpreter call may run before it is interrupted."""
    run_timeout: int = 600
    """Seconds until a run expires (``expires_at``)."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Largest JSON request body accepted; larger answers 413."""
    max_file_bytes: int = 512 * 1024 * 1024
    """Largest file upload accepted; larger answers 413."""
    sse_keepalive: float = 10.0
    """Seconds of silence on an event stream before a keep-alive comment is sent."""
    max_run_turns: int = Field(default=25, ge=1)
    """Cap on model calls within one run."""

    container_revive: bool = False
    """Using an expired container starts it again with its files (the hosted API answers "Container is
    expired")."""
    container_memory_cap_mb: int = Field(default=1024, ge=64)
    """A container's ``memory_limit`` (1g, 4g, …) is mapped to MiB and capped by this."""
    container_files_per_call: int = Field(default=20, ge=0)
    """Files one code_interpreter call in a container may add to it."""
    public_url: str | None = None
    """The service's URL as clients reach it (image URLs of code_interpreter outputs); the request's
    host when unset."""

    @property
    def keys(self) -> list[str]:
        return [k.strip() for k in self.api_keys.get_secret_value().split(",") if k.strip()]

    @property
    def aliases(self) -> dict[str, str]:
        pairs = (p.split("=", 1) for p in self.model_aliases.split(",") if "=" in p)
        return {k.strip(): v.strip() for k, v in pairs}

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{(self.data_dir / 'agent.db').resolve()}"
