"""A room with real aiortc peers: forwarding, slots, media state, keyframes, the cap."""

from __future__ import annotations

import asyncio
import time

import pytest
from media_support import JoinClients, SyntheticCamera, decode_vp8

from lotse.media.client import CallClient, InProcessSignalling
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
from lotse.media.forwarding import KeyframeRequester
from lotse.media.room import Room


def pushes(client: CallClient, kind: str) -> list[dict[str, object]]:
    return [m for m in client.log.pushes if m.get("type") == kind]


async def settle(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def test_everybody_receives_everybody_and_the_media_state(make_room, join_clients: JoinClients) -> None:
    room: Room = make_room(cap=4)
    events: list[RoomEvent] = []
    room.subscribe(events.append)
    clients = await join_clients(room, ["p0", "p1", "p2"])
    await settle(1.0)

    for client in clients:
        for other in clients:
            if other is client:
                continue
            video = client.frames_from(other.participant_id, "camera")
            audio = client.frames_from(other.participant_id, "microphone")
            assert video[0].frame.keyframe, f"{client.participant_id}: first frame from {other.participant_id} is no keyframe"
            pictures, errors = decode_vp8(video)
            assert errors == 0, f"{client.participant_id}: {errors} of {other.participant_id}'s frames did not decode"
            assert pictures >= len(video) - 1, f"{client.participant_id}: {pictures} pictures from {len(video)} frames"
            assert len(video) >= 20, f"{client.participant_id} got only {len(video)} frames from {other.participant_id}"
            assert len(audio) >= 40, f"{client.participant_id} got only {len(audio)} audio packets from {other.participant_id}"
    p0, p1, p2 = clients

    # Muting is announced to everybody and enforced: no more audio from p0.
    await p0.set_media(microphone=False)
    for client in (p1, p2):
        await client.wait_for(lambda c=client: any(m["participant"] == "p0" and m["microphone"] is False for m in pushes(c, "media_state")), 2, "p0's mute")
    await settle(0.3)
    before = len(p1.frames_from("p0", "microphone"))
    await settle(0.5)
    assert len(p1.frames_from("p0", "microphone")) == before, "audio kept flowing from a muted participant"
    await p0.set_media(microphone=True)
    await p1.wait_for(lambda: len(p1.frames_from("p0", "microphone")) > before + 5, 2, "p0's audio after unmuting")

    # Camera off stops p1's video; camera on resumes it on a keyframe.
    await p1.set_media(camera=False)
    await p0.wait_for(lambda: any(m["participant"] == "p1" and m["camera"] is False for m in pushes(p0, "media_state")), 2, "p1's camera off")
    await settle(0.3)
    before = len(p0.frames_from("p1", "camera"))
    await settle(0.5)
    assert len(p0.frames_from("p1", "camera")) == before, "video kept flowing from a switched-off camera"
    await p1.set_media(camera=True)
    await p0.wait_for(lambda: len(p0.frames_from("p1", "camera")) > before + 3, 3, "p1's video after camera on")
    assert p0.frames_from("p1", "camera")[before].frame.keyframe, "video resumed without a keyframe"

    # Screen sharing needs no renegotiation: a slot is pointed at it.
    await p2.share_screen(SyntheticCamera(seed=9))
    for client in (p0, p1):
        await client.wait_for(lambda c=client: len(c.frames_from("p2", "screen")) >= 5, 5, "p2's screen")
        assert client.frames_from("p2", "screen")[0].frame.keyframe
        assert any(m == {"type": "screen_share", "participant": "p2", "on": True} for m in pushes(client, "screen_share"))
    with pytest.raises(MediaError) as refused:
        await p0.share_screen(SyntheticCamera(seed=3))
    assert refused.value.code is ErrorCode.SCREEN_SHARE_BUSY
    await p2.share_screen(None)
    await p0.wait_for(lambda: any(m.get("on") is False for m in pushes(p0, "screen_share")), 2, "screen share stop")
    await p0.wait_for(lambda: all(s["source"] != "screen" for s in p0.slots.values()), 2, "screen slot released")

    state = room.state()
    assert [p.id for p in state.participants] == ["p0", "p1", "p2"]
    assert state.started_at is not None
    assert state.screen_share is None
    await asyncio.sleep(0.05)
    kinds = [type(e) for e in events]
    assert kinds[:3] == [ParticipantJoined] * 3
    assert [e.microphone for e in events if isinstance(e, MediaStateChanged)] == [False, True, True, True]
    assert [e.camera for e in events if isinstance(e, MediaStateChanged)] == [True, True, False, True]
    assert ScreenShareStarted in kinds
    assert ScreenShareStopped in kinds


async def test_six_participants(make_room, join_clients: JoinClients) -> None:
    room = make_room(cap=6)
    clients = await join_clients(room, [f"p{i}" for i in range(6)])
    await settle(0.5)
    for client in clients:
        for other in clients:
            if other is not client:
                video = client.frames_from(other.participant_id, "camera")
                assert video
                assert video[0].frame.keyframe
                assert decode_vp8(video)[1] == 0
    stats = room.stats()
    assert stats["overflowed"] == 0
    assert stats["active_slots"] == 6 * 5 * 2


async def test_late_joiner_gets_a_keyframe_within_two_seconds(make_room, join_clients: JoinClients) -> None:
    room = make_room(cap=3)
    await join_clients(room, ["p0", "p1"])
    await settle(1.5)  # well past p0's first keyframe
    started = time.monotonic()
    (late,) = await join_clients(room, ["late"], wait=False)
    await late.wait_for(lambda: bool(late.frames_from("p0", "camera")) and bool(late.frames_from("p1", "camera")), 2, "a keyframe within 2 s")
    elapsed = time.monotonic() - started
    assert late.frames_from("p0", "camera")[0].frame.keyframe
    assert late.frames_from("p1", "camera")[0].frame.keyframe
    assert elapsed < 2


async def test_leaving_frees_slots_for_the_next_joiner(make_room, join_clients: JoinClients) -> None:
    room = make_room(cap=3, close_when_empty=False)
    events: list[RoomEvent] = []
    room.subscribe(events.append)
    p0, _p1, p2 = await join_clients(room, ["p0", "p1", "p2"])
    p2_slots = {mid for mid, s in p0.slots.items() if s["participant"] == "p2"}
    assert len(p2_slots) == 2

    await p2.leave()
    await p0.wait_for(lambda: all(s["participant"] != "p2" for s in p0.slots.values()), 2, "p2's slots freed")
    assert any(m == {"type": "participant_left", "participant": "p2", "reason": "left"} for m in pushes(p0, "participant_left"))
    assert room.participant_ids == ["p0", "p1"]

    # The room was full; now p3 fits, and gets p2's old slots at p0.
    (_p3,) = await join_clients(room, ["p3"])
    p3_slots = {mid for mid, s in p0.slots.items() if s["participant"] == "p3"}
    assert p3_slots == p2_slots
    frames = p0.frames_from("p3", "camera")
    assert frames[0].frame.keyframe
    assert decode_vp8(frames)[1] == 0
    # Timestamps are rebased: the slot's stream continues where p2's ended.
    mid = next(m for m in p3_slots if p0.slots[m]["kind"] == "video")
    old = [f for f in p0.frames_from("p2", "camera") if f.mid == mid]
    assert old
    assert frames[0].frame.pts > old[-1].frame.pts
    await asyncio.sleep(0.05)
    left = [e for e in events if isinstance(e, ParticipantLeft)]
    assert [(e.participant_id, e.reason) for e in left] == [("p2", LeaveReason.LEFT)]


async def test_the_cap_is_enforced(make_room, join_clients: JoinClients) -> None:
    room = make_room(cap=2)
    await join_clients(room, ["p0", "p1"])
    extra = CallClient("p2", cap=2, microphone=None, camera=SyntheticCamera())
    try:
        with pytest.raises(MediaError) as refused:
            await extra.join(InProcessSignalling(room, "p2", extra.on_push))
        assert refused.value.code is ErrorCode.ROOM_FULL
    finally:
        await extra.pc.close()
    assert room.participant_ids == ["p0", "p1"]
    replies = await room.handle("p2", {"type": "join", "sdp": "v=0", "id": 7}, outbox=_ignore)
    assert replies == [{"type": "error", "code": "room_full", "message": "the call is full", "cap": 2, "re": 7}]


async def _ignore(message: dict[str, object]) -> None:
    return None


async def test_signalling_errors(make_room) -> None:
    room: Room = make_room(cap=3)

    async def code(participant: str, message: dict[str, object]) -> str:
        (reply,) = await room.handle(participant, message, outbox=_ignore)
        return str(reply.get("code", reply["type"]))

    assert await code("a", {"type": "media", "microphone": False}) == "not_joined"
    assert await code("a", {"type": "dance"}) == "not_joined"
    assert await code("a", {"type": "join"}) == "bad_message"
    assert await code("a", {"type": "join", "sdp": "garbage"}) == "bad_offer"
    assert await code("a", {"type": "state"}) == "state"
    assert room.participant_ids == []


async def test_keyframe_requests_reach_the_publisher_rate_limited(make_room, join_clients: JoinClients) -> None:
    room = make_room(cap=2)
    _p0, p1 = await join_clients(room, ["p0", "p1"])
    await settle(1.2)
    publication = room._participants["p0"].publications[next(s for s in room._participants["p0"].publications if s == "camera")]
    sent_before, keyframes_before = publication.keyframes.sent, publication.stats.keyframes
    # p1's decoder "loses" pictures: five PLIs in quick succession on p0's slot.
    mid = next(m for m, s in p1.slots.items() if s["participant"] == "p0" and s["kind"] == "video")
    transceiver = next(t for t in p1.pc.getTransceivers() if t.mid == mid)
    ssrc = p1.frames_from("p0", "camera")[-1].frame.ssrc
    for _ in range(5):
        await transceiver.receiver._send_rtcp_pli(ssrc)
        await asyncio.sleep(0.05)
    await p1.wait_for(lambda: publication.stats.keyframes > keyframes_before, 2, "a keyframe from p0")
    await settle(1.2)
    assert 1 <= publication.keyframes.sent - sent_before <= 2, "keyframe requests were not rate-limited"


async def test_keyframe_requester_defers_instead_of_dropping() -> None:
    sent: list[float] = []
    requester = KeyframeRequester(lambda: sent.append(time.monotonic()) is None, interval=0.2)
    requester.request()
    requester.request()
    requester.request()
    assert len(sent) == 1
    await asyncio.sleep(0.3)
    assert len(sent) == 2
    assert sent[1] - sent[0] >= 0.19
    requester.request()
    requester.keyframe_seen()  # a keyframe came anyway: the deferred request is dropped
    await asyncio.sleep(0.3)
    assert len(sent) == 2


async def test_the_room_closes_when_the_last_participant_leaves(make_room, join_clients: JoinClients) -> None:
    room = make_room(cap=2)
    events: list[RoomEvent] = []
    room.subscribe(events.append)
    p0, p1 = await join_clients(room, ["p0", "p1"])
    await p0.leave()
    await p1.leave()
    assert room.closed
    assert isinstance(events[-1], RoomClosed)
    assert events[-1].started_at is not None
    (reply,) = await room.handle("p2", {"type": "join", "sdp": "v=0"}, outbox=_ignore)
    assert reply["code"] == "room_closed"
