"""``python -m agent serve [--host HOST] [--port PORT]`` and ``python -m agent doctor`` (also the ``agent``
console script)."""

from __future__ import annotations

import argparse
import logging
import os
import threading
from collections.abc import Awaitable, Callable

from aiohttp import web

from agent import doctor, logs
from agent.app import create_app
from agent.llm import managed
from agent.llm.managed import ManagedModelError
from agent.settings import Settings

log = logging.getLogger("agent")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agent", description="Assistants API for local models")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="listen address (AGENT_HOST)")
    serve.add_argument("--port", type=int, help="listen port (AGENT_PORT)")
    sub.add_parser(
        "doctor", help="check the model server, Docker and the sandbox image, the database and the data dir"
    )
    args = parser.parse_args(argv)
    if args.command == "doctor":
        logs.configure(level="WARNING")
        raise SystemExit(doctor.run(Settings()))
    overrides = {
        k: v
        for k, v in (("host", getattr(args, "host", None)), ("port", getattr(args, "port", None)))
        if v is not None
    }
    settings = Settings(**overrides)
    logs.configure(settings.log_format, settings.log_level, _secrets(settings))
    app = create_app(settings)
    app.on_shutdown.insert(0, _watchdog(settings.shutdown_timeout))
    # aiohttp waits for running handlers twice (then cancels them); streams end at once when shutdown
    # begins, so a quarter of the budget each leaves half of it for closing tools and the store.
    try:
        web.run_app(
            app,
            host=settings.host,
            port=settings.port,
            print=None,
            access_log=None,
            shutdown_timeout=settings.shutdown_timeout / 4,
        )
    except ManagedModelError as err:
        log.error("cannot start the model server: %s%s", err.message, f" (fix: {err.fix})" if err.fix else "")
        raise SystemExit(1) from None
    log.info("stopped")


def _secrets(settings: Settings) -> list[str]:
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else ""
    return [*settings.keys, key]


def _watchdog(seconds: float) -> Callable[[web.Application], Awaitable[None]]:
    """Shutdown has begun: if it is not over within ``seconds``, exit anyway (before a supervisor's
    SIGKILL would), after the on-exit hooks (stopping a managed model server) ran."""

    async def start(app: web.Application) -> None:
        log.info("shutting down (at most %g s)", seconds)

        def overdue() -> None:
            log.error("shutdown took longer than %g s: exiting now", seconds)
            for hook in EXIT_HOOKS:
                hook()
            os._exit(1)

        timer = threading.Timer(seconds, overdue)
        timer.daemon = True
        timer.start()

    return start


EXIT_HOOKS: list[Callable[[], None]] = [managed.kill_all_now]
"""Run (in any thread) when the watchdog ends an overdue shutdown."""


if __name__ == "__main__":
    main()
