"""Synthetic media for the media tests: a cheap moving picture and a VP8 decode check."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import av
from aiortc import VideoStreamTrack

from lotse.media.client import CallClient, ReceivedFrame

WIDTH, HEIGHT = 160, 120


class SyntheticCamera(VideoStreamTrack):
    """A small moving picture, cheap to encode, different per participant."""

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.count = seed * 37
        self._chroma = bytes([128]) * (WIDTH * HEIGHT // 4)

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.count += 1
        luma = bytearray([(self.count * 3) % 200 + 20]) * (WIDTH * HEIGHT)
        x = self.count % (WIDTH - 24)
        for row in range(30, 70):
            start = row * WIDTH + x
            luma[start : start + 24] = b"\xf0" * 24
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(bytes(luma))
        frame.planes[1].update(self._chroma)
        frame.planes[2].update(self._chroma)
        frame.pts = pts
        frame.time_base = time_base
        return frame


def decode_vp8(frames: list[ReceivedFrame]) -> tuple[int, int]:
    """Decode received frames in order; return (pictures decoded, decode errors)."""
    codec = av.CodecContext.create("libvpx", "r")
    pictures = errors = 0
    for received in frames:
        try:
            pictures += len(codec.decode(received.frame.to_packet()))
        except av.FFmpegError:
            errors += 1
    return pictures, errors


JoinClients = Callable[..., Awaitable[list[CallClient]]]
