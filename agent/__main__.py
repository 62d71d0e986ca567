"""``python -m agent serve [--host HOST] [--port PORT]`` (also the ``agent`` console script)."""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from agent.app import create_app
from agent.settings import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="agent", description="Assistants API for local models")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", help="listen address (AGENT_HOST)")
    serve.add_argument("--port", type=int, help="listen port (AGENT_PORT)")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = Settings(**overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
