"""Errors of the media unit: a stable code, structured data, an English message.

The platform maps codes to its own (translated) messages; the English text is
for logs and for the standalone server's clients.

    MediaError
    └── code: ErrorCode (room_full, room_closed, not_joined, ...)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    ROOM_FULL = "room_full"
    ROOM_CLOSED = "room_closed"
    ALREADY_JOINED = "already_joined"
    NOT_JOINED = "not_joined"
    BAD_MESSAGE = "bad_message"
    BAD_OFFER = "bad_offer"
    UNSUPPORTED_CODEC = "unsupported_codec"
    SCREEN_SHARE_BUSY = "screen_share_busy"
    NO_SCREEN_SENDER = "no_screen_sender"
    UNKNOWN_ROOM = "unknown_room"
    UNAUTHORISED = "unauthorised"


class MediaError(Exception):
    """A request the media unit refuses; ``code`` is stable, ``data`` structured."""

    def __init__(self, code: ErrorCode, message: str, **data: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_message(self) -> dict[str, Any]:
        """Return the signalling message that reports this error."""
        return {"type": "error", "code": str(self.code), "message": self.message, **self.data}
