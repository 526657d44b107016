"""Where a call's room lives, and one participant's line to it.

In the embedded default the media unit (:class:`lotse.media.MediaUnit`) runs
inside the app process and is kept in ``Services.extras["call_media"]``.
With ``LOTSE_MEDIA_URL`` set (one or more ``ws://host:port`` URLs of
``lotse media serve`` processes, separated by commas, and the shared
``LOTSE_MEDIA_SECRET``), rooms live there instead: a call is pinned to one
process when it starts (``Call.media_url``), and the platform relays each
participant's signalling to it over a WebSocket of its own, with a
short-lived join token. Either way the browser talks to the platform's own
WebSocket only (authenticated by the session, authorised per call); its
media goes straight to the process that hosts the room.

A :class:`Seat` is one participant's line to a room: ``send`` a signalling
message, and every reply and push comes back through the ``outbox`` given
when the seat was opened, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import quote

from websockets.exceptions import WebSocketException

from lotse.media import LeaveReason, MediaUnit, Room, RoomSettings
from lotse.media.errors import ErrorCode, MediaError
from lotse.media.tokens import issue_token

logger = logging.getLogger(__name__)

Message = dict[str, Any]
Outbox = Callable[[Message], Awaitable[None]]

MEDIA_URL_ENV = "LOTSE_MEDIA_URL"
MEDIA_SECRET_ENV = "LOTSE_MEDIA_SECRET"  # noqa: S105 - the variable's name


class Seat(Protocol):
    async def send(self, message: Message) -> None: ...

    async def close(self) -> None: ...


class LocalSeat:
    """A participant of a room in this process."""

    def __init__(self, room: Room, participant_id: str, outbox: Outbox) -> None:
        self.room = room
        self.participant_id = participant_id
        self.outbox = outbox

    async def send(self, message: Message) -> None:
        for reply in await self.room.handle(self.participant_id, message, self.outbox):
            await self.outbox(reply)

    async def close(self) -> None:
        await self.room.leave(self.participant_id, LeaveReason.DISCONNECTED)


class RemoteSeat:
    """A participant of a room in a ``lotse media serve`` process, over a WebSocket.

    The media process refuses a bad join token (or a secret that does not
    match) with an ``unauthorised`` error and closes; it goes away without a
    word when it dies. Either way the person gets the ``unknown_room`` error
    ("the call cannot be reached"), answering their pending request if there
    is one, and then ``room_closed`` so the platform lets go of the seat:
    nobody waits for a reply that will not come.
    """

    def __init__(self, url: str, outbox: Outbox) -> None:
        self.url = url
        self.outbox = outbox
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._reported = False
        self._pending: Any = None  # the id of the last request not answered yet

    async def open(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(self.url, max_size=2**22, open_timeout=10)
        self._reader = asyncio.ensure_future(self._read())

    def _unreachable(self) -> Message:
        self._reported = True
        message: Message = {"type": "error", "code": str(ErrorCode.UNKNOWN_ROOM),
                            "message": "the media server cannot be reached"}
        if self._pending is not None:
            message["re"], self._pending = self._pending, None
        return message

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                if message.get("type") == "error" and message.get("code") == ErrorCode.UNAUTHORISED:
                    logger.error("the media process %s refused a join token: is %s the same on both sides?",
                                 self.url.split("/rooms/")[0], MEDIA_SECRET_ENV)
                    message = self._unreachable()
                elif "re" in message and message["re"] == self._pending:
                    self._pending = None
                await self.outbox(message)
        except Exception:
            if not self._closing:
                logger.warning("lost the media process %s", self.url.split("/rooms/")[0], exc_info=True)
        if self._closing:
            return
        with contextlib.suppress(Exception):
            if not self._reported:
                await self.outbox(self._unreachable())
            await self.outbox({"type": "room_closed"})

    async def send(self, message: Message) -> None:
        if "id" in message:
            self._pending = message["id"]
        try:
            await self._ws.send(json.dumps(message))
        except Exception:
            # The reader reports the lost connection (and answers this request).
            logger.info("could not send to the media process", exc_info=True)

    async def close(self) -> None:
        self._closing = True
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        reader = self._reader
        # Closing from within the reader (it delivered room_closed): let it end by itself.
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader


class CallMedia:
    """The app's media: an in-process unit, or the URLs of media processes."""

    def __init__(self, unit: MediaUnit, remote_urls: list[str] | None = None, secret: bytes = b"") -> None:
        self.unit = unit
        self.remote_urls = [url.rstrip("/") for url in remote_urls or [] if url.strip()]
        self.secret = secret
        if self.remote_urls and not secret:
            raise ValueError(f"{MEDIA_URL_ENV} needs {MEDIA_SECRET_ENV}")

    def pick(self, room_id: str) -> str:
        """Return where a new room lives: '' for this process, else a media process URL."""
        if not self.remote_urls:
            return ""
        return self.remote_urls[zlib.crc32(room_id.encode()) % len(self.remote_urls)]

    async def open_seat(self, media_url: str, room_id: str, cap: int, participant_id: str, outbox: Outbox) -> Seat:
        """Open ``participant_id``'s line to a room (created on first use)."""
        if not media_url:
            room = self.unit.create_room(room_id, RoomSettings(cap=cap, video_codec=self.unit.default_settings.video_codec))
            return LocalSeat(room, participant_id, outbox)
        token = issue_token(self.secret, room_id, participant_id)
        seat = RemoteSeat(f"{media_url}/rooms/{quote(room_id, safe='')}?token={token}", outbox)
        try:
            await seat.open()
        except (OSError, WebSocketException) as error:
            logger.warning("cannot reach the media process %s: %s", media_url, error)
            raise MediaError(ErrorCode.UNKNOWN_ROOM, "the media server cannot be reached") from error
        return seat

    async def close_room(self, media_url: str, room_id: str) -> None:
        """End a room hosted here (remote rooms end as their participants' seats close)."""
        if not media_url:
            room = self.unit.rooms.get(room_id)
            if room is not None:
                await room.close()

    async def close(self) -> None:
        await self.unit.close()


def call_media(svc: Any) -> CallMedia:
    """Return the app's call media, made on first use from the environment."""
    found = svc.extras.get("call_media")
    if found is None:
        urls = [url for url in os.environ.get(MEDIA_URL_ENV, "").split(",") if url.strip()]
        secret = os.environ.get(MEDIA_SECRET_ENV, "").encode()
        found = svc.extras["call_media"] = CallMedia(MediaUnit(clock=svc.clock.now), urls, secret)
    return found  # type: ignore[no-any-return]
