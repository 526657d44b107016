"""A Python call client: the tests', the benchmark's and operators' stand-in for a browser.

It builds the one offer a participant ever makes (senders plus fixed receive
slots, see :mod:`lotse.media.room`), speaks the signalling over a
:class:`Signalling` port (in-process against a :class:`~lotse.media.room.Room`
or over the standalone server's WebSocket), follows the pushed slot map and
taps its receivers, so received media arrives as encoded frames attributed to
the participant and source they came from, without decoding (the caller may
decode them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.rtcconfiguration import RTCBundlePolicy

from lotse.media import tap
from lotse.media.errors import ErrorCode, MediaError
from lotse.media.room import Message, Room
from lotse.media.tap import EncodedFrame


class Signalling(Protocol):
    """How a client reaches a room: send a request, get its replies; pushes go to ``on_push``."""

    async def request(self, message: Message) -> list[Message]: ...

    async def close(self) -> None: ...


class InProcessSignalling:
    """Talk to a room object in the same process (the embedded mode)."""

    def __init__(self, room: Room, participant_id: str, on_push: Callable[[Message], None]) -> None:
        self.room = room
        self.participant_id = participant_id
        self._on_push = on_push

    async def _outbox(self, message: Message) -> None:
        # Round-trip through JSON, as a real transport would.
        self._on_push(json.loads(json.dumps(message)))

    async def request(self, message: Message) -> list[Message]:
        replies = await self.room.handle(self.participant_id, message, self._outbox)
        return [json.loads(json.dumps(reply)) for reply in replies]

    async def close(self) -> None:
        await self.room.leave(self.participant_id)


class WebSocketSignalling:
    """Talk to :mod:`lotse.media.server` over a WebSocket."""

    def __init__(self, url: str, on_push: Callable[[Message], None]) -> None:
        self.url = url
        self._on_push = on_push
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int, asyncio.Future[list[Message]]] = {}
        self._next_id = 0

    async def connect(self) -> None:
        from websockets.asyncio.client import connect

        self._ws = await connect(self.url, max_size=2**22)
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        with contextlib.suppress(Exception):
            async for raw in self._ws:
                message = json.loads(raw)
                request_id = message.get("re")
                future = self._pending.pop(request_id, None) if isinstance(request_id, int) else None
                if future is not None and not future.done():
                    future.set_result([message])
                else:
                    self._on_push(message)
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionError("signalling closed"))

    async def request(self, message: Message) -> list[Message]:
        assert self._ws is not None, "connect() first"
        self._next_id += 1
        future: asyncio.Future[list[Message]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._ws.send(json.dumps({**message, "id": self._next_id}))
        return await asyncio.wait_for(future, 30)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            with contextlib.suppress(BaseException):
                await self._reader


@dataclass(frozen=True, slots=True)
class ReceivedFrame:
    """A frame a client received, attributed by the slot map current at arrival."""

    mid: str
    participant: str | None
    source: str | None
    frame: EncodedFrame


@dataclass
class ClientLog:
    """What a client saw: frames per (participant, source), pushed messages."""

    frames: dict[tuple[str | None, str | None], list[ReceivedFrame]] = field(default_factory=dict)
    pushes: list[Message] = field(default_factory=list)
    first_frame_per_slot: dict[str, ReceivedFrame] = field(default_factory=dict)


class CallClient:
    """One participant: a peer connection with senders and receive slots."""

    def __init__(
        self,
        participant_id: str,
        *,
        cap: int,
        microphone: MediaStreamTrack | None,
        camera: MediaStreamTrack | None,
        screen: bool = True,
        keep_frames: bool = True,
        on_frame: Callable[[ReceivedFrame], None] | None = None,
        estimate_bandwidth: bool = True,
        forwarding_sender: bool = False,
    ) -> None:
        """``estimate_bandwidth=False`` drops the receivers' REMB estimators (a benchmark
        client whose sender replays packets has nothing to adapt, and the
        estimators were a sixth of a receiving client's CPU).
        ``forwarding_sender=True`` sends with the server's lean send loop
        (:func:`lotse.media.tap.install_forwarding_sender`): for tracks that
        return encoded packets (the benchmark's replayed clip), never frames."""
        self.participant_id = participant_id
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.log = ClientLog()
        self.slots: dict[str, Message] = {}
        self.slot_version = 0
        self.room: Message | None = None
        self.keep_frames = keep_frames
        self.on_frame = on_frame
        self.signalling: Signalling | None = None
        self._senders: dict[str, RTCRtpSender] = {}
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        if microphone is not None:
            self._senders["microphone"] = self.pc.addTransceiver(microphone, direction="sendonly").sender
        if camera is not None:
            self._senders["camera"] = self.pc.addTransceiver(camera, direction="sendonly").sender
        if screen:
            self._senders["screen"] = self.pc.addTransceiver("video", direction="sendonly").sender
        if forwarding_sender:
            for sender in self._senders.values():
                tap.install_forwarding_sender(sender)
        self._slot_transceivers = []
        for kind, count in (("audio", cap - 1), ("video", cap)):
            for _ in range(count):
                transceiver = self.pc.addTransceiver(kind, direction="recvonly")
                self._slot_transceivers.append(transceiver)
                if not estimate_bandwidth:
                    tap.drop_bandwidth_estimator(transceiver.receiver)

    # -- signalling ------------------------------------------------------------
    async def join(self, signalling: Signalling, *, microphone: bool = True, camera: bool = True) -> Message:
        """Offer, join, apply the answer; raise :class:`MediaError` if refused."""
        self.signalling = signalling
        await self.pc.setLocalDescription(await self.pc.createOffer())
        tap.read_in_batches(self.pc)
        description = self.pc.localDescription
        senders = {}
        for transceiver in self.pc.getTransceivers():
            for name, sender in self._senders.items():
                if transceiver.sender is sender:
                    senders[name] = transceiver.mid
        # Receivers start once the connection is up, so tapping now is in time.
        for transceiver in self._slot_transceivers:
            mid = str(transceiver.mid)
            tap.install_receiver_tap(transceiver.receiver, functools.partial(self._on_frame, mid))
        tap.route_by_mid(self.pc)
        replies = await signalling.request(
            {"type": "join", "sdp": description.sdp, "senders": senders, "microphone": microphone, "camera": camera}
        )
        reply = replies[0]
        if reply.get("type") == "error":
            raise MediaError(ErrorCode(reply["code"]), reply.get("message", ""))
        self.room = reply["room"]
        self._apply_slots(reply["slots"], reply["version"])
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=reply["sdp"], type="answer"))
        return reply

    async def request(self, message: Message) -> Message:
        assert self.signalling is not None
        replies = await self.signalling.request(message)
        reply = replies[0]
        if reply.get("type") == "error":
            raise MediaError(ErrorCode(reply["code"]), reply.get("message", ""))
        return reply

    async def set_media(self, *, microphone: bool | None = None, camera: bool | None = None) -> None:
        message: Message = {"type": "media"}
        if microphone is not None:
            message["microphone"] = microphone
        if camera is not None:
            message["camera"] = camera
        await self.request(message)

    async def share_screen(self, track: MediaStreamTrack | None) -> None:
        """Start sharing ``track`` on the screen sender (None stops), without renegotiation."""
        self._senders["screen"].replaceTrack(track)
        await self.request({"type": "screen_share", "on": track is not None})

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await self.request({"type": "leave"})
        await self.close()

    async def close(self) -> None:
        await self.pc.close()
        if self.signalling is not None:
            with contextlib.suppress(Exception):
                await self.signalling.close()

    def on_push(self, message: Message) -> None:
        """Feed a message the room pushed to this participant."""
        self.log.pushes.append(message)
        if message.get("type") == "slots":
            self._apply_slots(message["slots"], message["version"])
        self._wake()

    # -- waiting -------------------------------------------------------------------
    async def wait_for(self, condition: Callable[[], bool], within: float, what: str) -> None:
        """Wait until ``condition()`` holds; fail with ``what`` after ``within`` seconds."""
        if condition():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((condition, future))
        try:
            await asyncio.wait_for(future, within)
        except TimeoutError:
            raise AssertionError(f"{self.participant_id}: timed out after {within}s waiting for {what}") from None
        finally:
            self._waiters = [(c, f) for c, f in self._waiters if f is not future]

    def sender(self, source: str) -> RTCRtpSender:
        """Return the sender of ``source`` ("microphone", "camera" or "screen")."""
        return self._senders[source]

    def frames_from(self, participant: str, source: str) -> list[ReceivedFrame]:
        return self.log.frames.get((participant, source), [])

    # -- internals -------------------------------------------------------------------
    def _apply_slots(self, slots: list[Message], version: int) -> None:
        if version < self.slot_version:
            return
        self.slot_version = version
        self.slots = {slot["mid"]: slot for slot in slots}

    def _on_frame(self, mid: str, frame: EncodedFrame) -> None:
        slot = self.slots.get(mid, {})
        received = ReceivedFrame(mid, slot.get("participant"), slot.get("source"), frame)
        if self.keep_frames:
            self.log.frames.setdefault((received.participant, received.source), []).append(received)
            self.log.first_frame_per_slot.setdefault(mid, received)
        if self.on_frame is not None:
            self.on_frame(received)
        if self._waiters:
            self._wake()

    def _wake(self) -> None:
        for condition, future in self._waiters:
            if not future.done() and condition():
                future.set_result(None)
