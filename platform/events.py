"""The event bus: in-process by default; Redis pub/sub between workers later.

Actions queue events while they write and publish them only after their
transaction has committed, so nobody hears of a change that was rolled back.
Events are past-tense frozen dataclasses; on the bus they travel as
``(topic, payload)`` with a JSON-able payload, so that the Redis transport
needs no pickling.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol


@dataclass(frozen=True)
class Event:
    """Base of every event; ``topic`` routes it (e.g. ``account.42``)."""

    name: ClassVar[str] = "event"

    @property
    def topic(self) -> str:
        return self.name

    def payload(self) -> dict[str, Any]:
        return {"event": self.name, **dataclasses.asdict(self)}


class EventBus(Protocol):
    async def publish(self, topic: str, payload: dict[str, Any]) -> None: ...

    def subscribe(self, *topics: str, queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None) -> Any:
        """Return an async context manager yielding an async iterator of ``(topic, payload)``.

        With ``queue``, events go into that queue instead (several subscriptions may share
        one, and a reader needs no task per subscription); the iterator then reads it."""
        ...

    async def close(self) -> None: ...


class InProcessBus:
    """Delivers to subscribers in this process; bounded queues, slow readers lose the oldest."""

    def __init__(self, queue_size: int = 1000) -> None:
        # topic -> {queue: how many live subscriptions deliver into it}: subscriptions that share a
        # queue may overlap on a topic, and the end of one must not end the other's.
        self._subscribers: dict[str, dict[asyncio.Queue[tuple[str, dict[str, Any]]], int]] = {}
        self._queue_size = queue_size

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        deliver((topic, payload), self._subscribers.get(topic, ()), self._subscribers.get("*", ()))

    @asynccontextmanager
    async def subscribe(self, *topics: str, queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None,
                        ) -> AsyncIterator[AsyncIterator[tuple[str, dict[str, Any]]]]:
        if queue is None:
            queue = asyncio.Queue(self._queue_size)
        for topic in dict.fromkeys(topics):
            queues = self._subscribers.setdefault(topic, {})
            queues[queue] = queues.get(queue, 0) + 1
        try:
            yield _drain(queue)
        finally:
            for topic in dict.fromkeys(topics):
                found = self._subscribers.get(topic)
                if found is not None and queue in found:
                    found[queue] -= 1
                    if not found[queue]:
                        del found[queue]
                    if not found:
                        del self._subscribers[topic]

    async def close(self) -> None:
        self._subscribers.clear()


def deliver(item: tuple[str, dict[str, Any]], *groups: Any) -> None:
    """Put ``item`` into every queue of ``groups`` once (a shared queue may appear in several);
    a full queue loses its oldest item."""
    if len(groups) == 1:  # one group: no queue twice
        for queue in list(groups[0]):
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)
        return
    seen: set[int] = set()
    for group in groups:
        for queue in list(group):
            if id(queue) in seen:
                continue
            seen.add(id(queue))
            if queue.full():
                queue.get_nowait()
            queue.put_nowait(item)


async def _drain(queue: asyncio.Queue[tuple[str, dict[str, Any]]]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    while True:
        yield await queue.get()
