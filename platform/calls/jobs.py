"""Background work of calls: purging call metadata 90 days after a call ended.

``purge_call_metadata`` is idempotent and reads the time from the app's
clock, so tests move a ``FrozenClock`` instead of waiting. Outside tests the
app runs it every ``INTERVAL`` seconds (``install``); with several workers
each runs it, which is harmless: a second run finds nothing left to delete.
"""

from __future__ import annotations

from typing import Any

from lotse.platform.actions import Services
from lotse.platform.calls.actions import do_purge_call_metadata
from lotse.platform.jobs import run_periodically
from lotse.platform.permissions import Actor

INTERVAL = 3600.0


async def purge_call_metadata(svc: Services) -> int:
    """Delete the metadata of calls over 90 days old; return how many calls."""
    actor = Actor.system("job", reason="call metadata is kept for 90 days")
    return await do_purge_call_metadata(svc, actor)


def install(blueprint: Any) -> None:
    """Run the job while the app serves (not under tests, which call it directly)."""
    run_periodically(blueprint, purge_call_metadata, INTERVAL)
