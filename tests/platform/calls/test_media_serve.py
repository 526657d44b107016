"""``lotse media serve``: the media unit as a process of its own, reached by the platform.

The media process is started as a real subprocess on 127.0.0.1 with
``LOTSE_MEDIA_SECRET``; the platform (served in the test's event loop, as in
``test_calls_signalling``) is pointed at it with ``LOTSE_MEDIA_URL``. Real
aiortc peers join through the platform's signalling WebSocket; their media
goes to the media process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiortc import AudioStreamTrack
from websockets.asyncio.client import connect

from lotse.media.client import CallClient
from lotse.media.errors import ErrorCode, MediaError
from lotse.media.tokens import issue_token
from lotse.platform.audit.models import AuditEvent
from lotse.platform.calls import actions
from lotse.platform.calls.media import MEDIA_SECRET_ENV, MEDIA_URL_ENV, call_media
from lotse.platform.calls.models import CallAttendance
from lotse.platform.permissions import Actor
from tests.media.media_support import SyntheticCamera, decode_vp8
from tests.platform.calls.conftest import make_party
from tests.platform.calls.test_calls_signalling import (
    Live,
    PlatformSignalling,
    _everybody_hears_everybody,
)
from tests.platform.calls.test_calls_signalling import live as live  # the fixture, used here too

pytestmark = [pytest.mark.asyncio, pytest.mark.slow]

UNREACHABLE_DE = "Das Gespräch ist im Moment nicht erreichbar"


@dataclass
class MediaProcess:
    url: str
    secret: str
    process: asyncio.subprocess.Process

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.kill()
        await self.process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _start(secret: str) -> MediaProcess:
    port = _free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from lotse.platform.cli import main; main()",
        "media", "serve", "--host", "127.0.0.1", "--port", str(port),
        env={**os.environ, MEDIA_SECRET_ENV: secret},
    )
    for _ in range(150):
        if process.returncode is not None:
            raise AssertionError(f"lotse media serve exited with {process.returncode}")
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            return MediaProcess(f"ws://127.0.0.1:{port}", secret, process)
        await asyncio.sleep(0.1)
    process.kill()
    raise AssertionError("lotse media serve did not start listening")


@pytest.fixture
async def media_process(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[MediaProcess]:
    """A running ``lotse media serve``; the platform is pointed at it (read when first used)."""
    started = await _start(secrets.token_hex(16))
    monkeypatch.setenv(MEDIA_URL_ENV, started.url)
    monkeypatch.setenv(MEDIA_SECRET_ENV, started.secret)
    try:
        yield started
    finally:
        await started.stop()


async def _join_refused(live: Live, call: Any, account: Any) -> dict[str, Any]:
    """Join through the platform's socket; return the error reply (a hang fails after 15 s)."""
    client = CallClient(str(account.id), cap=call.cap, microphone=AudioStreamTrack(), camera=SyntheticCamera())
    live.clients.append(client)
    signalling = PlatformSignalling(live.url(call), await live.headers(account), client.on_push)
    await signalling.connect()
    with pytest.raises(MediaError) as refused:
        await asyncio.wait_for(client.join(signalling), 15)
    assert refused.value.code == ErrorCode.UNKNOWN_ROOM
    return {"code": refused.value.code, "message": str(refused.value)}


async def test_two_people_call_through_a_media_process(media_process: MediaProcess, live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    assert call.media_url == media_process.url  # the call is pinned to the media process
    a = await live.join(call, party.manager)
    b = await live.join(call, party.client)
    await _everybody_hears_everybody([a, b], within=15)
    for client, other in ((a, b), (b, a)):
        frames = client.frames_from(other.participant_id, "camera")
        assert frames[0].frame.keyframe
        pictures, errors = decode_vp8(frames)
        assert pictures > 0
        assert errors == 0
    # The room lives in the media process, not in the app's own unit.
    assert call_media(svc).unit.rooms == {}
    # The platform's part is the same as in the embedded mode: names, attendance, audit.
    joined = [p for p in a.log.pushes if p["type"] == "participant_joined"]
    assert [p["participant"]["name"] for p in joined] == [party.client.name]
    await a.set_media(microphone=False)
    await b.wait_for(lambda: any(p["type"] == "media_state" and p["microphone"] is False for p in b.log.pushes),
                     5, "a's microphone off")
    assert await CallAttendance.filter(call_id=call.id, left_at=None).count() == 2
    assert await AuditEvent.filter(action="call.join").count() == 2
    await b.leave()
    await a.wait_for(lambda: any(p["type"] == "participant_left" for p in a.log.pushes), 5, "b's leaving")


async def test_a_bad_join_token_is_refused_by_the_media_process(media_process: MediaProcess) -> None:
    forged = issue_token(b"not-the-secret", "room-1", "42")
    for token in (forged, "nonsense", issue_token(media_process.secret.encode(), "another-room", "42")):
        async with connect(f"{media_process.url}/rooms/room-1?token={token}") as ws:
            reply = await asyncio.wait_for(ws.recv(), 5)
            assert '"unauthorised"' in str(reply)
            await asyncio.wait_for(ws.wait_closed(), 5)
            assert ws.close_code == 4401


async def test_a_platform_with_the_wrong_secret_gets_call_cannot_be_reached(
    media_process: MediaProcess, live: Live, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MEDIA_SECRET_ENV, "not-" + media_process.secret)
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    refusal = await _join_refused(live, call, party.manager)
    assert UNREACHABLE_DE in refusal["message"]  # the manager's profile language is German
    assert await CallAttendance.filter(call_id=call.id).count() == 0


async def test_a_media_process_gone_before_the_join_gives_call_cannot_be_reached(
    media_process: MediaProcess, live: Live
) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    await media_process.stop()
    refusal = await _join_refused(live, call, party.manager)
    assert UNREACHABLE_DE in refusal["message"]


async def test_a_media_process_dying_during_the_call_tells_everybody(media_process: MediaProcess, live: Live) -> None:
    svc = live.svc
    party = await make_party(svc)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    a = await live.join(call, party.manager)
    b = await live.join(call, party.client)
    await _everybody_hears_everybody([a, b], within=15)
    await media_process.stop()
    for client in (a, b):
        await client.wait_for(lambda cl=client: any(p["type"] == "room_closed" for p in cl.log.pushes), 10,
                              "room_closed")
        errors = [p for p in client.log.pushes if p["type"] == "error"]
        assert [e["code"] for e in errors] == [ErrorCode.UNKNOWN_ROOM]
    # Their stays are recorded as ended, as when a call ends.
    for _ in range(100):
        if await CallAttendance.filter(call_id=call.id, left_at=None).count() == 0:
            break
        await asyncio.sleep(0.05)
    assert await CallAttendance.filter(call_id=call.id, left_at=None).count() == 0
