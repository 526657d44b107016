"""Benchmark the media unit: forwarding rooms of 2, 6 and 12, and a decode/re-encode baseline.

The server runs in its own process (``python -m lotse.media.server``); the
clients run in this one. Clients are cheap: their audio (Opus) and 640x480
VP8 video are encoded once before the run and replayed as packets, and they
receive through the tap without decoding. Each video frame is recognised by
its bytes, so the time from the publisher's track handing it to aiortc to the
subscriber's tap completing it is the latency of one publisher → server →
subscriber hop, measured on one machine with one monotonic clock.

Reported per room: server CPU (cores), CPU per forwarded stream-second,
video frames delivered vs sent, hop latency p50/p99, the server's event-loop
lag, and for the baseline (aiortc's MediaRelay: decode once, encode per
subscriber) the same CPU figures and the ratio.

    python benchmarks/call_forwarding.py [--quick] [--sizes 2,6,12] [--json out.json]

Targets (2-core machine): a 12-person audio+video room under 1 core, no
frame loss, hop p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import gc
import json
import os
import random
import secrets
import socket
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from lotse.media.client import CallClient, ReceivedFrame, WebSocketSignalling
from lotse.media.forwarding import Publication, Source
from lotse.media.room import Room, RoomSettings, _Participant
from lotse.media.tokens import issue_token

WIDTH, HEIGHT, FPS = 640, 480, 30
CLIP_FRAMES = 300  # 10 s loop: a frame's bytes identify it unambiguously
KEYFRAME_EVERY = 60
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
AUDIO_TIME_BASE = fractions.Fraction(1, 48000)


# -- media encoded once ------------------------------------------------------------
@dataclass(frozen=True)
class Clip:
    video: list[bytes]
    audio: list[bytes]
    index: dict[bytes, int]
    bitrate: float


def encode_clip() -> Clip:
    """Encode a 640x480 moving noise texture (so VP8 spends its bitrate) and an Opus tone."""
    stride = WIDTH + 2 * CLIP_FRAMES
    texture = random.Random(7).randbytes(stride * HEIGHT)
    chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
    encoder = Vp8Encoder()
    video: list[bytes] = []
    for i in range(CLIP_FRAMES):
        shift = 2 * i
        luma = b"".join(texture[row * stride + shift : row * stride + shift + WIDTH] for row in range(HEIGHT))
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(luma)
        frame.planes[1].update(chroma)
        frame.planes[2].update(chroma)
        frame.pts = i * 3000
        frame.time_base = VIDEO_TIME_BASE
        payloads, _ = encoder.encode(frame, force_keyframe=i % KEYFRAME_EVERY == 0)
        video.append(b"".join(vp8_depayload(p) for p in payloads))
    opus = OpusEncoder()
    audio: list[bytes] = []
    for i in range(50):
        samples = bytearray()
        for n in range(960):
            value = int(8000 * ((((i * 960 + n) * 440 * 2 // 48000) % 2) * 2 - 1))
            samples += value.to_bytes(2, "little", signed=True) * 2
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(bytes(samples))
        frame.sample_rate = 48000
        frame.pts = i * 960
        frame.time_base = AUDIO_TIME_BASE
        payloads, _ = opus.encode(frame)
        audio.extend(payloads)
    bitrate = sum(len(v) for v in video) * 8 / (CLIP_FRAMES / FPS)
    index = {data: i for i, data in enumerate(video)}
    if len(index) != len(video):
        raise RuntimeError("clip frames are not unique")
    return Clip(video, audio, index, bitrate)


class ClipTrack(MediaStreamTrack):
    """Replays pre-encoded packets in real time; aiortc's sender only re-packetises them."""

    def __init__(self, kind: str, packets: list[bytes], on_sent: Any = None) -> None:
        super().__init__()
        self.kind = kind
        self.packets = packets
        self.on_sent = on_sent
        self.interval = 1 / FPS if kind == "video" else 0.02
        self.step = 3000 if kind == "video" else 960
        self.time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self.count = 0
        self.start: float | None = None

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.count * self.interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = self.count % len(self.packets)
        packet = av.Packet(self.packets[index])
        packet.pts = self.count * self.step
        packet.time_base = self.time_base
        self.count += 1
        if self.on_sent is not None:
            self.on_sent(index)
        return packet


# -- the decode/re-encode baseline ----------------------------------------------------
class RelayRoom(Room):
    """aiortc's MediaRelay: decode each stream once, encode it again for every subscriber.

    Same signalling and slots as the forwarding room; only the media path
    differs, so the CPU comparison is fair.
    """

    relay = MediaRelay()

    def _publish(self, participant: _Participant, source: Source, receiver: Any) -> Publication:
        publication = Publication(participant.id, source, lambda: False)
        publication.remote_track = receiver.track  # type: ignore[attr-defined]
        return publication

    def _reconcile(self, exclude: _Participant | None = None) -> None:
        super()._reconcile(exclude)
        for participant in self._participants.values():
            for transceiver in participant.pc.getTransceivers():
                slot = next((s for s in participant.slots if s.mid == transceiver.mid), None)
                if slot is None:
                    continue
                wanted = getattr(slot.source, "remote_track", None)
                current = getattr(transceiver.sender, "_relay_source", None)
                if wanted is not current:
                    transceiver.sender.replaceTrack(self.relay.subscribe(wanted) if wanted else slot)
                    transceiver.sender._relay_source = wanted


# -- one measured room ------------------------------------------------------------------
@dataclass
class Tally:
    sends: dict[tuple[str, int], float] = field(default_factory=dict)  # (publisher, clip index) -> last send time
    sent_in_window: dict[str, int] = field(default_factory=dict)
    delivered_in_window: int = 0
    received_in_window: int = 0  # by receive time (the baseline's frames are re-encoded)
    audio_in_window: int = 0
    latencies: list[float] = field(default_factory=list)
    window: tuple[float, float] = (float("inf"), float("inf"))

    def in_window(self, t: float) -> bool:
        return self.window[0] <= t < self.window[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def machine_busy() -> float:
    """Return busy CPU seconds of the whole machine (all cores) from /proc/stat."""
    with open("/proc/stat") as stat:
        values = [int(v) for v in stat.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_server(
    relay: bool, cap: int, secret: str
) -> tuple[asyncio.subprocess.Process, int, list[dict[str, Any]], asyncio.Future[None]]:
    port = free_port()
    env = {**os.environ, "LOTSE_MEDIA_SECRET": secret}
    if relay:
        args = [sys.executable, __file__, "--serve-relay", str(port), "--cap", str(cap)]
    else:
        args = [sys.executable, "-m", "lotse.media.server", "--port", str(port), "--cap", str(cap), "--stats-interval", "1"]
    process = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.PIPE)
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            with contextlib.suppress(ValueError):
                lines.append({**json.loads(raw), "at": time.monotonic()})

    reader = asyncio.ensure_future(read())
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        await asyncio.sleep(0.1)
    return process, port, lines, reader


async def run_room(n: int, clip: Clip, *, relay: bool, warmup: float, duration: float) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    process, port, lines, _reader = await start_server(relay, max(n, 2), secret)
    tally = Tally()
    clients: list[CallClient] = []
    room = f"bench-{n}-{'relay' if relay else 'fwd'}"

    def on_frame(received: ReceivedFrame) -> None:
        frame = received.frame
        now = frame.received_at
        if received.source == "microphone":
            if tally.in_window(now):
                tally.audio_in_window += 1
            return
        if tally.in_window(now):
            tally.received_in_window += 1
        index = clip.index.get(frame.data)
        if index is None or received.participant is None:
            return
        sent = tally.sends.get((received.participant, index))
        if sent is not None and tally.in_window(sent):
            tally.delivered_in_window += 1
            tally.latencies.append(now - sent)

    try:
        for i in range(n):
            name = f"p{i}"

            def sent(index: int, name: str = name) -> None:
                now = time.monotonic()
                tally.sends[(name, index)] = now
                if tally.in_window(now):
                    tally.sent_in_window[name] = tally.sent_in_window.get(name, 0) + 1

            client = CallClient(
                name,
                cap=max(n, 2),
                microphone=ClipTrack("audio", clip.audio),
                camera=ClipTrack("video", clip.video, sent),
                screen=False,
                keep_frames=False,
                on_frame=on_frame,
            )
            signalling = WebSocketSignalling(
                f"ws://127.0.0.1:{port}/rooms/{room}?token={issue_token(secret.encode(), room, name)}", client.on_push
            )
            await signalling.connect()
            await client.join(signalling)
            clients.append(client)
        gc.collect()
        gc.freeze()
        await asyncio.sleep(warmup)
        start = time.monotonic()
        tally.window = (start, start + duration)
        cpu_start, clients_cpu_start, busy_start = proc_cpu(process.pid), sum(os.times()[:2]), machine_busy()
        await asyncio.sleep(duration)
        cpu_end, clients_cpu_end, busy_end = proc_cpu(process.pid), sum(os.times()[:2]), machine_busy()
        await asyncio.sleep(0.5)  # frames sent at the end of the window are still in flight
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
        gc.unfreeze()
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)

    streams = n * (n - 1) * 2  # audio + video to every other participant
    cpu = cpu_end - cpu_start
    expected = sum(tally.sent_in_window.values()) * (n - 1)
    window_lines = [line for line in lines if start + 1 <= line["at"] <= start + duration + 0.5]
    lags_p99 = [line["loop_lag_ms"]["p99"] for line in window_lines]
    lags_p50 = [line["loop_lag_ms"]["p50"] for line in window_lines]
    lags_max = [line["loop_lag_ms"]["max"] for line in window_lines]
    latencies = sorted(tally.latencies)

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else None

    return {
        "mode": "relay (decode+encode)" if relay else "forward",
        "participants": n,
        "forwarded_streams": streams,
        "server_cores": round(cpu / duration, 3),
        "cpu_ms_per_stream_second": round(cpu * 1000 / (streams * duration), 2),
        "clients_cores": round((clients_cpu_end - clients_cpu_start) / duration, 3),
        # Anything else running on the machine competes with server and clients.
        "other_processes_cores": round(
            (busy_end - busy_start - cpu - (clients_cpu_end - clients_cpu_start)) / duration, 3
        ),
        "machine_cores": os.cpu_count(),
        "video_frames_expected": expected,
        "video_frames_delivered": tally.delivered_in_window if not relay else tally.received_in_window,
        "delivery_ratio": round((tally.delivered_in_window if not relay else tally.received_in_window) / expected, 4) if expected else None,
        "audio_packets_received": tally.audio_in_window,
        "audio_packets_expected": int(duration / 0.02) * n * (n - 1),
        "hop_latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)} if not relay else None,
        "loop_lag_ms": {
            "p50": round(statistics.median(lags_p50), 2) if lags_p50 else None,
            "p99_worst_interval": round(max(lags_p99), 2) if lags_p99 else None,
            "max": round(max(lags_max), 2) if lags_max else None,
        },
    }


# -- server mode for the baseline ------------------------------------------------------
def serve_relay(port: int, cap: int) -> None:
    from lotse.media import server
    from lotse.media.unit import MediaUnit

    unit = MediaUnit(RoomSettings(cap=cap), room_class=RelayRoom)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        import signal

        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await server.run("127.0.0.1", port, unit, os.environ["LOTSE_MEDIA_SECRET"].encode(), stop=stop, stats_interval=1)

    asyncio.run(main())


async def main(args: argparse.Namespace) -> list[dict[str, Any]]:
    started = time.monotonic()
    clip = encode_clip()
    print(f"clip: {CLIP_FRAMES} frames 640x480 VP8 at {clip.bitrate / 1000:.0f} kbps, encoded in {time.monotonic() - started:.1f}s", flush=True)
    warmup, duration = (2.0, 4.0) if args.quick else (3.0, 10.0)
    duration = args.duration or duration
    results = []
    for n in args.sizes:
        result = await run_room(n, clip, relay=False, warmup=warmup, duration=duration)
        print(json.dumps(result), flush=True)
        results.append(result)
    for n in args.relay_sizes:
        result = await run_room(n, clip, relay=True, warmup=warmup, duration=duration / 2)
        print(json.dumps(result), flush=True)
        results.append(result)
    forward = {r["participants"]: r for r in results if r["mode"] == "forward"}
    for r in results:
        if r["mode"] != "forward" and r["participants"] in forward:
            r["cpu_ratio_vs_forward"] = round(r["cpu_ms_per_stream_second"] / forward[r["participants"]]["cpu_ms_per_stream_second"], 1)
    print_table(results)
    print(f"total {time.monotonic() - started:.0f}s", flush=True)
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'mode':<22}{'n':>3}{'streams':>8}{'cores':>7}{'ms/str·s':>9}{'delivered':>16}{'hop p50/p99 ms':>16}{'lag p50/p99 ms':>16}{'ratio':>7}{'others':>8}")
    for r in results:
        latency = r["hop_latency_ms"]
        hop = f"{latency['p50']}/{latency['p99']}" if latency else "-"
        lag = r["loop_lag_ms"]
        delivered = f"{r['video_frames_delivered']}/{r['video_frames_expected']}"
        print(
            f"{r['mode']:<22}{r['participants']:>3}{r['forwarded_streams']:>8}{r['server_cores']:>7}"
            f"{r['cpu_ms_per_stream_second']:>9}{delivered:>16}{hop:>16}"
            f"{str(lag['p50']) + '/' + str(lag['p99_worst_interval']):>16}{r.get('cpu_ratio_vs_forward', ''):>7}"
            f"{r['other_processes_cores']:>8}"
        )
    print("cores: server process; ms/str·s: server CPU per forwarded stream-second; others: cores used by")
    print("unrelated processes during the window (the machine is shared; above ~0.3 the numbers are disturbed)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter warm-up and measurement")
    parser.add_argument("--sizes", default="2,6,12")
    parser.add_argument("--relay-sizes", default="2,3", help="baseline room sizes ('' to skip)")
    parser.add_argument("--duration", type=float, help="measured seconds per forwarding room (default 10, --quick 4)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--serve-relay", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=int, default=12, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_relay:
        serve_relay(arguments.serve_relay, arguments.cap)
        sys.exit(0)
    arguments.sizes = [int(s) for s in arguments.sizes.split(",") if s]
    arguments.relay_sizes = [int(s) for s in arguments.relay_sizes.split(",") if s]
    output = asyncio.run(main(arguments))
    if arguments.json:
        with open(arguments.json, "w") as out:
            json.dump(output, out, indent=2)
