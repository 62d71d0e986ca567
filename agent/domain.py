"""Domain objects below both ``api/`` and ``engine/``: ids, the clock, constructors, status vocabulary.

Nothing here imports from the rest of ``agent``; every layer may import from here.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

_ALPHABET = string.ascii_letters + string.digits

# --- status vocabulary ------------------------------------------------------------------------------
RUN_TERMINAL = ("completed", "incomplete", "failed", "cancelled", "expired")
"""A run (or a response) in one of these states never changes again."""
RUN_LEG_END = (*RUN_TERMINAL, "requires_action")
"""States in which no replica executes the run (a leg ends here)."""
RUN_ACTIVE = ("queued", "in_progress", "requires_action", "cancelling")
"""States that hold the thread lock (one active run per thread)."""
RUN_RESUMABLE = ("queued", "in_progress", "cancelling")
"""States a replica executes while holding the run's lease."""
RESPONSE_STATUSES = ("queued", "in_progress", "completed", "failed", "cancelled", "incomplete")
ITEM_STATUSES = ("in_progress", "completed", "incomplete")


# --- ids and the clock ------------------------------------------------------------------------------
def new_id(prefix: str) -> str:
    """``prefix`` + 24 random base62 characters (~142 bits), from one call to the OS's CSPRNG."""
    n = secrets.randbits(143)
    chars = []
    for _ in range(24):
        n, r = divmod(n, 62)
        chars.append(_ALPHABET[r])
    return prefix + "".join(chars)


def now() -> int:
    return int(time.time())


# --- constructors -----------------------------------------------------------------------------------
def text_part(value: str) -> dict[str, Any]:
    """An Assistants message text part."""
    return {"type": "text", "text": {"value": value, "annotations": []}}


def new_message(
    thread_id: str,
    role: str,
    content: list[dict[str, Any]],
    *,
    status: str = "completed",
    assistant_id: str | None = None,
    run_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A thread message (also what a conversation's message item is stored as)."""
    created = now()
    return {
        "id": new_id("msg_"),
        "object": "thread.message",
        "created_at": created,
        "thread_id": thread_id,
        "status": status,
        "incomplete_details": None,
        "completed_at": created if status == "completed" else None,
        "incomplete_at": None,
        "role": role,
        "content": content,
        "assistant_id": assistant_id,
        "run_id": run_id,
        "attachments": attachments or [],
        "metadata": metadata or {},
    }
