"""Who is online (has a conversations WebSocket open), across workers.

Used to decide who gets a "there is a new message" mail: only people who
are not online. In one process a counter per account is enough; with Redis
every connection is a member of a sorted set per account, scored by when it
expires, refreshed while the connection lives, so a worker that dies
without saying goodbye stops counting after ``TTL`` seconds.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

TTL = 90.0
REFRESH = 30.0


class Presence(Protocol):
    async def connect(self, account_id: int, connection_id: str) -> None: ...

    async def refresh(self, account_id: int, connection_id: str) -> None: ...

    async def disconnect(self, account_id: int, connection_id: str) -> None: ...

    async def online(self, account_ids: Iterable[int]) -> set[int]: ...


class InProcessPresence:
    def __init__(self) -> None:
        self._connections: dict[int, set[str]] = {}

    async def connect(self, account_id: int, connection_id: str) -> None:
        self._connections.setdefault(account_id, set()).add(connection_id)

    async def refresh(self, account_id: int, connection_id: str) -> None:
        return None

    async def disconnect(self, account_id: int, connection_id: str) -> None:
        connections = self._connections.get(account_id)
        if connections is not None:
            connections.discard(connection_id)
            if not connections:
                del self._connections[account_id]

    async def online(self, account_ids: Iterable[int]) -> set[int]:
        return {account_id for account_id in account_ids if self._connections.get(account_id)}


class RedisPresence:
    needs_refresh = True

    def __init__(self, url: str) -> None:
        import redis.asyncio as redis

        self._redis: Any = redis.from_url(url)

    @staticmethod
    def _key(account_id: int) -> str:
        return f"lotse:online:{account_id}"

    async def connect(self, account_id: int, connection_id: str) -> None:
        await self.refresh(account_id, connection_id)

    async def refresh(self, account_id: int, connection_id: str) -> None:
        key = self._key(account_id)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {connection_id: time.time() + TTL})
            pipe.expire(key, int(TTL) + 10)
            await pipe.execute()

    async def disconnect(self, account_id: int, connection_id: str) -> None:
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
        await self._redis.aclose()


def presence(svc: Any) -> Presence:
    """Return the app's presence tracker (Redis when ``settings.redis_url`` is set)."""
    found = svc.extras.get("presence")
    if found is None:
        url = svc.settings.redis_url
        found = svc.extras["presence"] = RedisPresence(url) if url else InProcessPresence()
    return found  # type: ignore[no-any-return]
