"""Per-run event streams inside one process: the executor publishes, SSE responses subscribe.

Every transition is persisted before it is published, so a poller that reads the store never sees
less than a stream subscriber has seen. Subscribers attach before the run starts executing.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agent.metrics import Metrics

# Events after which a stream leg ends (spec §4.1: terminal run states and requires_action).
END_EVENTS = frozenset(
    f"thread.run.{s}"
    for s in ("requires_action", "completed", "incomplete", "failed", "cancelled", "expired")
)
_FINAL = END_EVENTS - {"thread.run.requires_action"}


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]


SHUTDOWN = Event(
    "error",
    {
        "error": {
            "message": "The server is shutting down. The run goes on when it is back: retrieve the run to "
            "follow it.",
            "type": "server_error",
            "param": None,
            "code": "server_shutting_down",
        }
    },
)
"""Sent to every open stream when the service stops; the stream then ends."""


class EventBus:
    def __init__(self, metrics: Metrics | None = None) -> None:
        self._subscribers: dict[str, list[asyncio.Queue[Event]]] = defaultdict(list)
        self.metrics = metrics

    def subscribe(self, run_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers[run_id].append(queue)
        return queue

    def unsubscribe(self, run_id: str, queue: asyncio.Queue[Event]) -> None:
        queues = self._subscribers.get(run_id, [])
        if queue in queues:
            queues.remove(queue)
        if not queues:
            self._subscribers.pop(run_id, None)

    def shutdown(self) -> None:
        """End every open stream (the service is stopping; the runs stay in the store)."""
        for queues in self._subscribers.values():
            for queue in queues:
                queue.put_nowait(SHUTDOWN)

    def publish(self, run_id: str, name: str, data: dict[str, Any]) -> None:
        event = Event(name, data)
        if self.metrics is not None and name in _FINAL:
            created = data.get("created_at")
            self.metrics.run_ended(name[len("thread.run.") :], time.time() - created if created else None)
        for queue in self._subscribers.get(run_id, ()):
            queue.put_nowait(event)
