"""A call room: participants, their media state, slot assignment and signalling.

Each participant has one peer connection to the server. Its client offers,
once, its senders (microphone, camera and a screen-share sender, which may
stay without a track until sharing starts) plus a fixed set of receive-only
*slots*. The room points each slot at another participant's stream; joins,
leaves and screen sharing only move slots, so no renegotiation ever happens
(renegotiation is where aiortc-based group calls usually break).

Signalling is JSON objects, carried by whoever embeds the room: the platform
over its authenticated WebSocket, or :mod:`lotse.media.server` standalone.
The transport authenticates; the room trusts the ``participant_id`` it is
given. Every request may carry an ``"id"``; replies echo it as ``"re"``.

Client → room
    ``{"type": "join", "sdp": <offer>, "microphone": true, "camera": true,
    "senders": {"microphone": "0", "camera": "1", "screen": "2"}}``
        ``senders`` is optional: without it the first sending audio m-line
        is the microphone, the first sending video m-line the camera, the
        second the screen. Every ``recvonly`` m-line is a slot: offer
        ``cap - 1`` audio slots and ``cap`` video slots (each other
        camera plus one screen share). Reply: ``{"type": "joined", "sdp":
        <answer>, "participant": id, "room": <room>, "slots": [<slot>...],
        "version": n}``.
    ``{"type": "media", "microphone": bool, "camera": bool}``
        Either key may be left out. A muted microphone or a switched-off
        camera is enforced by the room (it stops forwarding), not only
        shown. Reply ``{"type": "ok"}``; everybody gets ``media_state``.
    ``{"type": "screen_share", "on": bool}``
        One screen share at a time (else ``screen_share_busy``). The client
        puts its screen track on the screen sender itself (replaceTrack, no
        renegotiation). Reply ``{"type": "ok"}``; everybody gets
        ``screen_share`` and the others a new ``slots`` map.
    ``{"type": "state"}`` → ``{"type": "state", "room": <room>}``
    ``{"type": "leave"}`` → ``{"type": "left"}``

Room → client (pushed through the participant's outbox)
    ``{"type": "participant_joined", "participant": <participant>}``
    ``{"type": "participant_left", "participant": id, "reason": "left"|...}``
    ``{"type": "media_state", "participant": id, "microphone": b, "camera": b}``
    ``{"type": "screen_share", "participant": id, "on": bool}``
    ``{"type": "slots", "version": n, "slots": [<slot>...]}`` (the whole map)
    ``{"type": "room_closed"}``
    ``{"type": "error", "code": <ErrorCode>, "message": str, ...}``

Shapes
    <slot>: ``{"mid": "5", "kind": "video", "participant": id|null,
    "source": "camera"|"screen"|"microphone"|null}``
    <participant>: ``{"id": id, "microphone": b, "camera": b,
    "screen_share": b, "joined_at": iso8601}``
    <room>: ``{"id": id, "cap": n, "started_at": iso8601|null,
    "screen_share": id|null, "participants": [<participant>...]}``

Errors (``code``): room_full, room_closed, already_joined, not_joined,
bad_message, bad_offer, unsupported_codec, screen_share_busy,
no_screen_sender. ICE candidates are not trickled: aiortc does not trickle,
and the answer carries the server's candidates.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.exceptions import InternalError, InvalidAccessError, OperationError
from aiortc.rtcconfiguration import RTCBundlePolicy

from lotse.media import tap
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
from lotse.media.forwarding import Publication, SlotTrack, Source

logger = logging.getLogger(__name__)

MAX_CAP: Final = 12
Message = dict[str, Any]
Outbox = Callable[[Message], Awaitable[None]]
Listener = Callable[[RoomEvent], object]
Clock = Callable[[], datetime]

_SENDING: Final = ("sendonly", "sendrecv")
_CLOCK_RATES: Final = {"audio": 48000, "video": 90000}


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RoomSettings:
    """How one room behaves; the platform sets ``cap`` per organisation."""

    cap: int = MAX_CAP
    video_codec: str = "VP8"  # every participant must send and receive this one
    keyframe_interval: float = 1.0  # seconds between keyframe requests to one publisher
    close_when_empty: bool = True
    connect_timeout: float = 30.0  # a joined peer that does not connect by then is removed
    # SO_RCVBUF for the server's UDP sockets, None to keep the kernel default.
    # One server socket carries one participant's upload (~80 KB/s), so the
    # usual 208 KB default already absorbs seconds of pause; a larger buffer
    # turns a chronically overloaded process into seconds of delay instead of
    # loss. Raise it only where drops are measured.
    receive_buffer: int | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.cap <= MAX_CAP:
            raise ValueError(f"cap must be between 2 and {MAX_CAP}, not {self.cap}")
        if self.video_codec.upper() not in ("VP8", "H264"):
            raise ValueError(f"unsupported video codec {self.video_codec}")


@dataclass(frozen=True, slots=True)
class ParticipantState:
    id: str
    microphone: bool
    camera: bool
    screen_share: bool
    joined_at: datetime

    def to_message(self) -> Message:
        return {
            "id": self.id,
            "microphone": self.microphone,
            "camera": self.camera,
            "screen_share": self.screen_share,
            "joined_at": self.joined_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class RoomState:
    id: str
    cap: int
    started_at: datetime | None
    screen_share: str | None
    participants: tuple[ParticipantState, ...]
    closed: bool

    def to_message(self) -> Message:
        return {
            "id": self.id,
            "cap": self.cap,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "screen_share": self.screen_share,
            "participants": [p.to_message() for p in self.participants],
        }


@dataclass(frozen=True, slots=True)
class _MLine:
    mid: str
    kind: str
    direction: str


class _Participant:
    """Server-side state of one participant (internal)."""

    def __init__(self, participant_id: str, pc: RTCPeerConnection, outbox: Outbox, joined_at: datetime) -> None:
        self.id = participant_id
        self.pc = pc
        self.joined_at = joined_at
        self.microphone = True
        self.camera = True
        self.screen_share = False
        self.joined = False  # False while the offer/answer is still being worked on
        self.publications: dict[Source, Publication] = {}
        self.slots: list[SlotTrack] = []
        self.slot_version = 0
        self.sent_slots: list[Message] = []
        self.outgoing: asyncio.Queue[Message | None] = asyncio.Queue()
        self.writer: asyncio.Task[None] | None = None
        self.outbox = outbox
        self.watchdog: asyncio.TimerHandle | None = None

    def state(self) -> ParticipantState:
        return ParticipantState(self.id, self.microphone, self.camera, self.screen_share, self.joined_at)

    def slot_map(self) -> list[Message]:
        return [
            {
                "mid": slot.mid,
                "kind": slot.kind,
                "participant": slot.source.participant_id if slot.source else None,
                "source": str(slot.source.source) if slot.source else None,
            }
            for slot in self.slots
        ]


class Room:
    """One call: its participants, their streams and the signalling that moves them."""

    # Slot senders run tap's leaner send loop for forwarded packets; a subclass
    # that puts decoded frames on the slots (a transcoding baseline) turns it off.
    forwarding_sender = True

    def __init__(
        self,
        room_id: str,
        settings: RoomSettings | None = None,
        *,
        clock: Clock = utc_now,
        on_closed: Callable[[Room], None] | None = None,
    ) -> None:
        tap.check_aiortc()
        tap.speed_up_sender_clock()
        self.id = room_id
        self.settings = settings or RoomSettings()
        self.started_at: datetime | None = None
        self.closed = False
        self._clock = clock
        self._on_closed = on_closed
        self._participants: dict[str, _Participant] = {}
        self._listeners: list[Listener] = []
        self._events: asyncio.Queue[RoomEvent] | None = None
        self._dispatcher: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- public API for the embedding platform -----------------------------
    @property
    def participant_ids(self) -> list[str]:
        return [p.id for p in self._participants.values() if p.joined]

    @property
    def screen_sharer(self) -> str | None:
        return next((p.id for p in self._participants.values() if p.screen_share), None)

    def state(self) -> RoomState:
        """Return a snapshot of the room."""
        return RoomState(
            id=self.id,
            cap=self.settings.cap,
            started_at=self.started_at,
            screen_share=self.screen_sharer,
            participants=tuple(p.state() for p in self._participants.values() if p.joined),
            closed=self.closed,
        )

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Deliver every future event to ``listener`` (sync, or returning an awaitable).

        Events are delivered in order by one task per room; a listener that
        returns an awaitable is awaited before the next event. Returns a
        function that unsubscribes.
        """
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    async def handle(self, participant_id: str, message: Mapping[str, Any], outbox: Outbox | None = None) -> list[Message]:
        """Handle one signalling message from ``participant_id``; return the replies to it.

        ``outbox`` is required with ``join``: the room pushes messages for this
        participant through it (in order, from a task of its own).
        """
        try:
            replies = await self._dispatch(participant_id, message, outbox)
        except MediaError as error:
            replies = [error.to_message()]
        request_id = message.get("id") if isinstance(message, Mapping) else None
        if request_id is not None:
            for reply in replies:
                reply["re"] = request_id
        return replies

    async def leave(self, participant_id: str, reason: LeaveReason = LeaveReason.DISCONNECTED) -> bool:
        """Remove a participant (their connection closed, or the platform says so)."""
        participant = self._participants.get(participant_id)
        if participant is None:
            return False
        await self._remove(participant, reason)
        return True

    async def close(self) -> None:
        """End the call for everybody."""
        if self.closed:
            return
        self.closed = True
        for participant in list(self._participants.values()):
            participant.outgoing.put_nowait({"type": "room_closed"})
            await self._remove(participant, LeaveReason.ROOM_CLOSED, closing=True)
        self._emit(RoomClosed(self.id, self._clock(), self.started_at))
        if self._on_closed is not None:
            self._on_closed(self)
        await self._drain_events()

    def stats(self) -> Message:
        """Return forwarding counters (for monitoring and the benchmark)."""
        publications = [pub for p in self._participants.values() for pub in p.publications.values()]
        slots = [slot for p in self._participants.values() for slot in p.slots]
        return {
            "participants": len(self.participant_ids),
            "frames_in": sum(pub.stats.frames for pub in publications),
            "frames_out": sum(slot.stats.forwarded for slot in slots),
            "waited_for_keyframe": sum(slot.stats.waited for slot in slots),
            "overflowed": sum(slot.stats.overflowed for slot in slots),
            "keyframe_requests": sum(pub.keyframes.sent for pub in publications),
            "active_slots": sum(1 for slot in slots if slot.source is not None),
        }

    # -- signalling --------------------------------------------------------
    async def _dispatch(self, participant_id: str, message: Mapping[str, Any], outbox: Outbox | None) -> list[Message]:
        if not isinstance(message, Mapping):
            raise MediaError(ErrorCode.BAD_MESSAGE, "a message is a JSON object")
        kind = message.get("type")
        if kind == "join":
            if outbox is None:
                raise MediaError(ErrorCode.BAD_MESSAGE, "join needs an outbox")
            return [await self._join(participant_id, message, outbox)]
        if kind == "state":
            return [{"type": "state", "room": self.state().to_message()}]
        participant = self._participants.get(participant_id)
        if participant is None or not participant.joined:
            raise MediaError(ErrorCode.NOT_JOINED, "join the room first")
        if kind == "media":
            self._set_media(participant, message)
            return [{"type": "ok"}]
        if kind == "screen_share":
            self._set_screen_share(participant, _bool(message, "on"))
            return [{"type": "ok"}]
        if kind == "leave":
            await self._remove(participant, LeaveReason.LEFT)
            return [{"type": "left"}]
        raise MediaError(ErrorCode.BAD_MESSAGE, f"unknown message type {kind!r}")

    async def _join(self, participant_id: str, message: Mapping[str, Any], outbox: Outbox) -> Message:
        if self.closed:
            raise MediaError(ErrorCode.ROOM_CLOSED, "the call has ended")
        if participant_id in self._participants:
            raise MediaError(ErrorCode.ALREADY_JOINED, "already in the call")
        if len(self._participants) >= self.settings.cap:
            raise MediaError(ErrorCode.ROOM_FULL, "the call is full", cap=self.settings.cap)
        offer = message.get("sdp")
        if not isinstance(offer, str):
            raise MediaError(ErrorCode.BAD_MESSAGE, "join needs the offer as 'sdp'")
        lines = _parse_offer(offer)
        senders = _sender_mids(lines, message.get("senders"))
        microphone = _bool(message, "microphone", default=True)
        camera = _bool(message, "camera", default=True)

        # Take the seat before the first await, so concurrent joins respect the cap.
        # All m-lines share one transport. The transceivers are created before
        # the offer is applied, and under aiortc's default (balanced) policy it
        # would re-bundle only the first one of each kind onto the offer's
        # transport, leaving the others on a transport that never connects.
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        participant = _Participant(participant_id, pc, outbox, self._clock())
        participant.microphone, participant.camera = microphone, camera
        self._participants[participant_id] = participant
        try:
            answer = await self._negotiate(participant, lines, senders, offer)
        except BaseException:
            del self._participants[participant_id]
            await pc.close()
            raise
        participant.joined = True
        participant.writer = self._spawn(self._write(participant))
        if self.started_at is None:
            self.started_at = participant.joined_at
        participant.watchdog = asyncio.get_running_loop().call_later(
            self.settings.connect_timeout, self._connect_timed_out, participant
        )
        self._emit(
            ParticipantJoined(
                self.id, participant_id, participant.joined_at, microphone, camera, len(self.participant_ids)
            )
        )
        self._broadcast(
            {"type": "participant_joined", "participant": participant.state().to_message()},
            exclude=participant,
        )
        self._reconcile(exclude=participant)
        return {
            "type": "joined",
            "sdp": answer,
            "participant": participant_id,
            "room": self.state().to_message(),
            "slots": participant.sent_slots,
            "version": participant.slot_version,
        }

    async def _negotiate(
        self, participant: _Participant, lines: list[_MLine], senders: dict[Source, str], offer: str
    ) -> str:
        pc = participant.pc
        by_mid = {mid: source for source, mid in senders.items()}
        # Transceivers are created in the offer's order before applying it, so
        # aiortc matches them to the m-lines and our codec preferences apply.
        transceivers: list[tuple[_MLine, RTCRtpTransceiver]] = []
        for line in lines:
            if line.mid in by_mid:
                transceiver = pc.addTransceiver(line.kind, direction="recvonly")
            elif line.direction == "recvonly":
                slot = SlotTrack(line.kind, line.mid, _CLOCK_RATES[line.kind])
                slot.subscriber = participant.id
                participant.slots.append(slot)
                transceiver = pc.addTransceiver(slot, direction="sendonly")
            else:
                transceiver = pc.addTransceiver(line.kind, direction="inactive")
            transceiver.setCodecPreferences(self._codecs(line.kind))
            transceivers.append((line, transceiver))
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        except (OperationError, InternalError, InvalidAccessError, ValueError) as error:
            if "codec" in str(error).lower() or "parameters" in str(error).lower():
                raise MediaError(
                    ErrorCode.UNSUPPORTED_CODEC,
                    f"offer {self.settings.video_codec} video and Opus audio",
                ) from error
            raise MediaError(ErrorCode.BAD_OFFER, f"the offer was refused: {error}") from error
        receivers: list[RTCRtpReceiver] = []
        for line, transceiver in transceivers:
            if transceiver.mid != line.mid:
                raise MediaError(ErrorCode.BAD_OFFER, "the offer's m-lines could not be matched")
            sending = by_mid.get(line.mid)
            if sending is not None:
                participant.publications[sending] = self._publish(participant, sending, transceiver.receiver)
                receivers.append(transceiver.receiver)
            elif isinstance(transceiver.sender.track, SlotTrack):
                tap.hook_keyframe_requests(transceiver.sender, transceiver.sender.track.request_keyframe)
                if self.forwarding_sender:
                    tap.install_forwarding_sender(transceiver.sender)
        tap.share_bandwidth_estimator(receivers)
        tap.route_by_mid(pc)
        participant.publications.get(Source.MICROPHONE, _NoPublication()).set_enabled(participant.microphone)
        participant.publications.get(Source.CAMERA, _NoPublication()).set_enabled(participant.camera)
        if Source.SCREEN in participant.publications:
            participant.publications[Source.SCREEN].set_enabled(False)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            if pc.connectionState == "connected":
                if participant.watchdog is not None:
                    participant.watchdog.cancel()
                    participant.watchdog = None
                if self.settings.receive_buffer:
                    tap.enlarge_receive_buffers(pc, self.settings.receive_buffer)
            elif pc.connectionState == "failed" and self._participants.get(participant.id) is participant:
                self._spawn(self._remove(participant, LeaveReason.DISCONNECTED))

        await pc.setLocalDescription(await pc.createAnswer())
        tap.read_in_batches(pc)
        if self.settings.receive_buffer:
            tap.enlarge_receive_buffers(pc, self.settings.receive_buffer)
        description = pc.localDescription
        assert description is not None
        return str(description.sdp)

    def _codecs(self, kind: str) -> list[Any]:
        capabilities = RTCRtpReceiver.getCapabilities(kind)
        assert capabilities is not None
        wanted = "opus" if kind == "audio" else self.settings.video_codec.lower()
        chosen = [c for c in capabilities.codecs if c.mimeType.split("/")[1].lower() in (wanted, "rtx")]
        if kind == "video" and wanted == "h264":
            # Forwarded H.264 must keep its profile; offer only the constrained baseline ones.
            chosen = [c for c in chosen if c.mimeType.lower() == "video/rtx" or c.parameters.get("packetization-mode") == "1"]
        return chosen

    def _publish(self, participant: _Participant, source: Source, receiver: RTCRtpReceiver) -> Publication:
        holder: list[tap.ReceiveTap] = []
        publication = Publication(
            participant.id,
            source,
            lambda: holder[0].request_keyframe(),
            keyframe_interval=self.settings.keyframe_interval,
        )
        holder.append(tap.install_receiver_tap(receiver, publication.on_frame))
        return publication

    def _set_media(self, participant: _Participant, message: Mapping[str, Any]) -> None:
        microphone = _bool(message, "microphone", default=participant.microphone)
        camera = _bool(message, "camera", default=participant.camera)
        if (microphone, camera) == (participant.microphone, participant.camera):
            return
        participant.microphone, participant.camera = microphone, camera
        participant.publications.get(Source.MICROPHONE, _NoPublication()).set_enabled(microphone)
        participant.publications.get(Source.CAMERA, _NoPublication()).set_enabled(camera)
        self._emit(MediaStateChanged(self.id, participant.id, self._clock(), microphone, camera))
        self._broadcast(
            {"type": "media_state", "participant": participant.id, "microphone": microphone, "camera": camera}
        )

    def _set_screen_share(self, participant: _Participant, on: bool) -> None:
        if on == participant.screen_share:
            return
        publication = participant.publications.get(Source.SCREEN)
        if on:
            if publication is None:
                raise MediaError(ErrorCode.NO_SCREEN_SENDER, "the offer had no screen-share sender")
            sharer = self.screen_sharer
            if sharer is not None:
                raise MediaError(ErrorCode.SCREEN_SHARE_BUSY, "someone else is sharing a screen", participant=sharer)
        participant.screen_share = on
        if publication is not None:
            publication.set_enabled(on)
        at = self._clock()
        self._emit(ScreenShareStarted(self.id, participant.id, at) if on else ScreenShareStopped(self.id, participant.id, at))
        self._broadcast({"type": "screen_share", "participant": participant.id, "on": on})
        self._reconcile()

    async def _remove(self, participant: _Participant, reason: LeaveReason, *, closing: bool = False) -> None:
        if self._participants.get(participant.id) is not participant:
            return
        del self._participants[participant.id]
        if participant.watchdog is not None:
            participant.watchdog.cancel()
        was_joined = participant.joined
        participant.joined = False
        if participant.screen_share:
            participant.screen_share = False
            self._emit(ScreenShareStopped(self.id, participant.id, self._clock()))
            self._broadcast({"type": "screen_share", "participant": participant.id, "on": False})
        for publication in participant.publications.values():
            publication.close()
        for slot in participant.slots:
            slot.assign(None)
        if was_joined:
            self._emit(ParticipantLeft(self.id, participant.id, self._clock(), reason, len(self.participant_ids)))
            self._broadcast({"type": "participant_left", "participant": participant.id, "reason": str(reason)})
            if not closing:
                self._reconcile()
        participant.outgoing.put_nowait(None)
        await participant.pc.close()
        if participant.writer is not None and participant.writer is not asyncio.current_task():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(participant.writer), 2.0)
        if not closing and not self._participants and self.settings.close_when_empty:
            await self.close()

    def _connect_timed_out(self, participant: _Participant) -> None:
        participant.watchdog = None
        if self._participants.get(participant.id) is participant and participant.pc.connectionState != "connected":
            logger.warning("participant %s did not connect in time", participant.id)
            self._spawn(self._remove(participant, LeaveReason.DISCONNECTED))

    # -- slot assignment ---------------------------------------------------
    def _reconcile(self, exclude: _Participant | None = None) -> None:
        """Point every subscriber's slots at the streams it should receive.

        Assignments are stable: a stream keeps its slot while it is wanted. A
        screen share is placed before cameras so it gets a slot when slots
        run short. Subscribers whose map changed get a ``slots`` message
        (except ``exclude``, whose map goes into its join reply).
        """
        members = [p for p in self._participants.values() if p.joined]
        for subscriber in members:
            wanted: list[Publication] = []
            others = [p for p in members if p is not subscriber]
            for other in others:
                if other.screen_share and Source.SCREEN in other.publications:
                    wanted.append(other.publications[Source.SCREEN])
            for other in others:
                for source in (Source.MICROPHONE, Source.CAMERA):
                    if source in other.publications:
                        wanted.append(other.publications[source])
            wanted_set = set(wanted)
            for slot in subscriber.slots:
                if slot.source is not None and slot.source not in wanted_set:
                    slot.assign(None)
            assigned = {slot.source for slot in subscriber.slots}
            for publication in wanted:
                if publication in assigned:
                    continue
                free = next(
                    (s for s in subscriber.slots if s.source is None and s.kind == publication.kind),
                    None,
                )
                if free is None:
                    logger.warning("no free %s slot for %s in %s", publication.kind, publication.participant_id, subscriber.id)
                    continue
                free.assign(publication)
            # Compared with what the client was last told: a leaving
            # publisher's slots were already emptied when it closed.
            slot_map = subscriber.slot_map()
            if slot_map != subscriber.sent_slots:
                subscriber.sent_slots = slot_map
                subscriber.slot_version += 1
                if subscriber is not exclude:
                    subscriber.outgoing.put_nowait(
                        {"type": "slots", "version": subscriber.slot_version, "slots": slot_map}
                    )

    # -- outgoing messages and events ----------------------------------------
    def _broadcast(self, message: Message, exclude: _Participant | None = None) -> None:
        for participant in self._participants.values():
            if participant.joined and participant is not exclude:
                participant.outgoing.put_nowait(dict(message))

    async def _write(self, participant: _Participant) -> None:
        while True:
            message = await participant.outgoing.get()
            if message is None:
                return
            try:
                await participant.outbox(message)
            except Exception:
                logger.info("outbox of %s failed; removing them", participant.id, exc_info=True)
                self._spawn(self._remove(participant, LeaveReason.DISCONNECTED))
                return

    def _emit(self, event: RoomEvent) -> None:
        if self._events is None:
            self._events = asyncio.Queue()
            self._dispatcher = self._spawn(self._dispatch_events(self._events))
        self._events.put_nowait(event)

    async def _dispatch_events(self, events: asyncio.Queue[RoomEvent]) -> None:
        while True:
            event = await events.get()
            for listener in list(self._listeners):
                try:
                    result = listener(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("room event listener failed on %s", event)
            events.task_done()

    async def _drain_events(self) -> None:
        if self._events is not None:
            await self._events.join()
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


class _NoPublication:
    def set_enabled(self, enabled: bool) -> None:
        pass


def _bool(message: Mapping[str, Any], key: str, default: bool | None = None) -> bool:
    value = message.get(key, default)
    if not isinstance(value, bool):
        raise MediaError(ErrorCode.BAD_MESSAGE, f"{key!r} must be true or false")
    return value


def _parse_offer(offer: str) -> list[_MLine]:
    try:
        description = aiortc_sdp.SessionDescription.parse(offer)
    except Exception as error:  # aiortc raises assorted errors on malformed SDP
        raise MediaError(ErrorCode.BAD_OFFER, "the offer is not valid SDP") from error
    bundle = next((group for group in description.group if group.semantic == "BUNDLE"), None)
    bundled = set(bundle.items) if bundle is not None else set()
    lines: list[_MLine] = []
    for media in description.media:
        if media.kind not in ("audio", "video"):
            raise MediaError(ErrorCode.BAD_OFFER, "offer audio and video only (no data channels)")
        mid = media.rtp.muxId
        if not mid:
            raise MediaError(ErrorCode.BAD_OFFER, "every m-line needs a mid")
        if mid not in bundled:
            raise MediaError(ErrorCode.BAD_OFFER, "bundle every m-line (a=group:BUNDLE)")
        lines.append(_MLine(mid, media.kind, media.direction or "sendrecv"))
    if not lines:
        raise MediaError(ErrorCode.BAD_OFFER, "the offer has no media")
    return lines


def _sender_mids(lines: list[_MLine], declared: object) -> dict[Source, str]:
    """Return which m-line carries which source, declared by the client or inferred."""
    by_mid = {line.mid: line for line in lines}
    senders: dict[Source, str] = {}
    if declared is not None:
        if not isinstance(declared, Mapping):
            raise MediaError(ErrorCode.BAD_MESSAGE, "'senders' maps sources to mids")
        for name, mid in declared.items():
            try:
                source = Source(name)
            except ValueError:
                raise MediaError(ErrorCode.BAD_MESSAGE, f"unknown source {name!r}") from None
            line = by_mid.get(mid) if isinstance(mid, str) else None
            if line is None or line.kind != source.kind or line.direction not in _SENDING:
                raise MediaError(ErrorCode.BAD_OFFER, f"{name} must name a sending {source.kind} m-line")
            senders[source] = mid
        return senders
    video = iter((Source.CAMERA, Source.SCREEN))
    for line in lines:
        if line.direction not in _SENDING:
            continue
        if line.kind == "audio" and Source.MICROPHONE not in senders:
            senders[Source.MICROPHONE] = line.mid
        elif line.kind == "video":
            video_source = next(video, None)
            if video_source is not None:
                senders[video_source] = line.mid
    return senders
