"""The call's signalling WebSocket: ``/calls/<id>/ws``.

It carries the media unit's JSON messages (schema in :mod:`lotse.media.room`)
between the browser and the call's room, wherever that lives
(:mod:`lotse.platform.calls.media`), and adds the platform's part:

- authenticated by the platform's session cookie (second factor done), only
  from our own pages (``Origin``), and authorised per call: only people
  invited to the call who still take part in its conversation get a socket;
- a ``join`` is checked (call running, video on, cap) before the offer
  reaches the media unit, refusals come back as ``{"type": "error",
  "code", "message"}`` in the person's language; once the unit answers
  ``joined`` the stay is recorded (``do_join_call``), and when the person
  leaves or the socket closes, it ends (``do_leave_call``);
- ``joined`` carries ``names`` and ``participant_joined`` a ``name``, so the
  page can show the participant list (the unit knows only account ids);
- when the person's session ends (sign-out, deactivation, blocking, expiry;
  :mod:`lotse.platform.conversations.live_sessions`), they leave the call and
  the socket says ``session_ended`` and closes with code 4401;
- when the call is ended by its manager (``call.ended`` on the bus, from any
  worker), or the person is removed from the conversation, the socket says
  ``room_closed`` and leaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from quart import Blueprint, Response, websocket

from lotse.media.errors import ErrorCode
from lotse.platform import i18n
from lotse.platform.accounts.models import Account
from lotse.platform.accounts.sessions import load_session
from lotse.platform.actions import Services
from lotse.platform.calls import actions
from lotse.platform.calls.media import Message, Seat, call_media
from lotse.platform.calls.models import Call
from lotse.platform.conversations.live_sessions import session_guard
from lotse.platform.conversations.models import ChatParticipant
from lotse.platform.conversations.ws import SESSION_ENDED_CODE, origin_allowed
from lotse.platform.errors import NotPermittedError, PlatformError
from lotse.platform.i18n import LazyText, _l
from lotse.platform.permissions import Actor
from lotse.platform.web import SESSION_COOKIE, services

logger = logging.getLogger(__name__)
blueprint = Blueprint("calls_ws", __name__)

MEDIA_MESSAGES: dict[str, LazyText] = {
    ErrorCode.ROOM_CLOSED: _l("This call has ended."),
    ErrorCode.SCREEN_SHARE_BUSY: _l("Someone else is sharing their screen. Only one screen can be shared at a time."),
    ErrorCode.BAD_OFFER: _l("Your browser could not agree on sound and picture with the call. "
                            "Please use a current version of Chrome, Edge, Firefox or Safari."),
    ErrorCode.UNSUPPORTED_CODEC: _l("Your browser could not agree on sound and picture with the call. "
                                    "Please use a current version of Chrome, Edge, Firefox or Safari."),
    ErrorCode.UNKNOWN_ROOM: _l("The call cannot be reached at the moment. Please try again in a minute."),
}
SESSION_ENDED = _l("You have been signed out, so you have left the call. Sign in again to rejoin it.")


class CallSocket:
    """One browser's signalling socket for one call."""

    def __init__(self, svc: Services, me: Actor, call: Call, language: str) -> None:
        self.svc = svc
        self.me = me
        self.call = call
        self.language = language
        # What goes to the browser, in order: (message, from the room?). The room's
        # messages are prepared by the writer, one after the other, so a slow step
        # (recording the stay at ``joined``) never lets a later message overtake.
        self.outgoing: asyncio.Queue[tuple[Message, bool] | None] = asyncio.Queue()
        self.seat: Seat | None = None
        self.joined = False
        self.names: dict[str, str] = {}

    def error(self, error: PlatformError, request_id: Any = None) -> Message:
        message: Message = {"type": "error", **error.to_json(self.language)}
        if request_id is not None:
            message["re"] = request_id
        return message

    async def load_names(self) -> None:
        rows = await ChatParticipant.filter(conversation_id=self.call.conversation_id).select_related("account")
        self.names = {str(row.account.id): row.account.name for row in rows}

    async def name_of(self, participant_id: str) -> str:
        if participant_id not in self.names:
            account = await Account.get_or_none(id=int(participant_id)) if participant_id.isdigit() else None
            self.names[participant_id] = account.name if account is not None else "?"
        return self.names[participant_id]

    async def outbox(self, message: Message) -> None:
        """Everything the room says to this person passes here on its way to the browser.

        Queued at once, in the order the room says it; :meth:`prepare` runs in the writer.
        """
        self.outgoing.put_nowait((message, True))

    def say(self, message: Message) -> None:
        """Queue a message of the platform's own (an error, a refusal) for the browser."""
        self.outgoing.put_nowait((message, False))

    async def prepare(self, message: Message) -> Message:
        """Add the platform's part to a message from the room (names, the recorded stay, errors)."""
        kind = message.get("type")
        if kind == "joined":
            try:
                await actions.do_join_call(self.svc, self.me, self.call)
            except PlatformError as refused:
                await self.drop_seat()
                message = self.error(refused, message.get("re"))
            else:
                self.joined = True
                await self.load_names()
                message["names"] = dict(self.names)
        elif kind == "participant_joined":
            participant = message.get("participant") or {}
            participant["name"] = await self.name_of(str(participant.get("id", "")))
        elif kind == "left":
            await self.leave("left")
        elif kind == "room_closed":
            await self.leave("room_closed")
        elif kind == "error":
            code = message.get("code")
            if code == ErrorCode.ROOM_FULL:
                message["message"] = actions.CallFullError(self.call.cap).message.render(self.language)
            elif code in MEDIA_MESSAGES:
                message["message"] = MEDIA_MESSAGES[code].render(self.language)
            if code in (ErrorCode.ROOM_FULL, ErrorCode.ROOM_CLOSED, ErrorCode.BAD_OFFER,
                        ErrorCode.UNSUPPORTED_CODEC, ErrorCode.ALREADY_JOINED, ErrorCode.UNKNOWN_ROOM) and not self.joined:
                await self.drop_seat()
        return message

    async def receive(self, message: Any) -> None:
        if not isinstance(message, dict):
            self.say({"type": "error", "code": "bad_message", "message": "a JSON object"})
            return
        request_id = message.get("id")
        if message.get("type") == "join":
            if self.seat is not None:
                self.say({"type": "error", "code": "already_joined", "re": request_id,
                                          "message": "already in the call"})
                return
            try:
                await self.call.refresh_from_db()
                await actions.check_join(self.svc, self.me, self.call)
                self.seat = await call_media(self.svc).open_seat(
                    self.call.media_url, self.call.room_id, self.call.cap, str(self.me.account_id), self.outbox)
            except PlatformError as refused:
                self.say(self.error(refused, request_id))
                return
            except Exception:
                logger.exception("could not open a seat in call %s", self.call.id)
                self.say({"type": "error", "code": ErrorCode.UNKNOWN_ROOM, "re": request_id,
                                          "message": MEDIA_MESSAGES[ErrorCode.UNKNOWN_ROOM].render(self.language)})
                return
        if self.seat is None:
            if message.get("type") == "state":
                self.say({"type": "state", "room": None, "re": request_id})
                return
            self.say({"type": "error", "code": "not_joined", "re": request_id,
                                      "message": "join the call first"})
            return
        await self.seat.send(message)

    async def drop_seat(self) -> None:
        seat, self.seat = self.seat, None
        if seat is not None:
            await seat.close()

    async def leave(self, reason: str) -> None:
        """Leave the room (if still in it) and record the end of the stay."""
        await self.drop_seat()
        if self.joined:
            self.joined = False
            with contextlib.suppress(PlatformError):
                await actions.do_leave_call(self.svc, self.me, self.call, reason)


def _refuse(status: int) -> Response:
    """Refuse the handshake (``abort`` would reach the app's HTML error handler, which needs a request)."""
    return Response("", status)


def _language(account: Account, organisation_language: str | None) -> str:
    return i18n.choose_language(account.locale, organisation_language, websocket.headers.get("Accept-Language"))


@blueprint.websocket("/calls/<int:call_id>/ws")
async def signalling(call_id: int) -> Any:
    svc = services()
    if not origin_allowed(websocket.headers.get("Origin"), svc.settings.base_url, websocket.headers.get("Host")):
        return _refuse(403)
    session_key = websocket.cookies.get(SESSION_COOKIE) or ""
    session = await load_session(session_key, svc.now())
    if session is None or session.pending_two_factor:
        return _refuse(401)
    account = session.account
    organisation = await account.organisation
    language = _language(account, organisation.default_language)
    i18n.active_translations.set(svc.translations)
    i18n.current_locale.set(language)
    me = Actor.of(account, source_address=(websocket.remote_addr or "")[:64], via="web")
    call = await Call.get_or_none(id=call_id)
    if call is None or call.organisation_id != account.organisation_id:
        return _refuse(404)
    socket = CallSocket(svc, me, call, language)
    refusal: PlatformError | None = None
    try:
        await actions.check_join(svc, me, call)
    except NotPermittedError as refused:
        if refused.code == "not_permitted":
            return _refuse(403)
        refusal = refused
    except actions.CallFullError:
        pass  # the socket stays: a join is refused (with the reason) until someone leaves
    except PlatformError as refused:
        refusal = refused
    await websocket.accept()
    if refusal is not None:
        await websocket.send(json.dumps(socket.error(refusal)))
        return None
    guard = session_guard(svc)
    session_ended = asyncio.Event()
    watch = await guard.watch(account.id, session_key, session_ended.set)
    try:
        async with svc.bus.subscribe(f"conversation.{call.conversation_id}") as events:
            tasks = [
                asyncio.create_task(_read(socket)),
                asyncio.create_task(_write(socket)),
                asyncio.create_task(_follow(socket, events)),
                asyncio.create_task(_end_with_session(socket, session_ended)),
            ]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
    finally:
        guard.unwatch(watch)
        await socket.leave("disconnected")


async def _read(socket: CallSocket) -> None:
    while True:
        raw = await websocket.receive()
        try:
            message = json.loads(raw)
        except (TypeError, ValueError):
            message = None
        await socket.receive(message)


async def _write(socket: CallSocket) -> None:
    while True:
        item = await socket.outgoing.get()
        if item is None:
            return
        message, from_room = item
        if from_room:
            message = await socket.prepare(message)
        await websocket.send(json.dumps(message))
        if message.get("type") == "session_ended":
            await websocket.close(SESSION_ENDED_CODE)
            return


async def _end_with_session(socket: CallSocket, ended: asyncio.Event) -> None:
    """Leave the call when the socket's session ends (sign-out, deactivation, blocking, expiry)."""
    await ended.wait()
    await socket.leave("signed_out")
    socket.say({"type": "session_ended", "message": SESSION_ENDED.render(socket.language)})
    await asyncio.Event().wait()  # the writer says it and closes the socket


async def _follow(socket: CallSocket, events: Any) -> None:
    me = socket.me.account_id
    async for _topic, payload in events:
        kind = payload.get("event")
        ended = kind == "call.ended" and payload.get("call_id") == socket.call.id
        removed = kind == "participant.left" and payload.get("account_id") == me
        if ended or removed:
            await socket.leave("room_closed" if ended else "removed")
            socket.say({"type": "room_closed"})
