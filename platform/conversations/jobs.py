"""Background work of conversations: deleting conversations that stayed empty for 24 hours.

``delete_empty_conversations`` is idempotent and reads the time from the
app's clock, so tests move a ``FrozenClock`` instead of waiting. Outside
tests the app runs it every ``INTERVAL`` seconds (``start_jobs``); with
several workers each runs it, which is harmless: the action re-reads the
conversation in its own transaction and deletes only what is still empty.
(Notification mails are decided when a message is posted, in the action.)
"""

from __future__ import annotations

from typing import Any

from lotse.platform.actions import Services
from lotse.platform.conversations.actions import EMPTY_LIFETIME, do_delete_empty_conversation
from lotse.platform.conversations.models import Conversation
from lotse.platform.jobs import run_periodically
from lotse.platform.permissions import Actor

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


def install(blueprint: Any) -> None:
    """Run the job while the app serves (not under tests, which call it directly)."""
    run_periodically(blueprint, delete_empty_conversations, INTERVAL)
