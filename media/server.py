"""The media unit as its own process: the room signalling over a WebSocket.

``lotse media serve --host 0.0.0.0 --port 8765`` (or ``python -m
lotse.media.server`` with the same options). Clients connect to
``ws://host:port/rooms/<room_id>?token=<token>``; the token, issued by the
platform with :func:`lotse.media.tokens.issue_token` and the shared secret in
``LOTSE_MEDIA_SECRET``, names the participant. After that the messages are
exactly those of :mod:`lotse.media.room`, one JSON object per WebSocket
message. A room lives in the process that first hosted it; whoever hands out
room addresses pins a room to one process.

With ``--stats-interval`` the process prints one JSON line per interval to
stdout: CPU seconds since start, the event-loop lag and the forwarding delay
(frame complete on arrival → its last packet handed to the kernel) of that
interval, and each room's forwarding counters (the benchmark reads them).
With ``--trace-frames`` as well, the process keeps a record of every video
frame it forwards (subscriber, publisher, CRC-32 of the frame, complete on
arrival, last packet handed to the kernel) and prints them all as one last
line ``{"trace": [...]}`` when it stops (not during the run: encoding them
would itself stall the loop), so the benchmark can break a hop's latency
down frame by frame; it costs a little CPU per frame.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import logging
import os
import signal
import sys
import time
import urllib.parse
import zlib
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from lotse.media import tap
from lotse.media.errors import ErrorCode, MediaError
from lotse.media.events import LeaveReason
from lotse.media.monitor import FrozenHeap, GcPauseMonitor, LoopLagMonitor, process_cpu_seconds
from lotse.media.room import MAX_CAP, Message, RoomSettings
from lotse.media.tokens import verify_token
from lotse.media.unit import MediaUnit

logger = logging.getLogger(__name__)

SECRET_ENV = "LOTSE_MEDIA_SECRET"  # noqa: S105 - the variable's name, not a secret
# WebSocket close codes in the application range: the client should not retry.
CLOSE_UNAUTHORISED = 4401
CLOSE_NOT_FOUND = 4404


class FrameTrace:
    """Record every forwarded video frame (installed as :data:`lotse.media.tap.frame_sent`)."""

    def __init__(self) -> None:
        self.records: list[tuple[str | None, str, int, float, float]] = []
        self._checksums: dict[int, tuple[bytes, int]] = {}

    def __call__(self, sender: Any, packet: Any, now: float) -> None:
        track = sender.track
        source = getattr(track, "source", None)
        if source is None or track.kind != "video":
            return
        data = bytes(packet)  # a forwarded frame's own bytes object, shared by its subscribers
        cached = self._checksums.get(id(data))
        if cached is None or cached[0] is not data:
            if len(self._checksums) > 4096:
                self._checksums.clear()
            cached = self._checksums[id(data)] = (data, zlib.crc32(data))
        self.records.append((track.subscriber, source.participant_id, cached[1], packet.received_at, now))

    def drain(self) -> list[tuple[str | None, str, int, float, float]]:
        records, self.records = self.records, []
        return records


class MediaServer:
    """Serve one :class:`MediaUnit` over WebSockets."""

    def __init__(self, unit: MediaUnit, secret: bytes) -> None:
        if not secret:
            raise ValueError(f"a secret is required (set {SECRET_ENV})")
        self.unit = unit
        self.secret = secret
        self.heap = FrozenHeap()

    async def handler(self, ws: ServerConnection) -> None:
        """Authenticate one connection, then relay its messages to its room."""
        assert ws.request is not None
        url = urllib.parse.urlsplit(ws.request.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "rooms" or not parts[1]:
            await ws.close(CLOSE_NOT_FOUND, "use /rooms/<room_id>?token=...")
            return
        room_id = urllib.parse.unquote(parts[1])
        token = urllib.parse.parse_qs(url.query).get("token", [""])[0]
        try:
            participant_id = verify_token(self.secret, room_id, token)
        except MediaError as error:
            await ws.send(json.dumps(error.to_message()))
            await ws.close(CLOSE_UNAUTHORISED, error.code)
            return
        room = self.unit.create_room(room_id)

        async def outbox(message: Message) -> None:
            await ws.send(json.dumps(message))

        joined = False
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    replies = [MediaError(ErrorCode.BAD_MESSAGE, "messages are JSON objects").to_message()]
                else:
                    replies = await room.handle(participant_id, message, outbox)
                    if any(reply.get("type") == "joined" for reply in replies):
                        joined = True
                        self.heap.joined()
                for reply in replies:
                    await ws.send(json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            await room.leave(participant_id, LeaveReason.DISCONNECTED)
            if joined:
                self.heap.left()

    def stats(
        self,
        monitor: LoopLagMonitor,
        started: float,
        cpu_start: float,
        gc_pauses: GcPauseMonitor | None = None,
    ) -> Message:
        lag = monitor.summary()
        delay = tap.forwarding_delay
        return {
            "time": time.monotonic() - started,
            "cpu": process_cpu_seconds() - cpu_start,
            "loop_lag_ms": {"p50": lag.p50_ms, "p99": lag.p99_ms, "max": lag.max_ms, "samples": lag.samples},
            # From a frame complete on its way in to its last packet handed to the kernel.
            "forwarding_delay_ms": {"p50": delay.percentile_ms(0.5), "p99": delay.percentile_ms(0.99),
                                    "max": delay.percentile_ms(1.0), "frames": delay.total},
            "gc": gc_pauses.summary() if gc_pauses is not None else None,
            "rooms": {room_id: room.stats() for room_id, room in self.unit.rooms.items()},
        }


async def run(
    host: str,
    port: int,
    unit: MediaUnit,
    secret: bytes,
    *,
    stop: asyncio.Event,
    stats_interval: float | None = None,
    ready: asyncio.Future[int] | None = None,
    trace_frames: bool = False,
) -> None:
    """Serve until ``stop`` is set; resolve ``ready`` with the bound port."""
    server = MediaServer(unit, secret)
    trace = FrameTrace() if trace_frames and stats_interval else None
    tap.frame_sent = trace
    monitor = LoopLagMonitor()
    monitor.start()
    gc_pauses = GcPauseMonitor()
    gc_pauses.start()
    async with serve(server.handler, host, port, max_size=2**20) as ws_server:
        bound = next(iter(ws_server.sockets)).getsockname()[1]
        # Everything allocated so far lives for the whole process: keep it out
        # of the cyclic collector's full passes (they paused a 12-person room
        # for 70-90 ms in the prototype).
        gc.collect()
        gc.freeze()
        if ready is not None and not ready.done():
            ready.set_result(bound)
        logger.info("media server listening on %s:%d", host, bound)
        started, cpu_start = time.monotonic(), process_cpu_seconds()
        if stats_interval:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), stats_interval)
                print(json.dumps(server.stats(monitor, started, cpu_start, gc_pauses)), flush=True)  # noqa: T201 - the stats stream is the output
                monitor.reset()  # loop lag, GC pauses and forwarding delay are reported per interval
                gc_pauses.reset()
                tap.forwarding_delay.reset()
        else:
            await stop.wait()
    server.heap.close()
    if trace is not None:
        print(json.dumps({"trace": trace.drain()}), flush=True)  # noqa: T201 - the stats stream is the output
    await unit.close()
    await monitor.stop()
    gc_pauses.stop()
    tap.frame_sent = None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lotse.media.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--cap", type=int, default=MAX_CAP, help="participants per room (2-12)")
    parser.add_argument("--codec", default="VP8", choices=["VP8", "H264"])
    parser.add_argument("--stats-interval", type=float, default=None, help="print JSON stats every N seconds")
    parser.add_argument("--trace-frames", action="store_true", help="with --stats-interval: list every forwarded video frame")
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr)
    secret = os.environ.get(SECRET_ENV, "").encode()
    if not secret:
        parser.error(f"set {SECRET_ENV} to the secret the platform signs join tokens with")
    unit = MediaUnit(RoomSettings(cap=args.cap, video_codec=args.codec))

    async def serve_until_signalled() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(args.host, args.port, unit, secret, stop=stop, stats_interval=args.stats_interval,
                  trace_frames=args.trace_frames)

    asyncio.run(serve_until_signalled())
    return 0


if __name__ == "__main__":
    sys.exit(main())
