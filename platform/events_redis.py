"""The event bus over Redis pub/sub, for several workers (``LOTSE_REDIS_URL``).

Each process keeps one publishing connection and one pub/sub connection;
subscribers in the process share them. A topic is subscribed in Redis while
at least one local subscriber wants it (channel ``lotse:<topic>``; ``*`` is a
pattern subscription to ``lotse:*``), and every message that arrives is
handed to the local subscribers through an ``InProcessBus``. Publishing
never delivers locally on the side: everything, this worker's own events
included, comes back through Redis, so every subscriber sees one order.

``subscribe`` waits until Redis has confirmed the subscription before it
yields, so an event published after ``subscribe`` returned is never missed
(what "re-check access, then listen" relies on). When the connection drops,
the reader reconnects with a back-off and subscribes again; events published
meanwhile are lost, as with any pub/sub, and clients re-fetch on reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from lotse.platform.events import InProcessBus, deliver

log = logging.getLogger(__name__)

PREFIX = "lotse:"


class RedisBus:
    def __init__(self, url: str, *, queue_size: int = 1000) -> None:
        import redis.asyncio as redis

        self.url = url
        self._redis = redis.from_url(url)
        self._local = InProcessBus(queue_size)
        self._counts: dict[str, int] = {}
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._confirmed: dict[str, asyncio.Future[None]] = {}
        self._lock = asyncio.Lock()
        self._closed = False

    async def publish(self, topic: str, payload: dict[str, Any]) -> None:
        await self._redis.publish(PREFIX + topic, json.dumps([topic, payload], separators=(",", ":")))

    @asynccontextmanager
    async def subscribe(self, *topics: str, queue: asyncio.Queue[tuple[str, dict[str, Any]]] | None = None,
                        ) -> AsyncIterator[AsyncIterator[tuple[str, dict[str, Any]]]]:
        async with self._local.subscribe(*topics, queue=queue) as events:
            await self._add(topics)
            try:
                yield events
            finally:
                with contextlib.suppress(Exception):
                    await self._remove(topics)

    async def _ensure_reader(self) -> None:
        if self._pubsub is None:
            self._pubsub = self._redis.pubsub()
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read())

    async def _add(self, topics: tuple[str, ...]) -> None:
        waits: list[asyncio.Future[None]] = []
        async with self._lock:
            await self._ensure_reader()
            for topic in topics:
                self._counts[topic] = self._counts.get(topic, 0) + 1
                if self._counts[topic] == 1:
                    waits.append(await self._send_subscribe(topic))
                elif topic in self._confirmed:
                    waits.append(self._confirmed[topic])
        if waits:
            await asyncio.wait_for(asyncio.gather(*waits), timeout=10)

    async def _send_subscribe(self, topic: str) -> asyncio.Future[None]:
        channel = PREFIX + topic
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirmed[topic] = future
        if topic == "*":
            await self._pubsub.psubscribe(channel)
        else:
            await self._pubsub.subscribe(channel)
        return future

    async def _remove(self, topics: tuple[str, ...]) -> None:
        async with self._lock:
            for topic in topics:
                left = self._counts.get(topic, 0) - 1
                if left > 0:
                    self._counts[topic] = left
                    continue
                self._counts.pop(topic, None)
                self._confirmed.pop(topic, None)
                if self._pubsub is not None and not self._closed:
                    if topic == "*":
                        await self._pubsub.punsubscribe(PREFIX + topic)
                    else:
                        await self._pubsub.unsubscribe(PREFIX + topic)

    async def _read(self) -> None:
        delay = 0.1
        while not self._closed:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.01)
                    if not self._counts:
                        return
                    continue
                message = await self._pubsub.get_message(timeout=None)
                delay = 0.1
                if message is not None:
                    self._handle(message)
            except asyncio.CancelledError:
                raise
            except Exception:  # the connection dropped: reconnect and subscribe again
                if self._closed:
                    return
                log.warning("lost the Redis pub/sub connection; reconnecting", exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                async with self._lock:
                    await self._resubscribe()

    async def _resubscribe(self) -> None:
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        self._pubsub = self._redis.pubsub()
        for topic in list(self._counts):
            with contextlib.suppress(Exception):
                await self._send_subscribe(topic)

    def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        channel = channel.decode() if isinstance(channel, bytes) else str(channel or "")
        topic = channel[len(PREFIX):]
        if kind in ("subscribe", "psubscribe"):
            future = self._confirmed.get(topic)
            if future is not None and not future.done():
                future.set_result(None)
            return
        if kind not in ("message", "pmessage"):
            return
        if kind == "pmessage" and self._counts.get(topic):
            return  # also subscribed by name: the plain message delivers it
        try:
            real_topic, payload = json.loads(message["data"])
        except (ValueError, TypeError):
            log.warning("ignored a malformed event on %s", channel)
            return
        self._deliver(real_topic, payload, pattern=kind == "pmessage")

    def _deliver(self, topic: str, payload: dict[str, Any], *, pattern: bool) -> None:
        # InProcessBus.publish is a coroutine but never awaits anything; run it to completion here.
        local = self._local
        if pattern:
            deliver((topic, payload), local._subscribers.get("*", ()))
        elif self._counts.get("*"):
            deliver((topic, payload), local._subscribers.get(topic, ()), local._subscribers.get("*", ()))
        else:
            deliver((topic, payload), local._subscribers.get(topic, ()))

    async def close(self) -> None:
        self._closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self._local.close()
        with contextlib.suppress(Exception):
            await self._redis.aclose()
