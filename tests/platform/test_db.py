"""SQLite as Lotse opens it: transactions that read and then write survive another connection's commit."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from tortoise.context import TortoiseContext
from tortoise.transactions import in_transaction

from lotse.platform.db import tortoise_config


async def test_two_connections_reading_then_writing_at_once_both_succeed(tmp_path: Path) -> None:
    """Two processes' connections (as two workers have) each read a counter and write it back plus one.

    With a deferred ``BEGIN`` the first one's write failed with "database is
    locked" because the second committed after the first had read; with
    ``BEGIN IMMEDIATE`` the second waits for the first and reads its result.
    """
    url = f"sqlite://{tmp_path / 'two.sqlite3'}"
    first_has_read = asyncio.Event()
    second_done = asyncio.Event()

    async def bump(first: bool) -> int:
        async with TortoiseContext() as ctx:  # a connection of its own, as another process has
            await ctx.init(config=tortoise_config(url))
            try:
                if not first:
                    await first_has_read.wait()
                async with in_transaction("default") as conn:
                    _count, rows = await conn.execute_query("SELECT n FROM counter")
                    n = int(rows[0][0])
                    if first:
                        first_has_read.set()
                        # Give the second every chance to commit in between (it cannot when this holds the lock).
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(second_done.wait(), 0.5)
                    await conn.execute_query("UPDATE counter SET n = ?", [n + 1])
                second_done.set()
                return n + 1
            finally:
                await ctx.close_connections()

    async with TortoiseContext() as ctx:
        await ctx.init(config=tortoise_config(url))
        await ctx.db().execute_script("CREATE TABLE counter (n INTEGER); INSERT INTO counter VALUES (0);")
        await ctx.close_connections()

    results = await asyncio.gather(bump(True), bump(False), return_exceptions=True)

    assert results == [1, 2], results
