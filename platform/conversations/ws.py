"""The conversations WebSocket: live events for the conversations a person may read.

``/conversations/ws?conversation=<id>`` follows one conversation (its page);
without the parameter it follows every conversation the person takes part
in, and those they are added to later (the list page).

- Authenticated by the platform's session cookie (second factor done), and
  only from our own pages: the ``Origin`` must be the configured base URL or
  the host the request was sent to; anything else is refused before the
  handshake completes.
- Subscribes first, then sends the state (``hello``), then forwards events,
  so nothing falls between the fetch and the first event; events are
  idempotent on the state (``events.apply_event``).
- Access is re-checked against the database whenever the person's own
  participation changes: who leaves or is removed gets that event and
  nothing more of the conversation.
- The person counts as online (no notification mails) while a socket is open.
- The socket ends with its session (``live_sessions``): on sign-out,
  deactivation or blocking at once, on expiry within a minute; the client
  gets ``{"event": "session.ended"}`` and close code 4401.
- The first state (``hello`` of a conversation) is audited as a read, as the
  page and the state fetch are; the live events after it are not.
- From the client it accepts ``{"type": "read", "message_id": n}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

from quart import Blueprint, Response, websocket

from lotse.platform import i18n
from lotse.platform.accounts.sessions import load_session
from lotse.platform.actions import Services
from lotse.platform.conversations import actions, queries
from lotse.platform.conversations.live_sessions import Watch, session_guard
from lotse.platform.conversations.models import ChatParticipant, Conversation
from lotse.platform.conversations.presence import presence
from lotse.platform.errors import PlatformError
from lotse.platform.permissions import Actor, Permission, allowed
from lotse.platform.web import SESSION_COOKIE, services

blueprint = Blueprint("conversations_ws", __name__)


def origin_allowed(origin: str | None, base_url: str, host: str | None) -> bool:
    """Answer whether a WebSocket's ``Origin`` is one of our own pages."""
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    base = urlsplit(base_url)
    if (parts.scheme, parts.netloc) == (base.scheme, base.netloc):
        return True
    return bool(host) and parts.netloc == host


class _Encoded:
    """The JSON text of recent payloads: in one process every socket shares the same payload
    object, so a message to 200 sockets is encoded once, not 200 times."""

    def __init__(self, size: int = 256) -> None:
        self._items: dict[int, tuple[dict[str, Any], str]] = {}
        self._size = size

    def __call__(self, payload: dict[str, Any]) -> str:
        found = self._items.get(id(payload))
        if found is not None and found[0] is payload:
            return found[1]
        text = json.dumps(payload)
        if len(self._items) >= self._size:
            self._items.pop(next(iter(self._items)))
        self._items[id(payload)] = (payload, text)
        return text


encode = _Encoded()


def _refuse(status: int) -> Response:
    # A plain response before the handshake: the app's error pages need a request, not a socket.
    return Response("", status=status)


_CLOSED: tuple[str, dict[str, Any]] = ("", {})  # put into the queue when the client goes away
# Put into the queue when the socket's session ended (signed out, deactivated, blocked, expired):
# the client hears it, and the close code tells the page not to reconnect.
_SESSION_ENDED: tuple[str, dict[str, Any]] = ("", {"event": "session.ended"})
SESSION_ENDED_CODE = 4401


class Connection:
    """One open socket: its subscriptions (all delivering into one queue, no task of their own),
    and the conversations it may see."""

    def __init__(self, svc: Services, me: Actor) -> None:
        self.svc = svc
        self.me = me
        self.queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.subscriptions: dict[str, Any] = {}
        self.visible: set[int] = set()

    async def follow(self, *topics: str) -> None:
        """Subscribe to ``topics`` (one subscription); return once it is live."""
        topics = tuple(t for t in topics if t not in self.subscriptions)
        if not topics:
            return
        subscription = self.svc.bus.subscribe(*topics, queue=self.queue)
        await subscription.__aenter__()
        for topic in topics:
            self.subscriptions[topic] = subscription

    async def unfollow(self, topic: str) -> None:
        subscription = self.subscriptions.pop(topic, None)
        if subscription is not None and subscription not in self.subscriptions.values():
            with contextlib.suppress(Exception):
                await subscription.__aexit__(None, None, None)

    async def close(self) -> None:
        subscriptions = list({id(s): s for s in self.subscriptions.values()}.values())
        self.subscriptions.clear()
        for subscription in subscriptions:
            with contextlib.suppress(Exception):
                await subscription.__aexit__(None, None, None)

    async def still_participates(self, conversation_id: int) -> bool:
        return await ChatParticipant.filter(conversation_id=conversation_id, account_id=self.me.account_id,
                                            left_at=None).exists()


@blueprint.websocket("/conversations/ws")
async def socket() -> Any:
    svc = services()
    if not origin_allowed(websocket.headers.get("Origin"), svc.settings.base_url, websocket.headers.get("Host")):
        return _refuse(403)
    session_key = websocket.cookies.get(SESSION_COOKIE) or ""
    session = await load_session(session_key, svc.now())
    if session is None or session.pending_two_factor:
        return _refuse(401)
    account = session.account
    i18n.active_translations.set(svc.translations)
    me = Actor.of(account, source_address=(websocket.remote_addr or "")[:64], via="web")
    single: Conversation | None = None
    wanted = websocket.args.get("conversation", "")
    if wanted:
        conversation = await Conversation.get_or_none(id=int(wanted)) if wanted.isdigit() else None
        if conversation is None or not await allowed(me, Permission.CONVERSATION_READ, conversation):
            return _refuse(404)
        single = conversation
    await websocket.accept()
    connection = Connection(svc, me)
    connection_id = secrets.token_hex(8)
    tracker = presence(svc)
    await tracker.connect(account.id, connection_id)
    background: list[asyncio.Task[Any]] = []
    guard = session_guard(svc)
    watch: Watch | None = None
    try:
        if single is not None:
            ids = [single.id]
            if await connection.still_participates(single.id):
                connection.visible.add(single.id)
        else:
            ids = [row["conversation_id"] for row in await ChatParticipant.filter(
                account_id=account.id, left_at=None).values("conversation_id")]
            connection.visible.update(ids)
        await connection.follow(f"account.{account.id}", *(f"conversation.{i}" for i in ids))
        watch = await guard.watch(account.id, session_key, lambda: connection.queue.put_nowait(_SESSION_ENDED))
        await websocket.send(await _hello(svc, connection, single))
        background.append(asyncio.create_task(_receive(svc, me, single)))
        for task in background:  # the client went away
            task.add_done_callback(lambda _task: connection.queue.put_nowait(_CLOSED))
        while True:
            item = await connection.queue.get()
            if item is _CLOSED:
                break
            if item is _SESSION_ENDED:
                with contextlib.suppress(Exception):
                    await websocket.send(encode(_SESSION_ENDED[1]))
                    await websocket.close(SESSION_ENDED_CODE)
                break
            outgoing = await _filter(connection, single, item[1])
            if outgoing is not None:
                await websocket.send(outgoing)
    finally:
        if watch is not None:
            guard.unwatch(watch)
        for task in background:
            task.cancel()
        await connection.close()
        with contextlib.suppress(Exception):
            await tracker.disconnect(account.id, connection_id)


async def _hello(svc: Services, connection: Connection, single: Conversation | None) -> str:
    """The first message: which conversations, and the state of the one followed. Built here, not in
    the socket's own frame, so the state (a dict per participant and message) is not kept alive for
    as long as the socket is open."""
    hello: dict[str, Any] = {"event": "hello", "conversations": sorted(connection.visible)}
    if single is not None:
        hello["state"] = await queries.conversation_state(connection.me, single)
        await queries.record_read(svc, connection.me, single)  # the socket's first load; live events are not
    return json.dumps(hello)


async def _filter(connection: Connection, single: Conversation | None, payload: dict[str, Any]) -> str | None:
    """Return what to send for one event, re-checking access where participation changed."""
    kind = payload.get("event", "")
    me = connection.me.account_id
    if kind == "account.conversation_added":
        added = int(payload["conversation_id"])
        if single is not None and added != single.id:
            return None
        if await connection.still_participates(added):
            await connection.follow(f"conversation.{added}")
            connection.visible.add(added)
        return encode(payload)
    conversation_id = payload.get("conversation_id")
    if not isinstance(conversation_id, int):
        return None
    if kind in ("participant.left", "participant.joined") and payload.get("account_id") == me:
        if await connection.still_participates(conversation_id):
            connection.visible.add(conversation_id)
        else:
            connection.visible.discard(conversation_id)
            if single is None:
                await connection.unfollow(f"conversation.{conversation_id}")
            return encode(payload)  # the last thing a former participant hears
    if kind == "conversation.deleted":
        connection.visible.discard(conversation_id)
        return encode(payload)
    if conversation_id not in connection.visible:
        return None
    return encode(payload)


async def _receive(svc: Services, me: Actor, single: Conversation | None) -> None:
    while True:
        raw = await websocket.receive()
        try:
            data = json.loads(raw)
        except (TypeError, ValueError):
            continue
        if not isinstance(data, dict) or data.get("type") != "read":
            continue
        message_id = data.get("message_id")
        conversation_id = data.get("conversation_id", single.id if single is not None else None)
        if not isinstance(message_id, int) or not isinstance(conversation_id, int):
            continue
        conversation = await Conversation.get_or_none(id=conversation_id)
        if conversation is None:
            continue
        with contextlib.suppress(PlatformError):
            await actions.do_mark_read(svc, me, conversation, message_id)
