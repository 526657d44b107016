"""Background work of conversations: deleting conversations that stayed empty for 24 hours.

``delete_empty_conversations`` is idempotent and reads the time from the
app's clock, so tests move a ``FrozenClock`` instead of waiting. Outside
tests the app runs it every ``INTERVAL`` seconds (``start_jobs``); with
several workers each runs it, which is harmless: the action re-reads the
conversation in its own transaction and deletes only what is still empty.
(Notification mails are decided when a message is posted, in the action.)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from lotse.platform.actions import Services
from lotse.platform.conversations.actions import EMPTY_LIFETIME, do_delete_empty_conversation
from lotse.platform.conversations.models import Conversation
from lotse.platform.permissions import Actor

log = logging.getLogger(__name__)
INTERVAL = 600.0


async def delete_empty_conversations(svc: Services) -> int:
    """Delete the conversations without messages created 24 hours ago or earlier; return how many."""
    actor = Actor.system("job", reason="conversations without messages are deleted after 24 hours")
    due = await Conversation.filter(message_count=0, created_at__lte=svc.now() - EMPTY_LIFETIME)
    count = 0
    for conversation in due:
        if await do_delete_empty_conversation(svc, actor, conversation):
            count += 1
    return count


async def run_jobs(svc: Services, interval: float = INTERVAL, first_after: float = 5.0) -> None:
    await asyncio.sleep(first_after)  # the database opens in a start-up hook that may run after this one
    while True:
        try:
            await delete_empty_conversations(svc)
        except Exception:
            log.exception("the clean-up of empty conversations failed; trying again later")
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
