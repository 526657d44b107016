"""Keyframe detection on depacketised VP8 and H.264 frames.

A forwarding unit must know where a subscriber can start decoding without
decoding anything itself: only the first bytes of a frame are inspected.
"""

from __future__ import annotations

from typing import Final

# VP8 key frames carry this start code after the 3-byte frame tag (RFC 6386 §9.1).
_VP8_START_CODE: Final = b"\x9d\x01\x2a"
_H264_IDR: Final = 5
_H264_SPS: Final = 7
_H264_STAP_A: Final = 24
_H264_FU_A: Final = 28


def is_vp8_keyframe(data: bytes) -> bool:
    """Return whether a depacketised VP8 frame is a key frame."""
    # Bit 0 of the frame tag is the inverse key-frame flag.
    return len(data) >= 10 and not data[0] & 0x01 and data[3:6] == _VP8_START_CODE


def is_h264_keyframe(data: bytes) -> bool:
    """Return whether an Annex B H.264 access unit holds an IDR slice (or SPS)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        nal_type = data[start + 3] & 0x1F
        if nal_type in (_H264_IDR, _H264_SPS):
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False


def is_keyframe(codec_name: str, data: bytes) -> bool:
    """Return whether ``data`` (one complete frame of ``codec_name``) starts a decodable picture."""
    name = codec_name.upper()
    if name == "VP8":
        return is_vp8_keyframe(data)
    if name == "H264":
        return is_h264_keyframe(data)
    return True  # audio codecs: every frame is decodable on its own


def starts_frame(codec_name: str, payload: bytes) -> bool:
    """Return whether an RTP ``payload`` (still packetised) is the first packet of a frame."""
    if not payload:
        return False
    name = codec_name.upper()
    if name == "VP8":
        # Payload descriptor (RFC 7741 §4.2): S bit set and partition index 0.
        return bool(payload[0] & 0x10) and not payload[0] & 0x0F
    if name == "H264":
        nal_type = payload[0] & 0x1F
        if nal_type == _H264_FU_A:
            return len(payload) > 1 and bool(payload[1] & 0x80)
        return 1 <= nal_type <= _H264_STAP_A
    return True
