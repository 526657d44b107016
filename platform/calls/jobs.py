"""Background work of calls: purging call metadata 90 days after a call ended.

``purge_call_metadata`` is idempotent and reads the time from the app's
clock, so tests move a ``FrozenClock`` instead of waiting. Outside tests the
app runs it every ``INTERVAL`` seconds (``install``); with several workers
each runs it, which is harmless: a second run finds nothing left to delete.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lotse.platform.actions import Services
from lotse.platform.calls.actions import do_purge_call_metadata
from lotse.platform.permissions import Actor

log = logging.getLogger(__name__)
INTERVAL = 3600.0


async def purge_call_metadata(svc: Services) -> int:
    """Delete the metadata of calls over 90 days old; return how many calls."""
    actor = Actor.system("job", reason="call metadata is kept for 90 days")
    return await do_purge_call_metadata(svc, actor)


async def run_jobs(svc: Services, interval: float = INTERVAL, first_after: float = 5.0) -> None:
    await asyncio.sleep(first_after)  # the database opens in a start-up hook that may run after this one
    while True:
        try:
            await purge_call_metadata(svc)
        except Exception:
            log.exception("the purge of call metadata failed; trying again later")
        await asyncio.sleep(interval)


def install(blueprint: Any) -> None:
    """Run the jobs while the app serves (not under tests, which call them directly)."""
    tasks: list[asyncio.Task[None]] = []

    @blueprint.before_app_serving
    async def start_jobs() -> None:
        from quart import current_app

        svc: Services = current_app.extensions["lotse"]
        if not svc.settings.testing:
            tasks.append(asyncio.create_task(run_jobs(svc)))

    @blueprint.after_app_serving
    async def stop_jobs() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()
