"""Per-run event streams inside one process: the executor publishes, SSE responses subscribe.

Every transition is persisted before it is published, so a poller that reads the store never sees
less than a stream subscriber has seen. Subscribers attach before the run starts executing.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

# Events after which a stream leg ends (spec §4.1: terminal run states and requires_action).
END_EVENTS = frozenset(
    f"thread.run.{s}"
    for s in ("requires_action", "completed", "incomplete", "failed", "cancelled", "expired")
)


@dataclass(frozen=True)
class Event:
    name: str
    data: dict[str, Any]


class EventBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, list[asyncio.Queue[Event]]] = defaultdict(list)

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

    def publish(self, run_id: str, name: str, data: dict[str, Any]) -> None:
        event = Event(name, data)
        for queue in self._subscribers.get(run_id, ()):
            queue.put_nowait(event)
