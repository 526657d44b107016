"""The media unit: the rooms one process hosts.

In the embedded default the platform creates one :class:`MediaUnit` in its
app process; standalone, :mod:`lotse.media.server` does. A room lives in
exactly one unit (one process), so rooms spread over processes and machines
by whoever hands out room addresses.
"""

from __future__ import annotations

import asyncio

from lotse.media.errors import ErrorCode, MediaError
from lotse.media.room import Clock, Room, RoomSettings, utc_now


class MediaUnit:
    """Create, find and close rooms."""

    def __init__(
        self,
        default_settings: RoomSettings | None = None,
        *,
        clock: Clock = utc_now,
        room_class: type[Room] = Room,
    ) -> None:
        self.default_settings = default_settings or RoomSettings()
        self._room_class = room_class
        self._clock = clock
        self._rooms: dict[str, Room] = {}

    @property
    def rooms(self) -> dict[str, Room]:
        return dict(self._rooms)

    def create_room(self, room_id: str, settings: RoomSettings | None = None) -> Room:
        """Open a room; an open room of that id is returned as it is."""
        room = self._rooms.get(room_id)
        if room is None:
            room = self._room_class(room_id, settings or self.default_settings, clock=self._clock, on_closed=self._forget)
            self._rooms[room_id] = room
        return room

    def get(self, room_id: str) -> Room:
        """Return an open room or raise ``unknown_room``."""
        room = self._rooms.get(room_id)
        if room is None:
            raise MediaError(ErrorCode.UNKNOWN_ROOM, "no such call", room=room_id)
        return room

    async def close(self) -> None:
        """Close every room (process shutdown)."""
        await asyncio.gather(*(room.close() for room in list(self._rooms.values())))

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.id) is room:
            del self._rooms[room.id]
