"""Who is online (has a conversations WebSocket open), across workers.

Used to decide who gets a "there is a new message" mail: only people who
are not online. In one process a counter per account is enough; with Redis
every connection is a member of a sorted set per account, scored by when it
expires, refreshed while the connection lives (by one task per worker for
all its connections), so a worker that dies without saying goodbye stops
counting after ``TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any, Protocol

log = logging.getLogger(__name__)

TTL = 90.0
REFRESH = 30.0


class Presence(Protocol):
    async def connect(self, account_id: int, connection_id: str) -> None: ...

    async def disconnect(self, account_id: int, connection_id: str) -> None: ...

    async def online(self, account_ids: Iterable[int]) -> set[int]: ...


class InProcessPresence:
    def __init__(self) -> None:
        self._connections: dict[int, set[str]] = {}

    async def connect(self, account_id: int, connection_id: str) -> None:
        self._connections.setdefault(account_id, set()).add(connection_id)

    async def disconnect(self, account_id: int, connection_id: str) -> None:
        connections = self._connections.get(account_id)
        if connections is not None:
            connections.discard(connection_id)
            if not connections:
                del self._connections[account_id]

    async def online(self, account_ids: Iterable[int]) -> set[int]:
        return {account_id for account_id in account_ids if self._connections.get(account_id)}


class RedisPresence:
    """Connections in Redis sorted sets; one refresh per worker every ``REFRESH`` seconds renews all of
    this worker's connections in one pipeline (no task per socket, no burst of round trips)."""

    def __init__(self, url: str, refresh_every: float = REFRESH) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)
        self._local: dict[int, set[str]] = {}
        self._refresh_every = refresh_every
        self._refresher: asyncio.Task[None] | None = None

    @staticmethod
    def _key(account_id: int) -> str:
        return f"lotse:online:{account_id}"

    async def connect(self, account_id: int, connection_id: str) -> None:
        self._local.setdefault(account_id, set()).add(connection_id)
        await self._write({account_id: {connection_id}})
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.create_task(self._refresh_all())

    async def _write(self, connections: dict[int, set[str]]) -> None:
        if not connections:
            return
        expires = time.time() + TTL
        async with self._redis.pipeline(transaction=False) as pipe:
            for account_id, ids in connections.items():
                key = self._key(account_id)
                pipe.zadd(key, dict.fromkeys(ids, expires))
                pipe.expire(key, int(TTL) + 10)
            await pipe.execute()

    async def _refresh_all(self) -> None:
        while self._local:
            await asyncio.sleep(self._refresh_every)
            try:
                await self._write({a: set(ids) for a, ids in self._local.items()})
            except Exception:
                log.warning("could not refresh who is online", exc_info=True)

    async def disconnect(self, account_id: int, connection_id: str) -> None:
        connections = self._local.get(account_id)
        if connections is not None:
            connections.discard(connection_id)
            if not connections:
                del self._local[account_id]
        await self._redis.zrem(self._key(account_id), connection_id)

    async def online(self, account_ids: Iterable[int]) -> set[int]:
        ids = list(account_ids)
        if not ids:
            return set()
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            for account_id in ids:
                pipe.zcount(self._key(account_id), now, "+inf")
            counts = await pipe.execute()
        return {account_id for account_id, count in zip(ids, counts, strict=True) if count}

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        await self._redis.aclose()


def presence(svc: Any) -> Presence:
    """Return the app's presence tracker (Redis when ``settings.redis_url`` is set)."""
    found = svc.extras.get("presence")
    if found is None:
        url = svc.settings.redis_url
        found = svc.extras["presence"] = RedisPresence(url) if url else InProcessPresence()
    return found  # type: ignore[no-any-return]
