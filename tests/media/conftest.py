"""Real aiortc peers on this machine with synthetic media, joined over the real signalling."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiortc import AudioStreamTrack
from media_support import JoinClients, SyntheticCamera

from lotse.media.client import CallClient, InProcessSignalling
from lotse.media.room import Room, RoomSettings


@pytest.fixture
async def make_room() -> AsyncIterator[Callable[..., Room]]:
    rooms: list[Room] = []

    def make(cap: int = 4, **settings: Any) -> Room:
        room = Room(f"room-{len(rooms)}", RoomSettings(cap=cap, **settings))
        rooms.append(room)
        return room

    yield make
    for room in rooms:
        await room.close()


@pytest.fixture
async def join_clients() -> AsyncIterator[JoinClients]:
    """Join clients p<i> to a room and wait until each receives every other's video."""
    clients: list[CallClient] = []

    async def join(room: Room, names: list[str], *, cap: int | None = None, wait: bool = True) -> list[CallClient]:
        joined = []
        for name in names:
            client = CallClient(
                name,
                cap=cap or room.settings.cap,
                microphone=AudioStreamTrack(),
                camera=SyntheticCamera(len(clients)),
            )
            clients.append(client)
            await client.join(InProcessSignalling(room, name, client.on_push))
            joined.append(client)
        if wait:
            everybody = room.participant_ids
            for client in clients:
                if client.participant_id not in everybody:
                    continue
                others = [p for p in everybody if p != client.participant_id]
                await client.wait_for(
                    lambda c=client, o=others: all(c.frames_from(p, "camera") and c.frames_from(p, "microphone") for p in o),
                    10,
                    f"audio and video from {others}",
                )
        return joined

    yield join
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)
