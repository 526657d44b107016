"""Background work of help sessions."""

from __future__ import annotations

from datetime import timedelta

from lotse.platform.actions import Services
from lotse.platform.help.actions import do_abandon_session
from lotse.platform.help.models import HelpSession, SessionStatus
from lotse.platform.permissions import Actor

IDLE_LIMIT = timedelta(days=30)


async def abandon_idle_sessions(svc: Services) -> int:
    """Mark sessions untouched for 30 days abandoned (outcome ``abandoned``); return how many."""
    actor = Actor.system("job", reason="help sessions idle for 30 days are abandoned")
    count = 0
    idle = await HelpSession.filter(status=SessionStatus.ACTIVE, updated_at__lt=svc.now() - IDLE_LIMIT)
    for session in idle:
        if await do_abandon_session(svc, actor, session):
            count += 1
    return count
