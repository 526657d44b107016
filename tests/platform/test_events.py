"""The in-process bus: delivery into shared queues."""

from __future__ import annotations

import asyncio

from lotse.platform.events import InProcessBus


async def test_overlapping_subscriptions_into_one_queue_end_independently():
    """Two subscriptions of one topic into the same queue: ending one leaves the other delivering, once."""
    bus = InProcessBus()
    queue: asyncio.Queue = asyncio.Queue()
    first = bus.subscribe("account.1", queue=queue)
    second = bus.subscribe("account.1", "account.2", queue=queue)
    await first.__aenter__()
    await second.__aenter__()
    await bus.publish("account.1", {"n": 1})
    assert queue.get_nowait() == ("account.1", {"n": 1})
    assert queue.empty()  # one queue hears an event once, however many of its subscriptions match
    await first.__aexit__(None, None, None)
    await bus.publish("account.1", {"n": 2})
    assert queue.get_nowait() == ("account.1", {"n": 2})
    await second.__aexit__(None, None, None)
    await bus.publish("account.1", {"n": 3})
    assert queue.empty()
    assert not bus._subscribers
