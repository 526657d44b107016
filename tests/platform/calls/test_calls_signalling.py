"""Real aiortc peers in a call over the platform's own signalling WebSocket.

The app runs under Hypercorn in the test's event loop on 127.0.0.1; each
participant is a :class:`lotse.media.client.CallClient` (synthetic camera and
microphone) whose signalling goes through ``/calls/<id>/ws`` with its own
session cookie, to the media unit inside the app process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiortc import AudioStreamTrack
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from lotse.media.client import CallClient, WebSocketSignalling
from lotse.platform.accounts.models import Account
from lotse.platform.accounts.sessions import start_session
from lotse.platform.audit.models import AuditEvent
from lotse.platform.calls import actions
from lotse.platform.calls.models import Call, CallAttendance
from lotse.platform.permissions import Actor
from lotse.platform.web import SESSION_COOKIE
from tests.media.media_support import SyntheticCamera, decode_vp8
from tests.platform.calls.conftest import Party, make_party

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]


class PlatformSignalling(WebSocketSignalling):
    """The media client's WebSocket signalling, with the platform's cookie and Origin."""

    def __init__(self, url: str, headers: dict[str, str], on_push: Callable[[dict[str, Any]], None]) -> None:
        super().__init__(url, on_push)
        self.headers = headers

    async def connect(self) -> None:
        self._ws = await connect(self.url, max_size=2**22, additional_headers=self.headers)
        self._reader = asyncio.ensure_future(self._read())


class Live:
    """The app served on 127.0.0.1, and a way to put people into calls."""

    def __init__(self, app: Any, base: str) -> None:
        self.app = app
        self.base = base
        self.svc = app.extensions["lotse"]
        self.clients: list[CallClient] = []

    async def headers(self, account: Account, language: str | None = None) -> dict[str, str]:
        key = await start_session(account, self.svc.now(), pending_two_factor=False)
        headers = {"Origin": self.base, "Cookie": f"{SESSION_COOKIE}={key}"}
        if language:
            headers["Accept-Language"] = language
        return headers

    def url(self, call: Call) -> str:
        return self.base.replace("http", "ws") + f"/calls/{call.id}/ws"

    async def join(self, call: Call, account: Account, *, cap: int | None = None,
                   headers: dict[str, str] | None = None) -> CallClient:
        client = CallClient(str(account.id), cap=cap or call.cap, microphone=AudioStreamTrack(),
                            camera=SyntheticCamera(len(self.clients)))
        self.clients.append(client)
        signalling = PlatformSignalling(self.url(call), headers or await self.headers(account), client.on_push)
        await signalling.connect()
        await client.join(signalling)
        return client


@pytest.fixture
async def live(settings: Any, clock: Any) -> AsyncIterator[Live]:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from lotse.platform.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    host, port = sock.getsockname()
    base = f"http://{host}:{port}"
    app = create_app(settings.with_(base_url=base), clock=clock, start_workers=False)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    async with httpx.AsyncClient() as http:  # the first answer comes once start-up is done
        await http.get(base + "/static/lotse.css", timeout=30)
    server = Live(app, base)
    try:
        yield server
    finally:
        for client in server.clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
        stop.set()
        await asyncio.wait_for(task, timeout=30)


async def _everybody_hears_everybody(clients: list[CallClient], within: float = 10) -> None:
    for client in clients:
        others = [c.participant_id for c in clients if c is not client]
        await client.wait_for(
            lambda c=client, o=others: all(c.frames_from(p, "camera") and c.frames_from(p, "microphone") for p in o),
            within, f"audio and video from {others}")


async def test_three_people_call_over_the_platform_signalling(live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a, b, c = [await live.join(call, person) for person in party.members]
    await _everybody_hears_everybody([a, b, c])

    # Video arrives decodable, starting with a keyframe, from each other participant.
    for client in (a, b, c):
        for other in (a, b, c):
            if other is client:
                continue
            frames = client.frames_from(other.participant_id, "camera")
            assert frames[0].frame.keyframe
            pictures, errors = decode_vp8(frames)
            assert pictures > 0
            assert errors == 0
    # The platform adds names for the participant list.
    joined = [p for p in a.log.pushes if p["type"] == "participant_joined"]
    assert {p["participant"]["name"] for p in joined} == {party.colleague.name, party.client.name}

    # Mute, camera and screen share reach the others.
    await a.set_media(microphone=False)
    await b.set_media(camera=False)
    await c.share_screen(SyntheticCamera(9))
    for client in (a, b, c):
        await client.wait_for(lambda cl=client: any(
            p["type"] == "media_state" and p["participant"] == a.participant_id and p["microphone"] is False
            for p in cl.log.pushes), 5, "a's microphone off")
        await client.wait_for(lambda cl=client: any(
            p["type"] == "media_state" and p["participant"] == b.participant_id and p["camera"] is False
            for p in cl.log.pushes), 5, "b's camera off")
    for client in (a, b):
        await client.wait_for(lambda cl=client: bool(cl.frames_from(c.participant_id, "screen")), 10,
                              "c's screen")
        assert client.frames_from(c.participant_id, "screen")[0].frame.keyframe

    # Everybody's join is recorded and audited.
    assert await CallAttendance.filter(call_id=call.id, left_at=None).count() == 3
    assert await AuditEvent.filter(action="call.join").count() == 3

    # Leaving frees the slots and is recorded.
    await b.leave()
    for client in (a, c):
        await client.wait_for(lambda cl=client: not any(
            s["participant"] == b.participant_id for s in cl.slots.values()), 5, "b's slots freed")
        assert any(p["type"] == "participant_left" and p["participant"] == b.participant_id for p in client.log.pushes)
    await _until(lambda: CallAttendance.filter(call_id=call.id, left_at=None).count(), 2)
    assert await AuditEvent.filter(action="call.leave").count() == 1


async def _until(count: Callable[[], Any], expected: int, within: float = 5) -> None:
    deadline = time.monotonic() + within
    while (value := await count()) != expected:
        assert time.monotonic() < deadline, f"{value} != {expected}"
        await asyncio.sleep(0.05)


async def test_a_late_joiner_gets_a_keyframe_within_two_seconds(live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a = await live.join(call, party.manager)
    b = await live.join(call, party.colleague)
    await _everybody_hears_everybody([a, b])
    await asyncio.sleep(0)  # let the first keyframes pass, so the late joiner needs a new one
    started = time.monotonic()
    late = await live.join(call, party.client)
    await late.wait_for(lambda: all(late.frames_from(p.participant_id, "camera") for p in (a, b)), 2,
                        "a keyframe from each")
    assert time.monotonic() - started < 2
    for publisher in (a, b):
        assert late.frames_from(publisher.participant_id, "camera")[0].frame.keyframe


async def test_the_last_one_leaving_ends_the_call(live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a = await live.join(call, party.manager)
    b = await live.join(call, party.client)
    await _everybody_hears_everybody([a, b])
    await a.close()  # the socket goes away without a goodbye
    await b.leave()

    async def ended() -> int:
        await call.refresh_from_db()
        return 0 if call.running else 1

    await _until(ended, 1)
    assert await AuditEvent.filter(action="call.end").count() == 1
    assert await AuditEvent.filter(action="call.leave").count() == 2


async def test_the_cap_is_enforced_with_a_message_in_the_persons_language(live: Live) -> None:
    svc = live.svc
    party = await make_party(svc, participant_cap=2)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a = await live.join(call, party.manager)
    b = await live.join(call, party.colleague)
    await _everybody_hears_everybody([a, b])
    signalling = PlatformSignalling(live.url(call), await live.headers(party.client), lambda message: None)
    await signalling.connect()
    try:
        [reply] = await signalling.request({"type": "join", "sdp": "v=0"})
    finally:
        await signalling.close()
    assert reply["type"] == "error"
    assert reply["code"] == "call_full"
    assert "höchstens 2 Personen" in reply["message"]  # the client's profile language is German
    assert await CallAttendance.filter(call_id=call.id, left_at=None).count() == 2


async def test_the_manager_ending_the_call_closes_it_for_everybody(live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a = await live.join(call, party.manager)
    b = await live.join(call, party.client)
    await _everybody_hears_everybody([a, b])
    await actions.do_end_call(svc, Actor.of(party.manager), call)
    for client in (a, b):
        await client.wait_for(lambda cl=client: any(p["type"] == "room_closed" for p in cl.log.pushes), 5,
                              "room_closed")


async def test_people_outside_the_conversation_get_no_socket(live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    with pytest.raises(InvalidStatus) as refused:
        await connect(live.url(call), additional_headers=await live.headers(party.outsider))
    assert refused.value.response.status_code == 403
    refusal = await AuditEvent.get(action="call.join")
    assert refusal.actor_id == party.outsider.id
    # Nor anyone without a session, nor from another site.
    with pytest.raises(InvalidStatus):
        await connect(live.url(call), additional_headers={"Origin": live.base})
    headers = await live.headers(party.manager)
    with pytest.raises(InvalidStatus):
        await connect(live.url(call), additional_headers={**headers, "Origin": "https://elsewhere.example"})


async def test_where_video_is_off_the_socket_says_so(live: Live) -> None:
    svc = live.svc
    party: Party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    party.org.video_calls = False
    await party.org.save()
    async with connect(live.url(call), additional_headers=await live.headers(party.colleague, "nl")) as ws:
        message = json.loads(await ws.recv())
    assert message["type"] == "error"
    assert message["code"] == "video_calls_off"
    assert message["message"] == "Uw organisatie biedt geen videogesprekken aan."


async def test_signing_out_elsewhere_takes_the_person_out_of_the_call(live: Live) -> None:
    from lotse.platform.auth.actions import do_sign_out

    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a = await live.join(call, party.manager)
    headers = await live.headers(party.client)
    b = await live.join(call, party.client, headers=headers)
    await _everybody_hears_everybody([a, b])

    session_key = headers["Cookie"].split("=", 1)[1]
    await do_sign_out(svc, Actor.of(party.client), session_key)  # e.g. in another tab

    await b.wait_for(lambda: any(p["type"] == "session_ended" for p in b.log.pushes), 5, "session_ended")
    [said] = [p for p in b.log.pushes if p["type"] == "session_ended"]
    assert said["message"].startswith("Sie wurden abgemeldet")  # the client's profile language
    await a.wait_for(lambda: any(p["type"] == "participant_left" and p["participant"] == str(party.client.id)
                                 for p in a.log.pushes), 5, "participant_left")
    stay = await CallAttendance.get(call_id=call.id, account_id=party.client.id)
    assert stay.left_at is not None
    leave = await AuditEvent.get(action="call.leave", actor_id=party.client.id)
    assert leave.details["reason"] == "signed_out"
