"""The forwarding process's housekeeping: keeping a call's long-lived objects out of the collector's way."""

from __future__ import annotations

import asyncio
import gc
import weakref

from lotse.media.monitor import FrozenHeap


class _Node:
    me: _Node | None = None


async def test_joins_freeze_the_heap_and_a_leave_collects_what_was_left_behind() -> None:
    heap = FrozenHeap(delay=0)
    try:
        node = _Node()
        node.me = node  # a cycle: only the collector can free it
        ref = weakref.ref(node)
        heap.joined()
        await asyncio.sleep(0.01)
        assert heap.freezes == 1
        assert gc.get_freeze_count() > 0
        del node
        gc.collect()
        assert ref() is not None  # frozen: full collections leave it alone
        heap.left()
        await asyncio.sleep(0)
        assert ref() is None
        assert (heap.collections, heap.freezes) == (1, 2)
        assert gc.get_freeze_count() > 0
    finally:
        heap.close()
        gc.unfreeze()


async def test_a_join_soon_after_another_freezes_once() -> None:
    heap = FrozenHeap(delay=0.01)
    try:
        heap.joined()
        heap.joined()
        await asyncio.sleep(0.05)
        assert heap.freezes == 1
    finally:
        heap.close()
        gc.unfreeze()
