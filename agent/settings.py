"""One settings model, read once at start-up from ``AGENT_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
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
    code_files_per_call: int = Field(default=50, ge=0)
    """Files one code_interpreter call may return (the model is told how many were skipped)."""
    code_bytes_per_call: int = Field(default=256 * 1024 * 1024, ge=0)
    """Bytes of files one code_interpreter call may return (sizes as the host sees them)."""
    code_files_per_thread: int = Field(default=500, ge=0)
    """Files code_interpreter may return over a thread's life."""
    code_bytes_per_thread: int = Field(default=1024 * 1024 * 1024, ge=0)
    """Bytes of files code_interpreter may return over a thread's life."""
    code_sessions_per_key: int = Field(default=8, ge=1)
    """Live code_interpreter sandboxes per API key; over it the tool tells the model to retry later."""
    sandbox_io_threads: int = Field(default=8, ge=2)
    """Threads of the sandbox's own executor (Docker calls, file copies), apart from the default one."""
    sandbox_data_mb: int = Field(default=256, ge=1)
    """Size of a sandbox's /mnt/data in MiB."""
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
    instance_id: str | None = None
    """This replica's stable name (its runs resume at once when it restarts); kept in the data
    directory when unset."""
    max_runs: int = Field(default=64, ge=1)
    """Runs one replica executes at once; further polled runs stay queued for any replica with room."""
    max_runs_per_key: int = Field(default=16, ge=1)
    """Runs one API key may have queued or in progress at once; past it, creating a run answers 429."""
    calculator_per_key: int = Field(default=1, ge=1)
    """Calculator evaluations one API key may have running at once (keep it below the worker count so a
    worker is always left for other keys); a key's further calls wait their turn, keys served in turn."""

    # -- a managed model server -------------------------------------------------------------------------
    model_file: Path | None = None
    """A GGUF file: the service starts ``llama-server`` for it (and stops it); ``AGENT_MODEL_URL`` is then
    ignored."""
    model_server_bin: str | None = None
    """The ``llama-server`` to run for ``AGENT_MODEL_FILE``; else ``PATH``, else the one
    ``.ci/llama-server.sh`` builds."""
    model_server_args: str = ""
    """Extra arguments for the managed ``llama-server`` (e.g. ``-t 8 -ngl 99``)."""

    # -- timeouts and shutdown --------------------------------------------------------------------------
    model_read_timeout: float = Field(default=60.0, gt=0)
    """Seconds the model server may send no data (SSE comments do not count) before the run fails."""
    model_turn_timeout: float = Field(default=300.0, gt=0)
    """Seconds one model call (one turn of a run, retries included) may take in all."""
    shutdown_timeout: float = Field(default=10.0, gt=0)
    """Seconds SIGTERM may take: streams end, executing runs stay for the next start to resume."""

    # -- observability ------------------------------------------------------------------------------------
    metrics_auth: bool = False
    """Put ``GET /metrics`` behind ``AGENT_API_KEYS`` (open by default, like ``/health``)."""
    log_format: Literal["text", "json"] = "text"
    """``text`` (one readable line per event) or ``json`` (one JSON object per line)."""
    log_level: str = "INFO"
    """Python logging level name (``DEBUG``, ``INFO``, ``WARNING``…)."""

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError("AGENT_LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    # -- tunables -----------------------------------------------------------------------------------------
    lease_seconds: int = Field(default=10, ge=2)
    """How long a replica's claim on a run lasts without renewal (another replica takes over after it)."""
    max_model_mistakes: int = Field(default=3, ge=1)
    """Invalid tool calls in a row after which a run fails."""
    calculator_workers: int = Field(default=2, ge=1)
    """Calculator worker processes."""
    calculator_timeout: float = Field(default=2.0, gt=0)
    """Seconds one calculator expression may take before its worker is killed."""
    sandbox_idle_ttl: float = Field(default=1200.0, gt=0)
    """Seconds a thread's sandbox may sit idle before it is removed (its variables and files are lost)."""

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
