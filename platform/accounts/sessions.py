"""Browser sessions: a random key in the cookie, its hash in the database."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from lotse.platform.accounts.models import Account, WebSession
from lotse.platform.accounts.tokens import hash_secret
from lotse.platform.db import Prepared

IDLE_TIMEOUT = timedelta(hours=8)
TWO_FACTOR_WINDOW = timedelta(minutes=10)

# One query for session, account and organisation: every signed-in request needs all three.
# Built once (building this join cost the ORM several times what running it costs).
_BY_KEY_HASH = Prepared(WebSession, lambda key_hash: WebSession.filter(key_hash=key_hash).select_related(
    "account__organisation"))


async def start_session(account: Account, now: datetime, *, pending_two_factor: bool, source_address: str = "") -> str:
    """Create a session and return the cookie value."""
    key = secrets.token_urlsafe(32)
    await WebSession.create(
        key_hash=hash_secret(key), account=account, created_at=now, last_seen_at=now,
        pending_two_factor=pending_two_factor, source_address=source_address[:64],
    )
    return key


async def load_session(key: str | None, now: datetime) -> WebSession | None:
    """Return the live session for a cookie value, with its account, or None."""
    if not key:
        return None
    session = await _BY_KEY_HASH.one_or_none(hash_secret(key))
    if session is None:
        return None
    if not is_live(session, now):
        await session.delete()
        return None
    if now - session.last_seen_at > timedelta(minutes=1):
        session.last_seen_at = now
        await session.save(update_fields=["last_seen_at"])
    return session


def is_live(session: WebSession, now: datetime) -> bool:
    """Whether a session (loaded with its account) still signs its browser in."""
    limit = TWO_FACTOR_WINDOW if session.pending_two_factor else IDLE_TIMEOUT
    account: Account = session.account
    return now - session.last_seen_at <= limit and account.is_active and not account.is_blocked


async def live_session_hashes(key_hashes: set[str], now: datetime) -> set[str]:
    """Return which of these session hashes still belong to a live, signed-in session (read only)."""
    if not key_hashes:
        return set()
    rows = await WebSession.filter(key_hash__in=list(key_hashes), pending_two_factor=False).select_related("account")
    return {row.key_hash for row in rows if is_live(row, now)}


async def end_session(key: str | None) -> None:
    if key:
        await WebSession.filter(key_hash=hash_secret(key)).delete()


async def end_all_sessions(account_id: int) -> None:
    await WebSession.filter(account_id=account_id).delete()
