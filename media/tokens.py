"""Join tokens for the standalone server: the platform vouches for a participant.

The platform authenticates the user and authorises the call; the media
process only has to check that the platform said so. A token is
``base64url(json{"r": room, "p": participant, "e": expiry}) "." base64url(hmac)``
signed with a secret both processes share (``LOTSE_MEDIA_SECRET``). Short
lifetimes (a minute) are enough: the token is only checked when the
WebSocket opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

from lotse.media.errors import ErrorCode, MediaError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def issue_token(secret: bytes, room_id: str, participant_id: str, *, ttl: float = 60.0, now: float | None = None) -> str:
    """Return a token admitting ``participant_id`` to ``room_id`` for ``ttl`` seconds."""
    expires = int((time.time() if now is None else now) + ttl)
    payload = _b64(json.dumps({"r": room_id, "p": participant_id, "e": expires}, separators=(",", ":")).encode())
    signature = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
    return f"{payload}.{_b64(signature)}"


def verify_token(secret: bytes, room_id: str, token: str, *, now: float | None = None) -> str:
    """Return the participant a valid token for ``room_id`` names; raise ``unauthorised`` otherwise."""
    refused = MediaError(ErrorCode.UNAUTHORISED, "invalid or expired token")
    try:
        payload, signature = token.split(".")
        expected = hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, _unb64(signature)):
            raise refused
        claims = json.loads(_unb64(payload))
    except (ValueError, UnicodeError) as error:
        raise refused from error
    current = time.time() if now is None else now
    if not isinstance(claims, dict) or claims.get("r") != room_id or not isinstance(claims.get("p"), str):
        raise refused
    if not isinstance(claims.get("e"), int) or claims["e"] < current:
        raise refused
    return str(claims["p"])
