"""Events a room publishes for the platform: the participant list and the audit.

Frozen dataclasses, past tense, each naming its room and carrying the time it
happened (from the room's injectable clock). Delivered in order to every
listener registered with :meth:`lotse.media.room.Room.subscribe`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class LeaveReason(StrEnum):
    """Why a participant is no longer in the room."""

    LEFT = "left"  # the participant said so
    DISCONNECTED = "disconnected"  # signalling or the peer connection went away
    REMOVED = "removed"  # the platform removed them (e.g. the conversation ended for them)
    ROOM_CLOSED = "room_closed"


@dataclass(frozen=True, slots=True)
class ParticipantJoined:
    room_id: str
    participant_id: str
    at: datetime
    microphone: bool
    camera: bool
    participants: int  # number in the room after the join


@dataclass(frozen=True, slots=True)
class ParticipantLeft:
    room_id: str
    participant_id: str
    at: datetime
    reason: LeaveReason
    participants: int  # number in the room after the leave


@dataclass(frozen=True, slots=True)
class MediaStateChanged:
    room_id: str
    participant_id: str
    at: datetime
    microphone: bool
    camera: bool


@dataclass(frozen=True, slots=True)
class ScreenShareStarted:
    room_id: str
    participant_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ScreenShareStopped:
    room_id: str
    participant_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RoomClosed:
    room_id: str
    at: datetime
    started_at: datetime | None  # first join; None if nobody ever joined


RoomEvent = (
    ParticipantJoined
    | ParticipantLeft
    | MediaStateChanged
    | ScreenShareStarted
    | ScreenShareStopped
    | RoomClosed
)
