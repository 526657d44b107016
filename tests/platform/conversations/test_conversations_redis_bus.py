"""RedisBus against a real redis-server: topics, the "*" pattern, confirmed subscriptions."""

from __future__ import annotations

import asyncio

import pytest

from lotse.platform.events_redis import RedisBus
from tests.platform.conversations.workers import RedisServer, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed "
                                "(apt-get install redis-server); CI installs it")


async def test_publish_reaches_subscribers_of_the_topic_and_of_everything():
    redis = RedisServer().start()
    publisher, listener = RedisBus(redis.url), RedisBus(redis.url)
    try:
        async with listener.subscribe("conversation.1") as one, listener.subscribe("*") as everything:
            # subscribe returned: the subscription is confirmed, nothing published now is missed.
            await publisher.publish("conversation.1", {"event": "message.posted", "n": 1})
            await publisher.publish("conversation.2", {"event": "message.posted", "n": 2})
            assert await asyncio.wait_for(anext(one), 5) == ("conversation.1", {"event": "message.posted", "n": 1})
            got = [await asyncio.wait_for(anext(everything), 5) for _ in range(2)]
            assert sorted(p["n"] for _t, p in got) == [1, 2]
        async with listener.subscribe("conversation.1") as again:
            await publisher.publish("conversation.1", {"event": "x"})
            assert (await asyncio.wait_for(anext(again), 5))[1] == {"event": "x"}
    finally:
        await publisher.close()
        await listener.close()
        redis.stop()


async def test_presence_renews_every_connection_of_the_worker_itself():
    """No socket refreshes its own presence: one task per worker renews them all, and stops with the last."""
    from lotse.platform.conversations.presence import RedisPresence

    redis = RedisServer().start()
    tracker = RedisPresence(redis.url, refresh_every=0.01)
    try:
        await tracker.connect(1, "tab-a")
        await tracker.connect(2, "tab-b")
        first = await tracker._redis.zscore("lotse:online:1", "tab-a")
        for _ in range(500):
            await asyncio.sleep(0.01)
            if await tracker._redis.zscore("lotse:online:1", "tab-a") > first:
                break
        assert await tracker._redis.zscore("lotse:online:1", "tab-a") > first
        assert await tracker.online([1, 2, 3]) == {1, 2}
        await tracker.disconnect(1, "tab-a")
        await tracker.disconnect(2, "tab-b")
        assert await tracker.online([1, 2]) == set()
        await asyncio.wait_for(tracker._refresher, 5)  # nothing left to renew: the task ends
    finally:
        await tracker.close()
        redis.stop()
