"""The one place that reaches into aiortc's internals, so forwarding never decodes.

aiortc (pinned to 1.16.0 in pyproject.toml) has no public access to encoded
frames on the receive side: ``RTCRtpReceiver`` reassembles RTP packets in a
private ``JitterBuffer`` and hands complete frames to a private
``queue.Queue`` consumed by a decoder thread. The maintainers declined an
option to skip decoding, so this module swaps those two private objects:

* the jitter buffer is replaced by :class:`MarkerJitterBuffer` (video) or
  :class:`AudioPassThrough` (audio). aiortc's buffer only releases a frame
  when the first packet of the *next* frame arrives and ignores the RTP
  marker bit, which adds one frame interval per hop (33 ms at 30 fps, far
  more for a low-rate screen share); ours completes a frame on its marker
  packet. For audio aiortc prefetches four packets (80 ms); one Opus packet
  is one frame, so ours releases each packet at once.
* the decoder queue is replaced by a sink whose ``put()`` turns each complete
  frame into an :class:`EncodedFrame` (with keyframe detection) and calls back
  on the event loop. Its ``get()`` returns ``None`` at once, so the decoder
  thread aiortc starts in ``receive()`` exits immediately.

It also shares one bandwidth estimator (REMB) between the video receivers of
a peer connection (stock aiortc keeps one per receiver, which starved a
browser sending camera and screen), turns keyframe requests that reach a
sender of forwarded packets into a callback (aiortc would only set a flag for
an encoder that is never used), sends PLIs for an incoming stream, and raises
the UDP receive buffer of a connection's sockets.

:func:`check_aiortc` and ``tests/media/test_tap.py`` fail loudly when the
installed aiortc no longer has the shape this module relies on. Everything
here can go once aiortc offers encoded-frame access (an "encoded transform"
API) and marker-bit frame completion.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import functools
import logging
import socket
import struct
import time
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Final

import aiortc
import av
from aioice.ice import StunProtocol
from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc import clock as aiortc_clock
from aiortc import rtcrtpsender as aiortc_rtcrtpsender
from aiortc.codecs import get_encoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket
from aiortc.utils import random32

from lotse.media.codecs import is_keyframe, starts_frame

logger = logging.getLogger(__name__)

AIORTC_VERSION: Final = "1.16.0"

# Private attribute names (name-mangled) this module replaces or reads.
_RECEIVER_JITTER_BUFFER: Final = "_RTCRtpReceiver__jitter_buffer"
_RECEIVER_DECODER_QUEUE: Final = "_RTCRtpReceiver__decoder_queue"
_RECEIVER_DECODER_THREAD: Final = "_RTCRtpReceiver__decoder_thread"
_RECEIVER_ESTIMATOR: Final = "_RTCRtpReceiver__remote_bitrate_estimator"
_RECEIVER_KIND: Final = "_RTCRtpReceiver__kind"
_RECEIVER_CODECS: Final = "_RTCRtpReceiver__codecs"
_RECEIVER_PRIVATE: Final = (
    _RECEIVER_JITTER_BUFFER,
    _RECEIVER_DECODER_QUEUE,
    _RECEIVER_DECODER_THREAD,
    _RECEIVER_ESTIMATOR,
    _RECEIVER_KIND,
    _RECEIVER_CODECS,
)

# Packets older than the buffer's origin by this much mean the sender restarted
# its sequence numbers (aiortc uses the same value).
MAX_MISORDER: Final = 100
# A hole at the head of the video buffer is given up on once this many newer
# packets have arrived behind it (about half a second of 640x480 video): the
# retransmission did not come, a keyframe will.
MAX_HOLE: Final = 64


class TapShapeError(RuntimeError):
    """The installed aiortc does not have the internals the tap relies on."""


def check_aiortc() -> None:
    """Raise :class:`TapShapeError` unless the installed aiortc is the pinned one."""
    if aiortc.__version__ != AIORTC_VERSION:
        raise TapShapeError(
            f"lotse.media.tap is written against aiortc {AIORTC_VERSION}, "
            f"found {aiortc.__version__}; re-check the tap and tests/media/test_tap.py"
        )
    for cls, name in (
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_handle_rtcp_packet"),
    ):
        if not callable(getattr(cls, name, None)):
            raise TapShapeError(f"aiortc {cls.__name__}.{name} is gone")


@dataclass(frozen=True, slots=True)
class EncodedFrame:
    """One complete encoded frame taken off a receiver, never decoded.

    ``pts`` counts in ``1/clock_rate`` units from the first frame of the
    stream, unwrapped (it does not jump at the 32-bit RTP wrap).
    """

    data: bytes
    pts: int
    clock_rate: int
    keyframe: bool
    ssrc: int
    received_at: float  # time.monotonic() when the frame became complete

    codec: str = ""  # the codec's name as negotiated ("VP8", "H264", "opus")

    def to_packet(self, pts: int | None = None) -> av.Packet[Any]:
        """Return an ``av.Packet`` that aiortc's sender will only re-packetise."""
        packet = av.Packet(self.data)
        packet.pts = self.pts if pts is None else pts
        packet.time_base = _time_base(self.clock_rate)
        return packet

    def forward(self, pts: int) -> ForwardedPacket | av.Packet[Any]:
        """Return what a slot hands aiortc's sender: the frame's bytes at ``pts``, never copied.

        aiortc's VP8 and Opus packers only read ``bytes(packet)``, ``pts`` and
        ``time_base``, so a small object does instead of an ``av.Packet`` per
        subscriber (which copies the frame and makes a new ``Fraction`` each
        time its ``time_base`` is read). The H.264 packer insists on an
        ``av.Packet``.
        """
        if self.codec.upper() == "H264":
            return self.to_packet(pts)
        return ForwardedPacket(self.data, pts, _time_base(self.clock_rate), self.received_at)


class ForwardedPacket:
    """The part of ``av.Packet`` aiortc's VP8 and Opus packers read, and when the frame arrived."""

    __slots__ = ("_data", "pts", "received_at", "time_base")

    def __init__(self, data: bytes, pts: int, time_base: fractions.Fraction, received_at: float = 0.0) -> None:
        self._data = data
        self.pts = pts
        self.time_base = time_base
        self.received_at = received_at

    def __bytes__(self) -> bytes:
        return self._data


class DelayHistogram:
    """How long forwarded frames spent in this process: from complete to handed to the kernel.

    Counted in 0.25 ms buckets up to 250 ms (the last bucket takes the rest),
    so recording is one subtraction and one increment per forwarded frame.
    """

    BUCKET: Final = 0.00025
    BUCKETS: Final = 1000

    def __init__(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.total = 0

    def add(self, seconds: float) -> None:
        index = int(seconds / self.BUCKET)
        self.counts[index if index < self.BUCKETS else self.BUCKETS] += 1
        self.total += 1

    def percentile_ms(self, q: float) -> float | None:
        """Return the upper edge of the bucket holding the ``q`` quantile (None when empty)."""
        if not self.total:
            return None
        rank = q * self.total
        seen = 0
        for index, count in enumerate(self.counts):
            seen += count
            if seen >= rank and count:
                return round((index + 1) * self.BUCKET * 1000, 2)
        return round((self.BUCKETS + 1) * self.BUCKET * 1000, 2)

    def reset(self) -> None:
        self.counts = [0] * (self.BUCKETS + 1)
        self.total = 0


# Every forwarding sender of this process records into this one (the standalone
# server reports and resets it with its statistics).
forwarding_delay = DelayHistogram()

# Called as ``frame_sent(sender, packet, now)`` once a forwarding sender has
# handed the last packet of a frame that carries ``received_at`` to the
# kernel. None (the default) outside measurements: the benchmark sets it to
# break a hop's latency down per frame (``python -m lotse.media.server --trace-frames``).
frame_sent: Callable[[Any, Any, float], None] | None = None


@functools.lru_cache(maxsize=8)
def _time_base(clock_rate: int) -> fractions.Fraction:
    return fractions.Fraction(1, clock_rate)


class _Assembled:
    """A frame as the buffers hand it over: payload, raw RTP timestamp, whether its start is known."""

    __slots__ = ("clean", "data", "ssrc", "timestamp")

    def __init__(self, data: bytes, timestamp: int, ssrc: int, clean: bool) -> None:
        self.data = data
        self.timestamp = timestamp
        self.ssrc = ssrc
        self.clean = clean


class _FrameBatch(JitterFrame):
    """What our buffers return to aiortc: one or more complete frames.

    aiortc's receiver takes at most one frame per packet and rewrites its
    ``timestamp``; a retransmission that fills a hole can complete several,
    so the batch carries them all and the sink ignores aiortc's timestamp.
    """

    def __init__(self, frames: list[_Assembled]) -> None:
        super().__init__(data=b"", timestamp=frames[0].timestamp)
        self.frames = frames


def _seq_delta(a: int, b: int) -> int:
    """Return ``a - b`` for 16-bit sequence numbers."""
    return (a - b) & 0xFFFF


class MarkerJitterBuffer:
    """Reassemble video frames and release each one on its marker packet.

    Same contract as aiortc's ``JitterBuffer.add``: returns ``(pli_flag,
    frame_or_None)``. A frame is released when its packets from the frame's
    first to its marker packet are all present (or, for senders that do not
    set the marker, when the next frame's first packet arrives). A frame
    whose first packet is not known to start a frame (the first one after
    start-up or after a reset) is marked unclean and dropped by the sink.
    """

    def __init__(self, capacity: int = 512, codec_name: Callable[[int], str | None] | None = None) -> None:
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of 2")
        self._capacity = capacity
        self._origin: int | None = None
        self._newest = 0
        self._packets: list[RtpPacket | None] = [None] * capacity
        self._start_known = False
        self._codec_name = codec_name

    @property
    def capacity(self) -> int:
        return self._capacity

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        pli = False
        seq = packet.sequence_number
        if self._origin is None:
            self._reset(seq)
        else:
            delta = _seq_delta(seq, self._origin)
            misorder = _seq_delta(self._origin, seq)
            if misorder < delta:
                if misorder < MAX_MISORDER:
                    return False, None  # late duplicate or retransmission of a released frame
                self._reset(seq)
                pli = True
            elif delta >= self._capacity:
                self._reset(seq)
                pli = True
        origin = self._origin
        assert origin is not None
        self._packets[seq % self._capacity] = packet
        newest = _seq_delta(self._newest, origin)
        if newest >= 0x8000 or _seq_delta(seq, origin) > newest:
            self._newest = seq  # (the old newest may have been released already)
        if self._packets[origin % self._capacity] is None and _seq_delta(self._newest, origin) > MAX_HOLE:
            self._skip_hole()
            pli = True
        frames = self._collect()
        return pli, (_FrameBatch(frames) if frames else None)

    def _reset(self, seq: int) -> None:
        self._packets = [None] * self._capacity
        self._origin = seq
        self._newest = seq
        self._start_known = False

    def _skip_hole(self) -> None:
        assert self._origin is not None
        while self._packets[self._origin % self._capacity] is None:
            self._origin = (self._origin + 1) & 0xFFFF
        self._start_known = False

    def _starts_frame(self, packet: RtpPacket) -> bool:
        name = self._codec_name(packet.payload_type) if self._codec_name else None
        return name is not None and starts_frame(name, packet.payload)

    def _collect(self) -> list[_Assembled]:
        frames: list[_Assembled] = []
        packets = self._packets
        capacity = self._capacity
        while True:
            origin = self._origin
            assert origin is not None
            parts: list[bytes] = []
            timestamp = -1
            ssrc = 0
            end = 0
            for count in range(capacity):
                packet = packets[(origin + count) % capacity]
                if packet is None:
                    break
                if count == 0:
                    timestamp = packet.timestamp
                    ssrc = packet.ssrc
                    if not self._start_known:
                        self._start_known = self._starts_frame(packet)
                elif packet.timestamp != timestamp:
                    end = count  # the sender did not set the marker
                    break
                parts.append(packet._data)  # type: ignore[attr-defined]
                if packet.marker:
                    end = count + 1
                    break
            if not end:
                return frames
            frames.append(_Assembled(b"".join(parts), timestamp, ssrc, self._start_known))
            for count in range(end):
                packets[(origin + count) % capacity] = None
            self._origin = (origin + end) & 0xFFFF
            self._start_known = True


class AudioPassThrough:
    """Release each audio packet at once: one Opus packet is one frame.

    Late and duplicate packets are dropped; lost ones are left to the
    subscriber's packet-loss concealment, as any forwarding unit does.
    """

    def __init__(self) -> None:
        self._last: int | None = None

    def add(self, packet: RtpPacket) -> tuple[bool, JitterFrame | None]:
        seq = packet.sequence_number
        if self._last is not None and not 0 < _seq_delta(seq, self._last) < 0x8000:
            return False, None
        self._last = seq
        data: bytes = packet._data  # type: ignore[attr-defined]
        return False, _FrameBatch([_Assembled(data, packet.timestamp, packet.ssrc, True)])


class _TimestampUnwrapper:
    """Turn 32-bit RTP timestamps into a monotonic count from the first one."""

    __slots__ = ("_last", "_pts")

    def __init__(self) -> None:
        self._last: int | None = None
        self._pts = 0

    def unwrap(self, timestamp: int) -> int:
        if self._last is not None:
            delta = (timestamp - self._last) & 0xFFFFFFFF
            if delta >= 0x80000000:
                delta -= 0x100000000
            self._pts += delta
        self._last = timestamp
        return self._pts


class ReceiveTap:
    """Stands in for a receiver's decoder queue and hands on encoded frames.

    Created by :func:`install_receiver_tap`; ``put`` and ``get`` are what
    aiortc calls on the object it believes is a ``queue.Queue``.
    """

    def __init__(self, receiver: RTCRtpReceiver, kind: str, on_frame: Callable[[EncodedFrame], None]) -> None:
        self.receiver = receiver
        self.kind = kind
        self.on_frame = on_frame
        self.ssrc: int | None = None
        self.frames = 0
        self.dropped = 0
        self.ended = False
        self._unwrapper = _TimestampUnwrapper()
        self._tasks: set[asyncio.Future[None]] = set()

    # -- the queue.Queue surface aiortc uses ------------------------------
    def put(self, item: tuple[Any, JitterFrame] | None) -> None:
        if item is None:
            self.ended = True
            return
        codec, batch = item
        assert isinstance(batch, _FrameBatch)
        clock_rate: int = codec.clockRate
        name: str = codec.name
        now = time.monotonic()
        for frame in batch.frames:
            self.ssrc = frame.ssrc
            pts = self._unwrapper.unwrap(frame.timestamp)
            if not frame.clean:
                self.dropped += 1
                continue
            keyframe = self.kind == "audio" or is_keyframe(name, frame.data)
            self.frames += 1
            try:
                self.on_frame(EncodedFrame(frame.data, pts, clock_rate, keyframe, frame.ssrc, now, name))
            except Exception:
                # A bug in a consumer must not kill aiortc's RTP path.
                logger.exception("frame consumer failed")

    def get(self) -> None:
        # aiortc's decoder thread calls this first; None makes it exit at once.
        return None

    # -- keyframe requests towards the sender of this stream --------------
    def request_keyframe(self) -> bool:
        """Send a PLI for this stream; return False if its SSRC is not known yet."""
        if self.ssrc is None or self.kind != "video":
            return False
        task = asyncio.ensure_future(self.receiver._send_rtcp_pli(self.ssrc))
        # Keep a reference until done; the event loop only holds weak ones.
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True


NTP_UNIX_OFFSET: Final = 2208988800  # seconds from 1900 (NTP's epoch) to 1970


class _SenderClock:
    """``aiortc.clock`` for the sender module, with a cheaper ``current_ntp_time``.

    aiortc's sender reads the NTP time twice per RTP packet (for the
    abs-send-time extension and its RTCP sender reports) through
    ``datetime.now()``, about 0.75 µs each; ``time.time()`` gives the same
    value in a fifth of that. Everything else is aiortc's own clock.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(aiortc_clock, name)

    @staticmethod
    def current_ntp_time() -> int:
        return int((time.time() + NTP_UNIX_OFFSET) * 4294967296)


def speed_up_sender_clock() -> None:
    """Give aiortc's sender module the cheaper clock (idempotent, process-wide)."""
    current = getattr(aiortc_rtcrtpsender, "clock", None)
    if not isinstance(current, _SenderClock):
        if current is not aiortc_clock:
            raise TapShapeError("aiortc.rtcrtpsender no longer reads aiortc.clock")
        setattr(aiortc_rtcrtpsender, "clock", _SenderClock())  # noqa: B010 - a module attribute of aiortc's


def _check_receiver(receiver: RTCRtpReceiver) -> None:
    missing = [name for name in _RECEIVER_PRIVATE if not hasattr(receiver, name)]
    if missing:
        raise TapShapeError(f"aiortc RTCRtpReceiver lacks {', '.join(missing)}")


def install_receiver_tap(receiver: RTCRtpReceiver, on_frame: Callable[[EncodedFrame], None]) -> ReceiveTap:
    """Make ``receiver`` hand complete encoded frames to ``on_frame`` instead of decoding.

    Must be called before the receiver starts (before the connection is
    established): aiortc starts its decoder thread in ``receive()``.
    """
    _check_receiver(receiver)
    if getattr(receiver, _RECEIVER_DECODER_THREAD) is not None:
        raise TapShapeError("the receiver has already started decoding; install the tap earlier")
    kind: str = getattr(receiver, _RECEIVER_KIND)
    tap = ReceiveTap(receiver, kind, on_frame)
    # Filled by aiortc in receive(), so it is read when packets arrive.
    codecs: dict[int, Any] = getattr(receiver, _RECEIVER_CODECS)

    def codec_name(payload_type: int) -> str | None:
        codec = codecs.get(payload_type)
        return None if codec is None else str(codec.name)

    buffer: MarkerJitterBuffer | AudioPassThrough = (
        MarkerJitterBuffer(codec_name=codec_name) if kind == "video" else AudioPassThrough()
    )
    setattr(receiver, _RECEIVER_JITTER_BUFFER, buffer)
    setattr(receiver, _RECEIVER_DECODER_QUEUE, tap)
    return tap


def share_bandwidth_estimator(receivers: Iterable[RTCRtpReceiver]) -> RemoteBitrateEstimator:
    """Give all video ``receivers`` of one connection a single REMB estimator."""
    estimator = RemoteBitrateEstimator()
    for receiver in receivers:
        _check_receiver(receiver)
        if getattr(receiver, _RECEIVER_ESTIMATOR) is not None:
            setattr(receiver, _RECEIVER_ESTIMATOR, estimator)
    return estimator


def drop_bandwidth_estimator(receiver: RTCRtpReceiver) -> None:
    """Stop ``receiver`` estimating bandwidth (and sending REMB); aiortc skips a missing estimator."""
    _check_receiver(receiver)
    setattr(receiver, _RECEIVER_ESTIMATOR, None)


def hook_keyframe_requests(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the remote side asks ``sender`` for a keyframe (PLI/FIR).

    aiortc only sets a flag for its encoder, which a sender of forwarded
    packets never uses.
    """
    if not callable(getattr(sender, "_send_keyframe", None)):
        raise TapShapeError("aiortc RTCRtpSender._send_keyframe is gone")
    sender._send_keyframe = callback  # type: ignore[method-assign]


def route_by_mid(pc: RTCPeerConnection) -> None:
    """Route RTP packets from SSRCs the SDP did not announce by their MID header extension.

    aiortc 1.16 records MIDs in its router but routes only by SSRC (or by a
    payload type used by a single receiver). With BUNDLE several video
    receivers share payload types, so a stream whose SSRC was not in the
    offer (a browser starting a screen share on a sender offered without a
    track) would be dropped.
    """
    routers = {id(t.receiver.transport): t.receiver.transport._rtp_router for t in pc.getTransceivers()}
    for router in routers.values():
        if getattr(router, "_lotse_mid_routing", False):
            continue
        original = router.route_rtp

        def route_rtp(packet: RtpPacket, router: Any = router, original: Any = original) -> Any:
            receiver = original(packet)
            mid = packet.extensions.mid
            if receiver is None and mid is not None:
                receiver = router.mid_table.get(mid)
                if receiver is not None:
                    router.ssrc_table[packet.ssrc] = receiver
            return receiver

        router.route_rtp = route_rtp  # type: ignore[method-assign]
        setattr(router, "_lotse_mid_routing", True)  # noqa: B010 - a marker on a foreign object


# Private attributes of RTCRtpSender the forwarding send loop reads and keeps up to date.
_SENDER_PRIVATE: Final = (
    "_RTCRtpSender__track",
    "_RTCRtpSender__encoder",
    "_RTCRtpSender__mid",
    "_RTCRtpSender__rtp_started",
    "_RTCRtpSender__rtp_exited",
    "_RTCRtpSender__rtp_history",
    "_RTCRtpSender__rtp_header_extensions_map",
    "_RTCRtpSender__ntp_timestamp",
    "_RTCRtpSender__rtp_timestamp",
    "_RTCRtpSender__octet_count",
    "_RTCRtpSender__packet_count",
)


def install_forwarding_sender(sender: RTCRtpSender) -> None:
    """Give ``sender`` a leaner RTP loop for forwarded packets (before it starts sending).

    aiortc's ``_run_rtp`` reads the clock twice per packet and passes every
    packet down five coroutines (DTLS, ICE transport, ICE connection, the
    candidate pair, its protocol) to one ``sendto``. This loop does what it
    does, per frame where aiortc does it per packet: one abs-send-time for
    all packets of a frame, one check of the DTLS state and of the nominated
    candidate pair, SRTP-protects each packet and hands it to the pair's
    datagram transport directly. Packets still go into the sender's history
    (as plain tuples, :class:`_PacketHistory`), so NACKs are answered by
    aiortc's own retransmission, and its counters for RTCP sender reports
    are kept. Frames of more than :data:`SMALL_FRAME_PACKETS` packets are
    sent by the process's send queue in slices (:class:`_SendQueue`).
    """
    missing = [name for name in _SENDER_PRIVATE if not hasattr(sender, name)]
    if missing:
        raise TapShapeError(f"aiortc RTCRtpSender lacks {', '.join(missing)}")
    sender._run_rtp = functools.partial(_run_forwarding_rtp, sender)  # type: ignore[method-assign]


# A frame of more packets than this (a 640x480 keyframe is 50-100) is not sent
# in one go by its sender's task but by the process's send queue, a slice per
# event-loop iteration; frames up to this size (audio, delta frames) go out
# at once. So a keyframe forwarded to eleven subscribers (600+ packets,
# ~10 ms of work) no longer holds up the small frames of everybody else, nor
# the reading of the sockets, which asyncio does between iterations.
SMALL_FRAME_PACKETS: Final = 4
# Work the send queue does per event-loop iteration: at least this much, and
# as much as the rest of the loop did since the queue's last turn (up to the
# cap), so large frames get at least half of a busy loop and never fall
# behind for good.
SEND_SLICE_SECONDS: Final = 0.0005
SEND_SLICE_MAX_SECONDS: Final = 0.01

_RTP_FIRST_BYTES: Final = struct.Struct("!BBH")
_RTP_TIMESTAMP_SSRC: Final = struct.Struct("!LL")
_RTP_EXTENSION_HEADER: Final = struct.Struct("!HH")


class _PacketHistory(dict[int, tuple[int, int, int, bytes]]):
    """A forwarding sender's recently sent packets, to answer NACKs, kept as plain tuples.

    aiortc keeps one ``RtpPacket`` per sent packet (the last 128 of each
    sender): in a 12-person room some 34,000 objects that all live long
    enough to reach the collector's oldest generation and are walked by every
    collection on the way. A tuple of ints and bytes is untracked by the
    collector once it has survived one. aiortc reads the history only through
    ``get()`` (in ``_retransmit``), which builds the ``RtpPacket`` on demand.
    """

    def __init__(self, payload_type: int, ssrc: int, mid: str | None) -> None:
        super().__init__()
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.mid = mid

    def get(self, key: int, default: Any = None) -> Any:
        entry = super().get(key)
        if entry is None:
            return default
        sequence_number, marker, timestamp, payload = entry
        packet = RtpPacket(self.payload_type, marker, sequence_number, timestamp, self.ssrc, payload)
        packet.extensions.mid = self.mid
        return packet


def _sendto(transport: Any) -> Callable[[bytes, Any], None]:
    """Return how to send a datagram on ``transport``: its socket's own ``sendto`` where that is safe.

    asyncio's ``DatagramTransport.sendto`` checks its arguments and state on
    every call (about a seventh of the cost of forwarding a packet); a socket
    that has nothing queued in its transport can take the datagram directly.
    Should the socket refuse it (full: EAGAIN), the packet goes through the
    transport after all, which queues it or reports the error as usual.
    """
    sock = getattr(transport, "_sock", None)
    if sock is None or getattr(transport, "_buffer", True) or transport.is_closing():
        return transport.sendto  # type: ignore[no-any-return]
    sock_sendto = sock.sendto
    transport_sendto = transport.sendto

    def sendto(data: bytes, addr: Any) -> None:
        try:
            sock_sendto(data, addr)
        except OSError:
            transport_sendto(data, addr)

    return sendto


def _frame_header(extensions_map: Any, extensions: HeaderExtensions, timestamp: int, ssrc: int) -> tuple[int, bytes]:
    """Return the first byte of a frame's RTP packets and what follows their sequence number.

    What ``RtpPacket.serialize`` writes (no CSRCs, no padding), with the header
    extensions encoded once for all packets of the frame.
    """
    profile, value = extensions_map.set(extensions)
    if not value:
        return 0x80, _RTP_TIMESTAMP_SSRC.pack(timestamp, ssrc)
    return 0x90, _RTP_TIMESTAMP_SSRC.pack(timestamp, ssrc) + _RTP_EXTENSION_HEADER.pack(profile, len(value) >> 2) + value


class _FrameOut:
    """The packets of one frame on their way out of one forwarding sender."""

    __slots__ = ("first_byte", "history", "next", "octets", "payload_type", "payloads", "protect", "remote", "rest",
                 "sendto", "sent_bytes", "sequence_number", "timestamp")

    def __init__(
        self,
        payloads: list[bytes],
        first_byte: int,
        payload_type: int,
        sequence_number: int,
        timestamp: int,
        rest: bytes,
        history: dict[int, tuple[int, int, int, bytes]],
        protect: Callable[[bytes], bytes],
        sendto: Callable[[bytes, Any], None],
        remote: Any,
    ) -> None:
        self.payloads = payloads
        self.first_byte = first_byte
        self.payload_type = payload_type
        self.sequence_number = sequence_number
        self.timestamp = timestamp
        self.rest = rest
        self.history = history
        self.protect = protect
        self.sendto = sendto
        self.remote = remote
        self.next = 0
        self.sent_bytes = 0
        self.octets = 0

    def send(self, until: float) -> bool:
        """Send packets until done (True) or until ``perf_counter()`` passes ``until``."""
        payloads = self.payloads
        last = len(payloads) - 1
        first_byte, payload_type, timestamp, rest = self.first_byte, self.payload_type, self.timestamp, self.rest
        history, protect, sendto, remote = self.history, self.protect, self.sendto, self.remote
        perf_counter = time.perf_counter
        while self.next <= last:
            i = self.next
            payload = payloads[i]
            sequence_number = self.sequence_number
            marker = 0x80 if i == last else 0
            history[sequence_number % RTP_HISTORY_SIZE] = (sequence_number, marker >> 7, timestamp, payload)
            protected = protect(_RTP_FIRST_BYTES.pack(first_byte, payload_type | marker, sequence_number) + rest + payload)
            sendto(protected, remote)
            self.sent_bytes += len(protected)
            self.octets += len(payload)
            self.sequence_number = (sequence_number + 1) & 0xFFFF
            self.next = i + 1
            if perf_counter() >= until:
                break
        return self.next > last


class _SendQueue:
    """One event loop's large frames, sent oldest first, a slice per loop iteration."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._frames: collections.deque[tuple[_FrameOut, asyncio.Future[None]]] = collections.deque()
        self._scheduled = False
        self._scheduled_at_end = False  # the queue's last turn left work and scheduled the next
        self._last_turn = 0.0

    def put(self, frame: _FrameOut) -> asyncio.Future[None]:
        done = self._loop.create_future()
        self._frames.append((frame, done))
        if not self._scheduled:
            self._scheduled = True
            self._loop.call_soon(self._pump)
        return done

    def _pump(self) -> None:
        frames = self._frames
        now = time.perf_counter()
        others = now - self._last_turn if self._scheduled_at_end else 0.0
        until = now + min(SEND_SLICE_MAX_SECONDS, max(SEND_SLICE_SECONDS, others))
        while frames:
            frame, done = frames[0]
            if done.done():  # the sender was cancelled
                frames.popleft()
                continue
            try:
                finished = frame.send(until)
            except Exception as error:  # handed to the sender that waits for it
                frames.popleft()
                done.set_exception(error)
                continue
            if finished:
                frames.popleft()
                done.set_result(None)
            if time.perf_counter() >= until:
                break
        self._scheduled = self._scheduled_at_end = bool(frames)
        self._last_turn = time.perf_counter()
        if frames:
            self._loop.call_soon(self._pump)


_send_queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SendQueue] = weakref.WeakKeyDictionary()


def _send_queue() -> _SendQueue:
    loop = asyncio.get_running_loop()
    queue = _send_queues.get(loop)
    if queue is None:
        queue = _send_queues[loop] = _SendQueue(loop)
    return queue




async def _run_forwarding_rtp(sender: Any, codec: Any) -> None:
    started: asyncio.Event = sender._RTCRtpSender__rtp_started
    started.set()
    extensions_map = sender._RTCRtpSender__rtp_header_extensions_map
    mid = sender._RTCRtpSender__mid
    dtls = sender.transport
    payload_type: int = codec.payloadType
    ssrc = sender._ssrc
    history = _PacketHistory(payload_type, ssrc, mid)
    extensions = HeaderExtensions()
    extensions.mid = mid
    setattr(sender, "_RTCRtpSender__rtp_history", history)  # noqa: B010 - read by aiortc's _retransmit
    encoder = get_encoder(codec)
    setattr(sender, "_RTCRtpSender__encoder", encoder)  # noqa: B010 - aiortc's own slot for it
    sequence_number = random_sequence_number()
    timestamp_origin = random32()
    octets = packets = 0
    queue = _send_queue()
    try:
        while True:
            track = sender._RTCRtpSender__track
            if track is None:
                await asyncio.sleep(0.02)
                continue
            data = await track.recv()
            if not sender._enabled:
                continue
            payloads, timestamp = encoder.pack(data)
            if not payloads:
                continue
            if dtls._state != DtlsState.CONNECTED:
                raise ConnectionError("Cannot send encrypted RTP, not connected")
            timestamp = (timestamp_origin + timestamp) & 0xFFFFFFFF
            ntp = _SenderClock.current_ntp_time()
            extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
            ice = dtls.transport
            pair = ice._connection._nominated.get(1)
            protocol = pair.protocol if pair is not None else None
            count = len(payloads)
            sent_bytes = 0
            if type(protocol) is StunProtocol and protocol.transport is not None:
                first_byte, rest = _frame_header(extensions_map, extensions, timestamp, ssrc)
                protect = dtls._tx_srtp.protect
                sendto, remote = _sendto(protocol.transport), pair.remote_addr
                if count <= SMALL_FRAME_PACKETS:
                    # _FrameOut.send, inline: most frames are one packet.
                    last = count - 1
                    for i, payload in enumerate(payloads):
                        marker = 0x80 if i == last else 0
                        number = (sequence_number + i) & 0xFFFF
                        history[number % RTP_HISTORY_SIZE] = (number, marker >> 7, timestamp, payload)
                        protected = protect(_RTP_FIRST_BYTES.pack(first_byte, payload_type | marker, number) + rest + payload)
                        sendto(protected, remote)
                        sent_bytes += len(protected)
                        octets += len(payload)
                else:
                    frame = _FrameOut(payloads, first_byte, payload_type, sequence_number, timestamp, rest, history,
                                      protect, sendto, remote)
                    await queue.put(frame)
                    sent_bytes = frame.sent_bytes
                    octets += frame.octets
            else:
                # No nominated pair yet, or a TURN relay: aiortc's own path, packet by packet.
                last = count - 1
                for i, payload in enumerate(payloads):
                    number = (sequence_number + i) & 0xFFFF
                    packet = RtpPacket(payload_type, 1 if i == last else 0, number, timestamp, ssrc, payload)
                    packet.extensions.mid = mid
                    packet.extensions.abs_send_time = extensions.abs_send_time
                    history[number % RTP_HISTORY_SIZE] = (number, packet.marker, timestamp, payload)
                    protected = dtls._tx_srtp.protect(packet.serialize(extensions_map))
                    await ice._send(protected)
                    sent_bytes += len(protected)
                    octets += len(payload)
            packets += count
            sequence_number = (sequence_number + count) & 0xFFFF
            received_at = getattr(data, "received_at", 0.0)
            if received_at:
                now = time.monotonic()
                forwarding_delay.add(now - received_at)
                if frame_sent is not None:
                    frame_sent(sender, data, now)
            setattr(sender, "_RTCRtpSender__ntp_timestamp", ntp)  # noqa: B010 - for RTCP sender reports
            setattr(sender, "_RTCRtpSender__rtp_timestamp", timestamp)  # noqa: B010
            setattr(sender, "_RTCRtpSender__octet_count", octets)  # noqa: B010
            setattr(sender, "_RTCRtpSender__packet_count", packets)  # noqa: B010
            _count_transport_bytes(dtls, sent_bytes, count)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:
        # As aiortc does: the loop must end with __rtp_exited set, or stop() hangs.
        logger.exception("forwarding sender failed")
    track = sender._RTCRtpSender__track
    if track is not None:
        track.stop()
        setattr(sender, "_RTCRtpSender__track", None)  # noqa: B010
    setattr(sender, "_RTCRtpSender__encoder", None)  # noqa: B010
    exited: asyncio.Event = sender._RTCRtpSender__rtp_exited
    exited.set()


def _count_transport_bytes(dtls: Any, sent_bytes: int, packets: int) -> None:
    """Keep the DTLS transport's statistics as its own send path would."""
    dtls._RTCDtlsTransport__tx_bytes += sent_bytes
    dtls._RTCDtlsTransport__tx_packets += packets


# Datagrams read from one socket per event-loop iteration at most.
READ_BATCH: Final = 64


def read_in_batches(pc: RTCPeerConnection, batch: int = READ_BATCH) -> int:
    """Make the connection's UDP sockets read every waiting datagram per loop iteration; return how many.

    asyncio's datagram transport reads one datagram each time the loop finds
    its socket readable, that is one per socket per loop iteration: a
    keyframe (50-100 packets from one publisher) then takes as many
    iterations to come in, each as long as whatever else the loop does, and
    a busy loop falls behind its sockets for good. Reading up to ``batch`` at
    once lets the DTLS transport's task take them all in one step. Call once
    the ICE candidates are gathered (after ``setLocalDescription``).
    """
    changed = 0
    for transport in _udp_transports(pc):
        if getattr(transport, "_lotse_batched", False):
            continue
        needed = ("_sock", "_sock_fd", "_loop", "_protocol", "_conn_lost", "max_size", "_read_ready")
        if not all(hasattr(transport, name) for name in needed):
            logger.warning("not an asyncio selector datagram transport; reading one datagram per iteration")
            continue
        read_ready = functools.partial(_read_batch, transport, batch)
        transport._read_ready = read_ready  # resume_reading() registers this one again
        transport._loop._add_reader(transport._sock_fd, read_ready)
        transport._lotse_batched = True
        changed += 1
    return changed


def _read_batch(transport: Any, batch: int) -> None:
    """asyncio's ``_SelectorDatagramTransport._read_ready``, for up to ``batch`` datagrams."""
    sock, protocol, size = transport._sock, transport._protocol, transport.max_size
    for _ in range(batch):
        if transport._conn_lost:
            return
        try:
            data, addr = sock.recvfrom(size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            protocol.error_received(exc)
            return
        except (SystemExit, KeyboardInterrupt):
            raise
        except BaseException as exc:
            transport._fatal_error(exc, "Fatal read error on datagram transport")
            return
        protocol.datagram_received(data, addr)


def _udp_transports(pc: RTCPeerConnection) -> list[Any]:
    transports: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        ice_transport = transceiver.receiver.transport.transport
        connection = getattr(ice_transport.iceGatherer, "_connection", None)
        for protocol in getattr(connection, "_protocols", ()):
            transport = getattr(protocol, "transport", None)
            if transport is not None:
                transports[id(transport)] = transport
    return list(transports.values())


def enlarge_receive_buffers(pc: RTCPeerConnection, size: int = 1 << 20) -> int:
    """Raise SO_RCVBUF on the connection's UDP sockets; return how many were changed.

    The default (208 KB) overflowed under load in the prototype and caused
    keyframe-request storms. The kernel caps the value at
    ``net.core.rmem_max``; best effort, so failures are only logged.
    """
    changed = 0
    for transceiver in pc.getTransceivers():
        ice_transport = transceiver.receiver.transport.transport
        connection = getattr(ice_transport.iceGatherer, "_connection", None)
        for protocol in getattr(connection, "_protocols", ()):
            transport = getattr(protocol, "transport", None)
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is None:
                continue
            with contextlib.suppress(OSError):
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) < size:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
                    changed += 1
    return changed
