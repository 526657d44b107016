"""The media forwarding unit for video calls, built on aiortc.

Each participant has one peer connection to this unit; their encoded audio
and video are forwarded to the others without decoding and re-encoding (a
decode/re-encode relay costs about thirty times more CPU per stream). The
platform uses:

* :class:`MediaUnit` / :class:`Room` — rooms, ``await room.handle(participant_id,
  message, outbox)`` for the JSON signalling (schema in :mod:`lotse.media.room`),
  ``room.subscribe(listener)`` for the events in :mod:`lotse.media.events`;
* :class:`RoomSettings` — per-room cap (default 12) and codec;
* :class:`MediaError` / :class:`ErrorCode` — refusals with stable codes.

:mod:`lotse.media.server` runs a unit as its own process behind a WebSocket.
Imports nothing from ``lotse.platform`` or ``lotse.engine``.
"""

from __future__ import annotations

from lotse.media.errors import ErrorCode, MediaError
from lotse.media.events import (
    LeaveReason,
    MediaStateChanged,
    ParticipantJoined,
    ParticipantLeft,
    RoomClosed,
    RoomEvent,
    ScreenShareStarted,
    ScreenShareStopped,
)
from lotse.media.forwarding import Source
from lotse.media.room import (
    MAX_CAP,
    Message,
    Outbox,
    ParticipantState,
    Room,
    RoomSettings,
    RoomState,
)
from lotse.media.unit import MediaUnit

__all__ = [
    "MAX_CAP",
    "ErrorCode",
    "LeaveReason",
    "MediaError",
    "MediaStateChanged",
    "MediaUnit",
    "Message",
    "Outbox",
    "ParticipantJoined",
    "ParticipantLeft",
    "ParticipantState",
    "Room",
    "RoomClosed",
    "RoomEvent",
    "RoomSettings",
    "RoomState",
    "ScreenShareStarted",
    "ScreenShareStopped",
    "Source",
]
