"""Single-use links: welcome (7 days), password reset (1 hour), unblock (24 hours).

Issuing a new link of a purpose revokes the account's earlier links of that
purpose ("the old link dies"). Only a SHA-256 of the secret is stored, so a
database leak yields no working link.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from lotse.platform.accounts.models import Account, Token, TokenPurpose

LIFETIME: dict[TokenPurpose, timedelta] = {
    TokenPurpose.WELCOME: timedelta(days=7),
    TokenPurpose.RESET: timedelta(hours=1),
    TokenPurpose.UNBLOCK: timedelta(hours=24),
}


class TokenState(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"       # used, or replaced by a newer link
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class TokenCheck:
    state: TokenState
    token: Token | None


def hash_secret(secret: str) -> str:
    """Return the SHA-256 (hex) under which a link secret or a session key is stored; a pepper would go here."""
    return hashlib.sha256(secret.encode()).hexdigest()


async def issue_token(account: Account, purpose: TokenPurpose, now: datetime) -> str:
    """Revoke earlier links of ``purpose`` and return the secret of a new one (call inside the action's unit)."""
    await Token.filter(account_id=account.id, purpose=purpose, used_at=None, revoked_at=None).update(revoked_at=now)
    secret = secrets.token_urlsafe(32)
    await Token.create(
        account=account, purpose=purpose, secret_hash=hash_secret(secret), created_at=now, expires_at=now + LIFETIME[purpose]
    )
    return secret


async def check_token(secret: str, purpose: TokenPurpose, now: datetime) -> TokenCheck:
    """Say whether a link is valid, expired, used (or superseded) or unknown."""
    token = await Token.get_or_none(secret_hash=hash_secret(secret), purpose=purpose).select_related("account")
    if token is None:
        return TokenCheck(TokenState.UNKNOWN, None)
    if token.used_at is not None or token.revoked_at is not None:
        return TokenCheck(TokenState.USED, token)
    if now >= token.expires_at:
        return TokenCheck(TokenState.EXPIRED, token)
    return TokenCheck(TokenState.VALID, token)


async def consume_token(token: Token, now: datetime) -> bool:
    """Mark a link used; False when another request used it first."""
    updated = await Token.filter(id=token.id, used_at=None, revoked_at=None).update(used_at=now)
    return updated == 1
