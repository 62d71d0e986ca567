"""Logs a person can follow: request and run ids on every line, text or JSON, never a secret.

``REQUEST_ID`` is set by the request middleware (``X-Request-ID`` taken or made) and ``RUN_ID`` by the
executor for each run it drives; a task started inside a request inherits its request id. The handler
installed by :func:`configure` adds both to every record and masks the configured secrets (API keys, the
model server's key) wherever they would appear in a message.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any

REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
RUN_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("run_id", default=None)
MASK = "***"
_IDS = (("request_id", REQUEST_ID), ("run_id", RUN_ID))


class ContextFilter(logging.Filter):
    """Put the current request and run ids on each record, and mask secrets in its message."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _IDS:
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        if self.secrets:
            message = record.getMessage()
            masked = self.mask(message)
            if masked != message:
                record.msg, record.args = masked, None
        return True

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text


class TextFormatter(logging.Formatter):
    """``2026-11-30 12:00:00,000 INFO agent.engine [req=… run=…]: message``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(ids)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{short}={v}" for short, v in _ids(record))
        record.ids = f" [{ids}]" if ids else ""
        return super().format(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the ids, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, _var in _IDS:
            value = getattr(record, name, None)
            if value:
                entry[name] = value
        for key in ("method", "path", "route", "status", "duration_ms"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def _ids(record: logging.LogRecord) -> list[tuple[str, str]]:
    pairs = (("req", getattr(record, "request_id", None)), ("run", getattr(record, "run_id", None)))
    return [(k, v) for k, v in pairs if v]


def configure(fmt: str = "text", level: str = "INFO", secrets: Iterable[str] = ()) -> logging.Handler:
    """Log to stderr in ``fmt`` (``text`` or ``json``) at ``level``; returns the installed handler."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # our own request line replaces it
    return handler
