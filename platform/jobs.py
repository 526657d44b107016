"""Periodic background jobs: one loop for every domain's idempotent clean-up.

A domain hands ``run_periodically`` its job (an ``async def job(svc)`` that is
safe to run on several workers at once, e.g. the 90-day purge of call
metadata) and the blueprint it belongs to; the job then runs every
``interval`` seconds while the app serves. Tests do not start it: they call
the job directly on a moved clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint

from lotse.platform.actions import Services

log = logging.getLogger(__name__)

Job = Callable[[Services], Awaitable[Any]]


async def _loop(svc: Services, job: Job, interval: float, first_after: float) -> None:
    await asyncio.sleep(first_after)  # the database opens in a start-up hook that may run after this one
    while True:
        try:
            await job(svc)
        except Exception:
            log.exception("the job %s failed; trying again later", job.__name__)
        await asyncio.sleep(interval)


def run_periodically(blueprint: Blueprint, job: Job, interval: float, first_after: float = 5.0) -> None:
    """Run ``job`` every ``interval`` seconds while the app serves (not under tests)."""
    tasks: list[asyncio.Task[None]] = []

    @blueprint.before_app_serving
    async def start_job() -> None:
        from quart import current_app

        svc: Services = current_app.extensions["lotse"]
        if not svc.settings.testing:
            tasks.append(asyncio.create_task(_loop(svc, job, interval, first_after)))

    @blueprint.after_app_serving
    async def stop_job() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        tasks.clear()
