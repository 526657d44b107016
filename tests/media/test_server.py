"""The standalone server: the same signalling over a real WebSocket, behind join tokens."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from aiortc import AudioStreamTrack
from media_support import SyntheticCamera
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from lotse.media.client import CallClient, WebSocketSignalling
from lotse.media.errors import ErrorCode, MediaError
from lotse.media.room import RoomSettings
from lotse.media.server import run
from lotse.media.tokens import issue_token, verify_token
from lotse.media.unit import MediaUnit

SECRET = b"test-secret"


@pytest.fixture
async def server() -> AsyncIterator[tuple[int, MediaUnit]]:
    unit = MediaUnit(RoomSettings(cap=2))
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(run("127.0.0.1", 0, unit, SECRET, stop=stop, ready=ready))
    port = await asyncio.wait_for(ready, 5)
    yield port, unit
    stop.set()
    await asyncio.wait_for(task, 10)


def url(port: int, room: str, participant: str) -> str:
    return f"ws://127.0.0.1:{port}/rooms/{room}?token={issue_token(SECRET, room, participant)}"


async def test_two_participants_call_through_the_standalone_server(server) -> None:
    port, unit = server
    clients = []
    try:
        for name in ("a", "b"):
            client = CallClient(name, cap=2, microphone=AudioStreamTrack(), camera=SyntheticCamera())
            signalling = WebSocketSignalling(url(port, "call-1", name), client.on_push)
            await signalling.connect()
            await client.join(signalling)
            clients.append(client)
        a, b = clients
        await a.wait_for(lambda: len(a.frames_from("b", "camera")) >= 5, 5, "b's video")
        await b.wait_for(lambda: len(b.frames_from("a", "microphone")) >= 5, 5, "a's audio")
        assert a.frames_from("b", "camera")[0].frame.keyframe
        await b.set_media(microphone=False)
        await a.wait_for(lambda: any(m.get("type") == "media_state" for m in a.log.pushes), 2, "b's mute")

        third = CallClient("c", cap=2, microphone=None, camera=SyntheticCamera())
        signalling = WebSocketSignalling(url(port, "call-1", "c"), third.on_push)
        await signalling.connect()
        with pytest.raises(MediaError) as refused:
            await third.join(signalling)
        assert refused.value.code is ErrorCode.ROOM_FULL
        await third.close()

        # Closing the WebSocket is leaving.
        await b.close()
        await a.wait_for(lambda: any(m.get("type") == "participant_left" for m in a.log.pushes), 3, "b leaving")
        assert unit.get("call-1").participant_ids == ["a"]
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await client.close()


async def test_a_bad_token_is_refused(server) -> None:
    port, _ = server
    forged = issue_token(b"another-secret", "call-2", "mallory")
    async with connect(f"ws://127.0.0.1:{port}/rooms/call-2?token={forged}") as ws:
        reply = json.loads(await ws.recv())
        assert reply["code"] == "unauthorised"
        with pytest.raises(ConnectionClosed):
            await ws.recv()
        assert ws.close_code == 4401
    wrong_room = issue_token(SECRET, "call-3", "mallory")
    async with connect(f"ws://127.0.0.1:{port}/rooms/call-2?token={wrong_room}") as ws:
        assert json.loads(await ws.recv())["code"] == "unauthorised"


def test_tokens_expire() -> None:
    token = issue_token(SECRET, "r", "p", ttl=60, now=1000)
    assert verify_token(SECRET, "r", token, now=1059) == "p"
    with pytest.raises(MediaError):
        verify_token(SECRET, "r", token, now=1061)
    with pytest.raises(MediaError):
        verify_token(SECRET, "r", token + "x", now=1000)
