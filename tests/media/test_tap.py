"""The tap against the pinned aiortc: fails loudly when an upgrade changes what it relies on."""

from __future__ import annotations

import asyncio
import inspect
import queue
import socket
import threading

import aiortc
import av
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpReceiver, RTCRtpSender
from aiortc.codecs.h264 import H264Encoder, h264_depayload
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcrtpparameters import RTCRtpHeaderExtensionParameters, RTCRtpParameters
from aiortc.rtcrtpreceiver import decoder_worker
from aiortc.rtp import (
    RTCP_PSFB_PLI,
    HeaderExtensions,
    HeaderExtensionsMap,
    RtcpPsfbPacket,
    RtpPacket,
)
from media_support import SyntheticCamera, decode_vp8

from lotse.media import tap
from lotse.media.client import ReceivedFrame
from lotse.media.codecs import is_keyframe, starts_frame


def test_the_installed_aiortc_is_the_pinned_one() -> None:
    assert aiortc.__version__ == tap.AIORTC_VERSION
    tap.check_aiortc()


async def test_the_private_objects_the_tap_replaces_are_there() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    video = pc.addTransceiver("video")
    audio = pc.addTransceiver("audio")
    receiver = video.receiver
    assert isinstance(receiver._RTCRtpReceiver__jitter_buffer, JitterBuffer)
    assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
    assert receiver._RTCRtpReceiver__decoder_thread is None
    assert isinstance(receiver._RTCRtpReceiver__remote_bitrate_estimator, RemoteBitrateEstimator)
    assert audio.receiver._RTCRtpReceiver__remote_bitrate_estimator is None
    assert receiver._RTCRtpReceiver__kind == "video"
    assert isinstance(receiver._RTCRtpReceiver__codecs, dict)
    router = receiver.transport._rtp_router
    assert callable(router.route_rtp)
    assert isinstance(router.mid_table, dict)
    assert isinstance(router.ssrc_table, dict)
    assert isinstance(receiver.transport.transport.iceGatherer._connection._protocols, list)
    await pc.close()


def test_aiortc_still_calls_the_replaced_objects_the_way_the_tap_expects() -> None:
    handle = inspect.getsource(RTCRtpReceiver._handle_rtp_packet)
    assert "self.__jitter_buffer.add(packet)" in handle
    assert "self.__decoder_queue.put((codec, encoded_frame))" in handle
    assert "packet._data = depayload(codec, packet.payload)" in handle
    assert "self.__remote_bitrate_estimator.add(" in handle
    # The decoder thread asks its queue first, so a get() returning None ends it.
    worker = inspect.getsource(decoder_worker)
    assert worker.index("input_q.get()") < worker.index("decoder.decode")
    assert "self.__decoder_thread = threading.Thread(" in inspect.getsource(RTCRtpReceiver.receive)
    # PLI/FIR reach the sender only through _send_keyframe.
    rtcp = inspect.getsource(RTCRtpSender._handle_rtcp_packet)
    assert "self._send_keyframe()" in rtcp
    pack = inspect.getsource(RTCRtpSender._next_encoded_frame)
    assert "self.__encoder.pack(data)" in pack


def packet(seq: int, timestamp: int, *, marker: bool = False, start: bool = False, data: bytes = b"x") -> RtpPacket:
    rtp = RtpPacket(payload_type=97, sequence_number=seq & 0xFFFF, timestamp=timestamp, marker=int(marker))
    rtp.payload = bytes([0x10 if start else 0x00]) + data
    rtp._data = data  # type: ignore[attr-defined]
    return rtp


def frames_of(result: tuple[bool, object]) -> list[bytes]:
    _, batch = result
    return [] if batch is None else [f.data for f in batch.frames]  # type: ignore[attr-defined]


def test_video_frames_complete_on_the_marker_packet() -> None:
    buffer = tap.MarkerJitterBuffer(codec_name=lambda pt: "VP8")
    assert frames_of(buffer.add(packet(10, 1000, start=True, data=b"a"))) == []
    assert frames_of(buffer.add(packet(11, 1000, data=b"b"))) == []
    # Released on its own last packet, not when the next frame begins.
    assert frames_of(buffer.add(packet(12, 1000, marker=True, data=b"c"))) == [b"abc"]
    # Reordered packets wait for the hole to fill.
    assert frames_of(buffer.add(packet(14, 4000, data=b"e"))) == []
    assert frames_of(buffer.add(packet(13, 4000, start=True, data=b"d"))) == []
    assert frames_of(buffer.add(packet(15, 4000, marker=True, data=b"f"))) == [b"def"]
    # A sender that never sets the marker still gets its frames out, one later.
    assert frames_of(buffer.add(packet(16, 7000, start=True, data=b"g"))) == []
    assert frames_of(buffer.add(packet(17, 10000, start=True, data=b"h"))) == [b"g"]


def test_a_retransmission_that_fills_a_hole_releases_every_frame_behind_it() -> None:
    buffer = tap.MarkerJitterBuffer(codec_name=lambda pt: "VP8")
    buffer.add(packet(1, 0, start=True, marker=True))
    buffer.add(packet(3, 3000, marker=True, data=b"b"))
    buffer.add(packet(4, 6000, start=True, marker=True, data=b"c"))
    assert frames_of(buffer.add(packet(2, 3000, start=True, data=b"a"))) == [b"ab", b"c"]


def test_a_frame_whose_start_was_missed_is_unclean_and_a_long_hole_is_skipped() -> None:
    buffer = tap.MarkerJitterBuffer(codec_name=lambda pt: "VP8")
    _, batch = buffer.add(packet(100, 0, marker=True))  # joined mid-frame
    assert batch is not None
    assert [f.clean for f in batch.frames] == [False]  # type: ignore[attr-defined]
    pli = False
    for seq in range(102, 102 + tap.MAX_HOLE + 2):  # 101 never arrives
        flag, _ = buffer.add(packet(seq, seq * 10, start=True, marker=True))
        pli = pli or flag
    assert pli, "giving up on a hole must ask for a keyframe"
    _, batch = buffer.add(packet(500, 5000, start=True, marker=True))
    assert batch is not None
    assert [f.clean for f in batch.frames] == [True]  # type: ignore[attr-defined]


def test_audio_packets_are_released_at_once_and_late_ones_dropped() -> None:
    buffer = tap.AudioPassThrough()
    assert frames_of(buffer.add(packet(1, 0, data=b"a"))) == [b"a"]
    assert frames_of(buffer.add(packet(3, 1920, data=b"c"))) == [b"c"]
    assert frames_of(buffer.add(packet(2, 960, data=b"b"))) == []
    assert frames_of(buffer.add(packet(3, 1920, data=b"c"))) == []


def encoded(encoder: Vp8Encoder | H264Encoder, depayload, force: bool, index: int) -> tuple[bytes, list[bytes]]:
    frame = av.VideoFrame(160, 120, "yuv420p")
    for plane in frame.planes:
        plane.update(bytes([(index * 40) % 256]) * plane.buffer_size)
    frame.pts = index * 3000
    frame.time_base = tap._time_base(90000)
    payloads, _ = encoder.encode(frame, force_keyframe=force)
    return b"".join(depayload(p) for p in payloads), payloads


@pytest.mark.parametrize(("name", "encoder", "depayload"), [("VP8", Vp8Encoder, vp8_depayload), ("H264", H264Encoder, h264_depayload)])
def test_keyframes_and_frame_starts_are_detected_on_real_encoder_output(name, encoder, depayload) -> None:
    try:
        coder = encoder()
        key, key_payloads = encoded(coder, depayload, True, 0)
    except av.FFmpegError as error:  # pragma: no cover - a build without the encoder
        pytest.skip(f"no {name} encoder: {error}")
    delta, delta_payloads = encoded(coder, depayload, False, 1)
    assert is_keyframe(name, key)
    assert not is_keyframe(name, delta)
    assert starts_frame(name, key_payloads[0])
    assert starts_frame(name, delta_payloads[0])
    if len(key_payloads) > 1 and name == "VP8":
        assert not starts_frame(name, key_payloads[1])


async def test_a_tapped_receiver_hands_over_encoded_frames_without_decoding() -> None:
    sender_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    receiver_pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender_pc.addTransceiver(SyntheticCamera(), direction="sendonly")
    await sender_pc.setLocalDescription(await sender_pc.createOffer())
    await receiver_pc.setRemoteDescription(sender_pc.localDescription)
    frames: list[tap.EncodedFrame] = []
    (transceiver,) = receiver_pc.getTransceivers()
    installed = tap.install_receiver_tap(transceiver.receiver, frames.append)
    await receiver_pc.setLocalDescription(await receiver_pc.createAnswer())
    await sender_pc.setRemoteDescription(receiver_pc.localDescription)
    try:
        for _ in range(100):
            if len(frames) >= 15:
                break
            await asyncio.sleep(0.05)
        assert len(frames) >= 15, f"only {len(frames)} frames came through the tap"
        assert frames[0].keyframe
        assert not any(f.keyframe for f in frames[1:5])
        assert isinstance(frames[0].to_packet(), av.Packet)
        assert [f.pts for f in frames] == sorted(f.pts for f in frames)
        received = [ReceivedFrame("0", "x", "camera", f) for f in frames]
        assert decode_vp8(received) == (len(frames), 0)
        assert not any(t.name == "video-decoder" and t.is_alive() for t in threading.enumerate())
        assert installed.ssrc == frames[0].ssrc
        with pytest.raises(tap.TapShapeError):
            tap.install_receiver_tap(transceiver.receiver, frames.append)  # already started
    finally:
        await sender_pc.close()
        await receiver_pc.close()


async def test_keyframe_requests_to_a_forwarding_sender_become_a_callback() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver("video", direction="sendonly").sender
    asked: list[bool] = []
    tap.hook_keyframe_requests(sender, lambda: asked.append(True))
    await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=RTCP_PSFB_PLI, ssrc=1, media_ssrc=sender._ssrc))
    assert asked == [True]
    await pc.close()


async def test_receive_buffers_can_be_raised() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio")
    await pc.setLocalDescription(await pc.createOffer())
    try:
        assert tap.enlarge_receive_buffers(pc, 1 << 21) >= 1
    finally:
        await pc.close()


def test_aiortc_packers_take_a_forwarded_packet_as_an_av_packet() -> None:
    # The slots hand aiortc's sender ForwardedPacket objects for VP8 and Opus;
    # its packers must make the same RTP payloads of them as of an av.Packet.
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    data = bytes(range(256)) * 20
    for name, clock_rate in (("VP8", 90000), ("opus", 48000)):
        frame = tap.EncodedFrame(data, 1234, clock_rate, True, 1, 0.0, name)
        forwarded = frame.forward(5678)
        assert isinstance(forwarded, tap.ForwardedPacket)
        mime = f"{'video' if clock_rate == 90000 else 'audio'}/{name}"
        codec = RTCRtpCodecParameters(mimeType=mime, clockRate=clock_rate, channels=2 if name == "opus" else None)
        encoder = get_encoder(codec)
        picture_id = getattr(encoder, "picture_id", None)  # VP8 numbers its pictures
        packed = encoder.pack(forwarded)
        if picture_id is not None:
            encoder.picture_id = picture_id
        assert packed == encoder.pack(frame.to_packet(5678))
        assert packed[1] == 5678
    h264 = tap.EncodedFrame(data, 1234, 90000, True, 1, 0.0, "H264")
    assert isinstance(h264.forward(5678), av.Packet)  # aiortc's H.264 packer asserts an av.Packet


def test_the_sender_clock_is_aiortcs_ntp_time_only_cheaper() -> None:
    from aiortc import clock, rtcrtpsender

    tap.speed_up_sender_clock()
    tap.speed_up_sender_clock()
    fast = rtcrtpsender.clock
    assert isinstance(fast, tap._SenderClock)
    assert fast.current_datetime is clock.current_datetime
    # Within a millisecond of aiortc's own value (2**32 units per second).
    assert abs(fast.current_ntp_time() - clock.current_ntp_time()) < (1 << 32) // 1000


async def test_the_forwarding_send_loop_replaces_aiortcs_and_finds_what_it_keeps_up_to_date() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    sender = pc.addTransceiver("video", direction="sendonly").sender
    try:
        tap.install_forwarding_sender(sender)
        assert sender._run_rtp.func is tap._run_forwarding_rtp
        # aiortc's loop still has the shape this one copies (one RtpPacket per payload, history, NTP clock).
        source = inspect.getsource(RTCRtpSender._run_rtp)
        for needed in ("self.__rtp_history[packet.sequence_number % RTP_HISTORY_SIZE]", "self.__encoder.pack",
                       "packet = self.__rtp_history.get(sequence_number % RTP_HISTORY_SIZE)",
                       "clock.current_ntp_time()", "self.__octet_count", "self.__rtp_exited.set()"):
            assert needed in source or needed in inspect.getsource(RTCRtpSender._next_encoded_frame) \
                or needed in inspect.getsource(RTCRtpSender._retransmit), needed
        transport = sender.transport
        assert hasattr(transport, "_RTCDtlsTransport__tx_bytes")
        assert hasattr(transport, "_tx_srtp")
    finally:
        await pc.close()


def test_the_forwarding_delay_histogram() -> None:
    delays = tap.DelayHistogram()
    assert delays.percentile_ms(0.5) is None
    for ms in [1.1] * 98 + [7.3, 900.0]:
        delays.add(ms / 1000)
    assert delays.percentile_ms(0.5) == 1.25  # the upper edge of the 0.25 ms bucket
    assert delays.percentile_ms(0.99) == 7.5
    assert delays.percentile_ms(1.0) == 250.25  # beyond 250 ms: the overflow bucket
    delays.reset()
    assert delays.total == 0


class _Wire:
    """A datagram transport that keeps what is sent, for the send queue's tests."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: object) -> None:
        self.sent.append(data)


_EXTENSIONS = HeaderExtensionsMap()
_EXTENSIONS.configure(RTCRtpParameters(headerExtensions=[
    RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:sdes:mid"),
    RTCRtpHeaderExtensionParameters(id=3, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")]))


def _frame_out(wire: _Wire, payloads: list[bytes], first: int, history: tap._PacketHistory) -> tap._FrameOut:
    extensions = HeaderExtensions()
    extensions.mid = "3"
    extensions.abs_send_time = 0x123456
    first_byte, rest = tap._frame_header(_EXTENSIONS, extensions, 4242, 77)
    return tap._FrameOut(payloads, first_byte, 96, first, 4242, rest, history, bytes, wire.sendto, ("127.0.0.1", 9))


async def test_a_frame_goes_out_as_aiortc_would_serialise_it() -> None:
    wire, history = _Wire(), tap._PacketHistory(96, 77, "3")
    frame = _frame_out(wire, [b"a", b"bb", b"ccc"], 0xFFFE, history)
    assert frame.send(float("inf"))
    expected = []
    for i, payload in enumerate([b"a", b"bb", b"ccc"]):
        packet = RtpPacket(payload_type=96, marker=int(i == 2), sequence_number=(0xFFFE + i) & 0xFFFF, timestamp=4242, ssrc=77,
                           payload=payload)
        packet.extensions.mid = "3"
        packet.extensions.abs_send_time = 0x123456
        expected.append(packet.serialize(_EXTENSIONS))
    assert wire.sent == expected
    # Kept for retransmission: aiortc's _retransmit gets them as RtpPackets.
    kept = [history.get(s % 128) for s in (0xFFFE, 0xFFFF, 0)]
    assert [(p.sequence_number, p.marker, p.timestamp, p.ssrc, p.payload_type, p.payload, p.extensions.mid) for p in kept] == [
        (0xFFFE, 0, 4242, 77, 96, b"a", "3"), (0xFFFF, 0, 4242, 77, 96, b"bb", "3"), (0, 1, 4242, 77, 96, b"ccc", "3")]
    assert history.get(5) is None
    assert (frame.octets, frame.sent_bytes) == (6, sum(map(len, expected)))


async def test_large_frames_go_out_oldest_first_in_slices_and_small_frames_pass_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tap, "SEND_SLICE_SECONDS", 0.0)  # one packet per turn of the send queue
    monkeypatch.setattr(tap, "SEND_SLICE_MAX_SECONDS", 0.0)
    wire = _Wire()
    queue_ = tap._send_queue()
    first = queue_.put(_frame_out(wire, [b"K1-%d" % i for i in range(20)], 100, tap._PacketHistory(96, 77, "3")))
    second = queue_.put(_frame_out(wire, [b"K2-%d" % i for i in range(20)], 500, tap._PacketHistory(96, 77, "3")))
    await asyncio.sleep(0)  # the queue's first turn
    assert len(wire.sent) == 1
    # A small frame is sent by its own sender at once, not behind the large ones.
    assert _frame_out(wire, [b"delta"], 900, tap._PacketHistory(96, 77, "3")).send(float("inf"))
    await asyncio.wait_for(asyncio.gather(first, second), 5)
    payloads = [RtpPacket.parse(data).payload for data in wire.sent]
    assert payloads == [b"K1-0", b"delta"] + [b"K1-%d" % i for i in range(1, 20)] + [b"K2-%d" % i for i in range(20)]


def test_a_datagram_the_socket_refuses_goes_through_the_transport() -> None:
    class Socket:
        def __init__(self, full: bool) -> None:
            self.full, self.sent = full, []

        def sendto(self, data: bytes, addr: object) -> None:
            if self.full:
                raise BlockingIOError
            self.sent.append(data)

    class Transport(_Wire):
        def __init__(self, full: bool, queued: bool = False) -> None:
            super().__init__()
            self._sock = Socket(full)
            self._buffer = [b"queued"] if queued else []

        def is_closing(self) -> bool:
            return False

    direct, full, queued = Transport(False), Transport(True), Transport(False, queued=True)
    for transport in (direct, full, queued):
        tap._sendto(transport)(b"x", ("127.0.0.1", 9))
    assert (direct._sock.sent, direct.sent) == ([b"x"], [])
    assert (full._sock.sent, full.sent) == ([], [b"x"])
    # Something already queued in the transport: keep the order, go through it.
    assert (queued._sock.sent, queued.sent) == ([], [b"x"])


async def test_a_connections_sockets_read_every_waiting_datagram_at_once() -> None:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("video")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        transports = tap._udp_transports(pc)
        assert transports
        assert tap.read_in_batches(pc, batch=3) == len(transports)
        assert tap.read_in_batches(pc) == 0  # once is enough
        transport = transports[0]
        protocol = transport._protocol
        received: list[bytes] = []
        transport._protocol = type("Protocol", (), {"datagram_received": lambda self, data, addr: received.append(data)})()
        transport._loop._remove_reader(transport._sock_fd)  # the test calls the reader itself
        try:
            address = transport.get_extra_info("sockname")
            with socket.socket(socket.AF_INET6 if ":" in address[0] else socket.AF_INET, socket.SOCK_DGRAM) as sender:
                for i in range(5):
                    sender.sendto(b"%d" % i, address[:2])
                await asyncio.sleep(0.05)
                transport._read_ready()  # what the loop calls when the socket is readable
                assert received == [b"0", b"1", b"2"]  # a batch per call
                transport._read_ready()
                assert received == [b"0", b"1", b"2", b"3", b"4"]
        finally:
            transport._protocol = protocol
            transport._loop._add_reader(transport._sock_fd, transport._read_ready)
    finally:
        await pc.close()
