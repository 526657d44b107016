"""The forwarding core: incoming streams fanned out to receive slots, never decoded.

A :class:`Publication` is one incoming stream of one participant (microphone,
camera or screen). Its receiver is tapped (see :mod:`lotse.media.tap`) so
complete encoded frames arrive on the event loop; each frame is handed to the
:class:`SlotTrack` of every subscriber currently pointed at it. A slot track is
what an aiortc sender reads: its ``recv()`` returns encoded packets
(:class:`lotse.media.tap.ForwardedPacket`, or ``av.Packet`` for H.264), so
the sender only re-packetises them.

A slot keeps one outgoing RTP stream for the whole call while the server
points it at different publications; aiortc's sender numbers packets itself,
and the slot rebases timestamps when its source changes so the subscriber's
jitter buffer sees one continuous stream. A video slot that gets a new source
(or lost frames) drops frames until a keyframe and asks the publisher for one,
again while it keeps waiting. Keyframe requests reach the publisher at most
about once a second (:class:`KeyframeRequester`); a request that comes too
early is deferred, not lost.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from lotse.media.tap import EncodedFrame, ForwardedPacket

logger = logging.getLogger(__name__)

# Frames queued for one slot before the slot drops its backlog (and, for
# video, resynchronises on a keyframe): a third of a second of video, half a
# second of audio. A slot only queues when its sender falls behind; past this
# a late picture is worse than a skipped one.
VIDEO_QUEUE_LIMIT = 10
AUDIO_QUEUE_LIMIT = 25


class Source(StrEnum):
    """What a participant sends."""

    MICROPHONE = "microphone"
    CAMERA = "camera"
    SCREEN = "screen"

    @property
    def kind(self) -> str:
        return "audio" if self is Source.MICROPHONE else "video"


class KeyframeRequester:
    """Send keyframe requests to one publisher, at most one per ``interval``.

    A request within the interval is deferred to its end rather than
    dropped, so a waiting subscriber is never left without one; a keyframe
    that passes through in the meantime cancels the deferred request.
    """

    def __init__(self, send: Callable[[], bool], interval: float = 1.0) -> None:
        self._send = send
        self._interval = interval
        self._last = -float("inf")
        self._deferred: asyncio.TimerHandle | None = None
        self._unsent = False
        self.sent = 0

    def request(self) -> None:
        """Ask for a keyframe now, or as soon as the rate limit allows."""
        if self._deferred is not None:
            return
        now = time.monotonic()
        wait = self._last + self._interval - now
        if wait <= 0:
            self._fire()
        else:
            self._deferred = asyncio.get_running_loop().call_later(wait, self._fire)

    def retry_unsent(self) -> None:
        """Send a request that failed because the stream's SSRC was not known yet."""
        if self._unsent:
            self.request()

    def keyframe_seen(self) -> None:
        """Forget a deferred request: a keyframe has just gone through."""
        self._unsent = False
        if self._deferred is not None:
            self._deferred.cancel()
            self._deferred = None

    def close(self) -> None:
        self.keyframe_seen()

    def _fire(self) -> None:
        self._deferred = None
        if self._send():
            self._unsent = False
            self._last = time.monotonic()
            self.sent += 1
        else:
            self._unsent = True


@dataclass
class PublicationStats:
    """Counters of one publication, for tests, the benchmark and monitoring."""

    frames: int = 0
    keyframes: int = 0
    bytes: int = 0
    dropped_while_off: int = 0


class Publication:
    """One incoming stream of one participant, fanned out to slot tracks."""

    def __init__(
        self,
        participant_id: str,
        source: Source,
        request_keyframe: Callable[[], bool],
        *,
        keyframe_interval: float = 1.0,
    ) -> None:
        self.participant_id = participant_id
        self.source = source
        self.kind = source.kind
        self.enabled = True
        self.subscribers: set[SlotTrack] = set()
        self.stats = PublicationStats()
        self.keyframes = KeyframeRequester(request_keyframe, keyframe_interval)

    def on_frame(self, frame: EncodedFrame) -> None:
        """Hand one tapped frame to every subscribed slot."""
        stats = self.stats
        if not self.enabled:
            # Muted or camera off: enforced here, whatever the client sends.
            stats.dropped_while_off += 1
            return
        stats.frames += 1
        stats.bytes += len(frame.data)
        if self.kind == "video":
            if frame.keyframe:
                stats.keyframes += 1
                self.keyframes.keyframe_seen()
            else:
                self.keyframes.retry_unsent()
        for slot in self.subscribers:
            slot.feed(frame)

    def request_keyframe(self) -> None:
        if self.kind == "video":
            self.keyframes.request()

    def set_enabled(self, enabled: bool) -> None:
        """Start or stop forwarding; on restart every video subscriber waits for a keyframe."""
        if enabled == self.enabled:
            return
        self.enabled = enabled
        if enabled and self.kind == "video":
            for slot in self.subscribers:
                slot.resync()
            self.request_keyframe()

    def close(self) -> None:
        self.keyframes.close()
        for slot in list(self.subscribers):
            slot.assign(None)


@dataclass
class SlotStats:
    """Counters of one slot track."""

    forwarded: int = 0
    waited: int = 0  # frames dropped while waiting for a keyframe
    overflowed: int = 0
    sources: int = 0
    last_forwarded: float = field(default=0.0)


class SlotTrack(MediaStreamTrack):
    """A receive slot of one subscriber: the track its server-side sender reads.

    ``recv()`` returns encoded packets; aiortc's sender re-packetises them
    without encoding.
    """

    def __init__(self, kind: str, mid: str, clock_rate: int) -> None:
        super().__init__()
        self.kind = kind
        self.mid = mid
        self.clock_rate = clock_rate
        self.source: Publication | None = None
        self.subscriber: str | None = None  # the participant this slot sends to (set by the room)
        self.stats = SlotStats()
        self._queue: collections.deque[ForwardedPacket | av.Packet[Any]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self._limit = VIDEO_QUEUE_LIMIT if kind == "video" else AUDIO_QUEUE_LIMIT
        # Rebasing: out_pts = in_pts + offset, re-chosen when the source changes.
        self._offset = 0
        self._rebase = True
        self._last_pts: int | None = None
        self._last_time = 0.0
        # A minimal step between the last frame of one source and the first
        # of the next: 20 ms of audio or one 30 fps video frame.
        self._min_step = clock_rate // 50 if kind == "audio" else clock_rate // 30
        self._waiting_keyframe = kind == "video"
        self._asked = 0.0
        # Until aiortc's sender first asks for a frame (the connection is not
        # up yet) nothing is queued: a backlog would reach the subscriber late.
        self._reading = False

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._waiting_keyframe and self.source is not None

    def assign(self, publication: Publication | None) -> None:
        """Point this slot at ``publication`` (or at nothing)."""
        if publication is self.source:
            return
        if self.source is not None:
            self.source.subscribers.discard(self)
        self.source = publication
        self._queue.clear()
        self._rebase = True
        if publication is not None:
            if publication.kind != self.kind:
                raise ValueError(f"cannot put a {publication.kind} stream in a {self.kind} slot")
            self.stats.sources += 1
            publication.subscribers.add(self)
            self.resync()

    def resync(self) -> None:
        """Drop frames until the next keyframe, and ask for one."""
        if self.kind != "video":
            return
        self._waiting_keyframe = True
        self._asked = time.monotonic()
        if self.source is not None and self._reading:
            self.source.request_keyframe()

    def request_keyframe(self) -> None:
        """The subscriber lost a picture (PLI/FIR): ask the current publisher."""
        if self.source is not None:
            self.source.request_keyframe()

    def feed(self, frame: EncodedFrame) -> None:
        """Queue one frame from the current source for the sender."""
        stats = self.stats
        if not self._reading:
            return
        if self._waiting_keyframe:
            if not frame.keyframe:
                stats.waited += 1
                now = frame.received_at
                if now - self._asked >= 1.0 and self.source is not None:
                    self._asked = now
                    self.source.request_keyframe()
                return
            self._waiting_keyframe = False
        if self._rebase:
            self._rebase = False
            if self._last_pts is None:
                self._offset = -frame.pts
            else:
                elapsed = int((frame.received_at - self._last_time) * self.clock_rate)
                self._offset = self._last_pts + max(self._min_step, elapsed) - frame.pts
        pts = frame.pts + self._offset
        if self._last_pts is not None and pts <= self._last_pts and self.kind == "audio":
            return  # a reordered audio packet across a rebase: not worth a glitch
        self._last_pts = pts
        self._last_time = frame.received_at
        if len(self._queue) >= self._limit:
            # The sender is not keeping up (or the connection stalls).
            stats.overflowed += len(self._queue)
            self._queue.clear()
            if self.kind == "video":
                self.resync()
                return
        self._queue.append(frame.forward(pts))
        stats.forwarded += 1
        stats.last_forwarded = frame.received_at
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def recv(self) -> ForwardedPacket | av.Packet[Any]:  # type: ignore[override]
        if not self._reading:
            self._reading = True
            self.resync()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def stop(self) -> None:
        self.assign(None)
        super().stop()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
