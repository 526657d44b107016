"""Benchmark the media unit: forwarding rooms of 2, 6 and 12, and a decode/re-encode baseline.

The server runs in its own process (``python -m lotse.media.server``); the
clients run in worker processes of their own. Clients are cheap: their audio (Opus) and 640x480
VP8 video are encoded once before the run and replayed as packets, and they
receive through the tap without decoding. Each video frame is recognised by
its bytes, so the time from the publisher's track handing it to aiortc to the
subscriber's tap completing it is the latency of one publisher → server →
subscriber hop, measured on one machine with one monotonic clock.

Reported per room: server CPU (cores), CPU per forwarded stream-second,
video frames delivered vs sent, the latency the hop adds p50/p99 (the
publisher's last packet of a frame on the wire -> the server's last packet of
it to the subscriber on the wire; the target is judged on this), the end-to-end
hop latency p50/p99 (through both clients' stacks too), the server's event-loop
lag, and for the baseline (aiortc's MediaRelay: decode once, encode per
subscriber) the same CPU figures and the ratio. Each hop is also broken down
into four legs from per-frame records (the clients' send loop and the
server's ``--trace-frames``): publisher (track → last packet on the wire),
server in (→ frame complete in the server: socket wait and receive path),
server out (→ its last packet to this subscriber on the wire) and subscriber
(→ complete in the subscriber's tap); the medians, and where the slowest 1 %
of hops spent their time.

``--model`` says when publishers send keyframes. ``independent`` (the
default, and what the target is judged on): each publisher starts at its own
random place in the clip, so keyframes come at independent moments, as
browsers send them (on their own clock, on join, on loss). ``in-step``: all
start at frame 0, so every two seconds all twelve keyframes reach the server
at the same moment: the worst case, reported alongside.

    python benchmarks/call_forwarding.py [--quick] [--sizes 2,6,12] [--relay-sizes 2,3]
        [--model independent|in-step] [--duration S] [--client-processes 2] [--json out.json]

The client peers run in ``--client-processes`` worker processes (default 2),
so that twelve of them do not share one event loop; the server's CPU is its
process CPU time (``/proc/<pid>/stat``) over the measured window.

Targets (2-core machine): a 12-person audio+video room under 1 core, no
frame loss, the latency the hop adds p99 under 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import fractions
import functools
import gc
import json
import os
import random
import secrets
import socket
import statistics
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Any

import av
from aiortc import MediaStreamTrack
from aiortc.codecs.opus import OpusEncoder
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError

from lotse.media import tap
from lotse.media.client import CallClient, ReceivedFrame, WebSocketSignalling
from lotse.media.forwarding import Publication, Source
from lotse.media.monitor import LoopLagMonitor
from lotse.media.room import Room, RoomSettings, _Participant
from lotse.media.tap import ForwardedPacket
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
    checksums: dict[int, int]  # CRC-32 of a frame → its index (the server's frame trace names frames so)
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
    checksums = {zlib.crc32(data): i for i, data in enumerate(video)}
    if len(index) != len(video) or len(checksums) != len(video):
        raise RuntimeError("clip frames are not unique")
    return Clip(video, audio, index, checksums, bitrate)


class ClipTrack(MediaStreamTrack):
    """Replays pre-encoded packets in real time; aiortc's sender only re-packetises them."""

    def __init__(self, kind: str, packets: list[bytes], on_sent: Any = None, offset: int = 0) -> None:
        super().__init__()
        self.kind = kind
        self.packets = packets
        self.on_sent = on_sent
        self.interval = 1 / FPS if kind == "video" else 0.02
        self.step = 3000 if kind == "video" else 960
        self.time_base = VIDEO_TIME_BASE if kind == "video" else AUDIO_TIME_BASE
        self.count = 0
        self.offset = offset  # where in the clip this participant starts
        self.start: float | None = None

    async def recv(self) -> ForwardedPacket:  # type: ignore[override]
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.monotonic()
        due = self.start + self.count * self.interval
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        index = (self.count + self.offset) % len(self.packets)
        now = time.monotonic()
        # What the server's slots hand their senders too: the bytes, no av.Packet copy.
        # ``received_at`` is when the track handed the frame over (the hop's start).
        packet = ForwardedPacket(self.packets[index], self.count * self.step, self.time_base, now)
        self.count += 1
        if self.on_sent is not None:
            self.on_sent(index, now)
        return packet


# -- the decode/re-encode baseline ----------------------------------------------------
class RelayRoom(Room):
    """aiortc's MediaRelay: decode each stream once, encode it again for every subscriber.

    Same signalling and slots as the forwarding room; only the media path
    differs, so the CPU comparison is fair.
    """

    relay = MediaRelay()
    forwarding_sender = False  # the relayed tracks return decoded frames: aiortc's own sender encodes them

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
# The clients run in worker processes of their own (``--client-processes``,
# default 2): twelve client peers receive as much as the server sends, and
# in one process they took most of a core, so their own event-loop delay
# showed up as hop latency. time.monotonic() is one clock for all processes
# of the machine, so a send in one worker and its arrival in another compare.
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
    """Return user + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def start_server(relay: bool, cap: int, secret: str) -> tuple[asyncio.subprocess.Process, int, list[dict[str, Any]]]:
    port = free_port()
    env = {**os.environ, "LOTSE_MEDIA_SECRET": secret}
    if relay:
        args = [sys.executable, __file__, "--serve-relay", str(port), "--cap", str(cap)]
    else:
        args = [sys.executable, "-m", "lotse.media.server", "--port", str(port), "--cap", str(cap), "--stats-interval", "1",
                "--trace-frames"]
    process = await asyncio.create_subprocess_exec(*args, env=env, stdout=asyncio.subprocess.PIPE, limit=1 << 26)
    lines: list[dict[str, Any]] = []

    async def read() -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            with contextlib.suppress(ValueError):
                lines.append({**json.loads(raw), "at": time.monotonic()})

    reader = asyncio.ensure_future(read())
    _background.add(reader)
    reader.add_done_callback(_background.discard)
    for _ in range(100):
        with contextlib.suppress(OSError):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        await asyncio.sleep(0.1)
    return process, port, lines


_background: set[asyncio.Future[None]] = set()


async def client_worker(config: dict[str, Any], stored: dict[str, list[str]]) -> None:
    """One worker process: join its clients, then log sends and arrivals during the window it is given."""
    video = [bytes.fromhex(v) for v in stored["video"]]
    audio = [bytes.fromhex(a) for a in stored["audio"]]
    index = {data: i for i, data in enumerate(video)}
    window = [float("inf"), float("inf")]
    sends: list[tuple[str, int, float]] = []
    wire: list[tuple[str, float, float]] = []  # publisher, track handed the frame over, last packet to the kernel
    arrivals: list[tuple[str, str, int, float]] = []  # subscriber, publisher, clip frame, complete in the tap
    counts = {"video": 0, "audio": 0}
    cameras: dict[int, str] = {}

    def on_frame(subscriber: str, received: ReceivedFrame) -> None:
        frame = received.frame
        now = frame.received_at
        if not window[0] <= now < window[1] + 0.5:
            return
        if received.source == "microphone":
            if now < window[1]:
                counts["audio"] += 1
            return
        if now < window[1]:
            counts["video"] += 1
        found = index.get(frame.data)
        if found is not None and received.participant is not None:
            arrivals.append((subscriber, received.participant, found, now))

    def frame_sent(sender: Any, packet: Any, now: float) -> None:
        name = cameras.get(id(sender))
        if name is not None and window[0] - 1 <= now < window[1] + 0.5:
            wire.append((name, packet.received_at, now))

    tap.frame_sent = frame_sent
    clients: list[CallClient] = []
    for name, video_offset, audio_offset in zip(config["names"], config["video_offsets"], config["audio_offsets"], strict=True):

        def sent(i: int, now: float, name: str = name) -> None:
            # Until the arrivals stop being logged: a frame sent after the window
            # must not be taken for the same clip frame sent one loop earlier.
            if window[0] - 1 <= now < window[1] + 0.5:
                sends.append((name, i, now))

        client = CallClient(
            name,
            cap=config["cap"],
            # Where each publisher starts in the clip (``--model``): independent
            # cameras start anywhere, so their keyframes come at different
            # moments; in step, all start at frame 0 and every keyframe
            # (every KEYFRAME_EVERY frames) passes the server at the same moment.
            microphone=ClipTrack("audio", audio, offset=audio_offset),
            camera=ClipTrack("video", video, sent, offset=video_offset),
            screen=False,
            keep_frames=False,
            on_frame=functools.partial(on_frame, name),
            estimate_bandwidth=False,  # cheaper clients; the server's forwarding ignores REMB anyway
            # The server's lean send loop (the clip is already packets). Not against the
            # baseline: there the relay room passed on only half the frames (not
            # investigated: point to point, aiortc's own receiver decodes every frame
            # of it); the baseline keeps aiortc's own sender, as it was measured with.
            forwarding_sender=config["lean_sender"],
        )
        cameras[id(client.sender("camera"))] = name
        token = issue_token(config["secret"].encode(), config["room"], name)
        signalling = WebSocketSignalling(f"ws://127.0.0.1:{config['port']}/rooms/{config['room']}?token={token}", client.on_push)
        await signalling.connect()
        await client.join(signalling)
        clients.append(client)
    gc.collect()
    gc.freeze()
    print(json.dumps({"joined": len(clients)}), flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    window[0], window[1] = json.loads(await reader.readline())
    await asyncio.sleep(max(0.0, window[0] - time.monotonic()))
    cpu_start = sum(os.times()[:2])
    monitor = LoopLagMonitor()
    monitor.start()
    await asyncio.sleep(max(0.0, window[1] - time.monotonic()))
    cpu = sum(os.times()[:2]) - cpu_start
    lag = monitor.summary()
    await monitor.stop()
    await asyncio.sleep(0.5)  # frames sent at the end of the window are still in flight
    print(json.dumps({"cpu": cpu, "sends": sends, "wire": wire, "arrivals": arrivals, "counts": counts,
                      "loop_lag_p99_ms": lag.p99_ms}), flush=True)
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), 5)


async def run_room(
    n: int, clip_path: str, *, relay: bool, warmup: float, duration: float, processes: int, model: str,
    checksums: dict[int, int],
) -> dict[str, Any]:
    secret = secrets.token_hex(16)
    cap = max(n, 2)
    process, port, lines = await start_server(relay, cap, secret)
    room = f"bench-{n}-{'relay' if relay else 'fwd'}"
    names = [f"p{i}" for i in range(n)]
    # Independent cameras: each publisher starts at its own place in the clip, so
    # keyframes come at different moments, as they do from browsers (which send
    # them every few seconds or on request, each on its own clock). In step:
    # all start at frame 0 and every keyframe passes the server at the same moment.
    chance = random.Random(n)
    if model == "in-step":
        video_offsets, audio_offsets = [0] * n, [0] * n
    else:
        video_offsets = [chance.randrange(CLIP_FRAMES) for _ in names]
        audio_offsets = [chance.randrange(50) for _ in names]
    groups = [list(range(n))[i::processes] for i in range(min(processes, n))]
    workers: list[asyncio.subprocess.Process] = []
    try:
        for group in groups:
            config = {"port": port, "secret": secret, "room": room, "names": [names[i] for i in group], "cap": cap,
                      "clip": clip_path, "size": n, "video_offsets": [video_offsets[i] for i in group],
                      "audio_offsets": [audio_offsets[i] for i in group], "lean_sender": not relay}
            workers.append(await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--client-worker", json.dumps(config),
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=1 << 28))
        for worker in workers:
            assert worker.stdout is not None
            joined = await asyncio.wait_for(worker.stdout.readline(), 120)
            if not joined:
                raise RuntimeError("a client worker failed to join")
        await asyncio.sleep(warmup)
        start = time.monotonic() + 0.2
        end = start + duration
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write(json.dumps([start, end]).encode() + b"\n")
            await worker.stdin.drain()
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        cpu_start, busy_start = proc_cpu(process.pid), machine_busy()
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        cpu_end, busy_end = proc_cpu(process.pid), machine_busy()
        load = os.getloadavg()[0]
        reports = []
        for worker in workers:
            assert worker.stdout is not None
            reports.append(json.loads(await asyncio.wait_for(worker.stdout.readline(), 60)))
    finally:
        for worker in workers:
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await asyncio.wait_for(worker.wait(), 15)
            with contextlib.suppress(ProcessLookupError):
                worker.kill()
        process.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 10)
        # The server prints its frame trace as it stops: read to the end.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*_background), 10)

    sends: dict[tuple[str, int], list[float]] = {}
    sent_in_window = 0
    for report in reports:
        for name, index, at in report["sends"]:
            sends.setdefault((name, index), []).append(at)
            sent_in_window += start <= at < end
    for times in sends.values():
        times.sort()
    latencies: list[float] = []
    hops: list[tuple[str, str, int, float, float]] = []  # subscriber, publisher, clip frame, sent, arrived
    delivered = 0
    for report in reports:
        for subscriber, publisher, index, at in report["arrivals"]:
            times = sends.get((publisher, index), [])
            position = bisect.bisect_right(times, at)
            if position and start <= times[position - 1] < end:
                delivered += 1
                latencies.append(at - times[position - 1])
                hops.append((subscriber, publisher, index, times[position - 1], at))
    breakdown = None if relay else break_down(hops, reports, lines, checksums)
    received_video = sum(r["counts"]["video"] for r in reports)
    clients_cpu = sum(r["cpu"] for r in reports)
    streams = n * (n - 1) * 2  # audio + video to every other participant
    cpu = cpu_end - cpu_start
    expected = sent_in_window * (n - 1)
    window_lines = [line for line in lines if start + 1 <= line["at"] <= end + 0.5]
    lags_p99 = [line["loop_lag_ms"]["p99"] for line in window_lines]
    lags_p50 = [line["loop_lag_ms"]["p50"] for line in window_lines]
    lags_max = [line["loop_lag_ms"]["max"] for line in window_lines]
    gcs = [line["gc"] for line in window_lines if line.get("gc")]
    delays = [line["forwarding_delay_ms"] for line in window_lines if line.get("forwarding_delay_ms", {}).get("frames")]
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 2) if latencies else None

    # Server CPU per frame it forwarded (audio and video), from its own stats lines
    # around the window: comparable between runs even when a loaded machine
    # made the server forward less than it should have.
    # (The last lines may come after the clients left: a room's counters then read 0.)
    inside = [line for line in lines if start <= line["at"] <= end + 1
              and sum(r["frames_out"] for r in line.get("rooms", {}).values())]
    per_frame = None
    if len(inside) >= 2:
        first, last = inside[0], inside[-1]
        frames = sum(r["frames_out"] for r in last["rooms"].values()) - sum(r["frames_out"] for r in first["rooms"].values())
        if frames > 0:
            per_frame = round((last["cpu"] - first["cpu"]) * 1e6 / frames, 1)
    got = received_video if relay else delivered
    return {
        "mode": "relay (decode+encode)" if relay else "forward",
        "participants": n,
        "forwarded_streams": streams,
        "seconds": duration,
        "server_cores": round(cpu / duration, 3),
        "cpu_ms_per_stream_second": round(cpu * 1000 / (streams * duration), 2),
        "cpu_us_per_forwarded_frame": per_frame,
        "client_processes": len(workers),
        "clients_cores": round(clients_cpu / duration, 3),
        # The clients' own event loops delay what they receive (and so the hop latency).
        "clients_loop_lag_p99_ms": round(max(r["loop_lag_p99_ms"] for r in reports), 2),
        # Anything else running on the machine competes with server and clients.
        "other_processes_cores": round((busy_end - busy_start - cpu - clients_cpu) / duration, 3),
        "machine_cores": os.cpu_count(),
        "load_1min": round(load, 2),
        "video_frames_expected": expected,
        "video_frames_delivered": got,
        "delivery_ratio": round(got / expected, 4) if expected else None,
        "audio_packets_received": sum(r["counts"]["audio"] for r in reports),
        "audio_packets_expected": int(duration / 0.02) * n * (n - 1),
        "model": model,
        "hop_latency_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0)} if not relay else None,
        "hop_breakdown_ms": breakdown,
        # Inside the server: a frame complete on arrival → its last packet handed to the kernel
        # (median of the per-second p50s, worst per-second p99); the forwarding loop only.
        "server_delay_ms": {
            "p50": round(statistics.median(d["p50"] for d in delays), 2) if delays else None,
            "p99_worst_interval": max(d["p99"] for d in delays) if delays else None,
        },
        "server_gc": {
            "full_collections": sum(g["count"][2] for g in gcs),
            "collections_per_generation": [sum(g["count"][i] for g in gcs) for i in range(3)],
            "longest_ms_per_generation": [max((g["max_ms"][i] for g in gcs), default=None) for i in range(3)],
            "longest_ms": max((max(g["max_ms"]) for g in gcs), default=None),
            "ms_per_second": round(sum(sum(g["total_ms"]) for g in gcs) / max(1, len(gcs)), 2),
        },
        "loop_lag_ms": {
            "p50": round(statistics.median(lags_p50), 2) if lags_p50 else None,
            "p99_worst_interval": round(max(lags_p99), 2) if lags_p99 else None,
            "max": round(max(lags_max), 2) if lags_max else None,
            "max_per_interval": lags_max,
        },
    }


def break_down(
    hops: list[tuple[str, str, int, float, float]],
    reports: list[dict[str, Any]],
    lines: list[dict[str, Any]],
    checksums: dict[int, int],
) -> dict[str, Any] | None:
    """Split each hop into its four legs, from the clients' and the server's per-frame records.

    publisher: the track hands the frame over → its last packet handed to the
    kernel (the publisher's sender and event loop); server in: → the frame is
    complete in the server (the packets wait in the socket for the server's
    loop, then go through its receive path); server out: → its last packet to
    this subscriber handed to the kernel; subscriber: → complete in the
    subscriber's tap (its loop and receive path). On loopback the kernel
    hands a packet over at once, so the four legs add up to the hop.
    """
    wire = {(name, sent): on_wire for report in reports for name, sent, on_wire in report["wire"]}
    forwarded: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for line in lines:
        for subscriber, publisher, checksum, complete, out in line.get("trace", ()):
            index = checksums.get(checksum)
            if index is not None:
                forwarded.setdefault((subscriber, publisher, index), []).append((out, complete))
    for records in forwarded.values():
        records.sort()
    legs: list[tuple[float, float, float, float, float, bool]] = []
    for subscriber, publisher, index, sent, arrived in hops:
        on_wire = wire.get((publisher, sent))
        records = forwarded.get((subscriber, publisher, index), [])
        position = bisect.bisect_right(records, (arrived, float("inf")))
        if on_wire is None or not position:
            continue
        out, complete = records[position - 1]
        if not sent <= on_wire <= complete <= out <= arrived:
            continue
        legs.append((arrived - sent, on_wire - sent, complete - on_wire, out - complete, arrived - out,
                     index % KEYFRAME_EVERY == 0))
    if not legs:
        return None
    legs.sort()
    tail = legs[int(0.99 * len(legs)):]
    # What the hop adds: the publisher's last packet on the wire -> the server's last packet of the
    # frame to this subscriber on the wire (server in + server out). A direct connection between the
    # two would have the publisher and subscriber legs too.
    added = sorted(row[2] + row[3] for row in legs)

    def added_at(q: float) -> float:
        return round(added[min(len(added) - 1, int(q * len(added)))] * 1000, 2)

    def mean(rows: list[tuple[float, float, float, float, float, bool]], column: int) -> float:
        return round(statistics.fmean(row[column] for row in rows) * 1000, 2)

    names = ("hop", "publisher", "server_in", "server_out", "subscriber")
    return {
        "frames": len(legs),
        "added": {"p50": added_at(0.5), "p99": added_at(0.99), "max": added_at(1.0)},
        "median": {name: round(statistics.median(row[i] for row in legs) * 1000, 2) for i, name in enumerate(names)},
        # The slowest 1 % of hops: where their time went (means), and how many were keyframes.
        "p99_tail_mean": {name: mean(tail, i) for i, name in enumerate(names)},
        "p99_tail_keyframes": round(sum(row[5] for row in tail) / len(tail), 3),
        "keyframes_mean": {name: mean([r for r in legs if r[5]], i) for i, name in enumerate(names)}
        if any(r[5] for r in legs) else None,
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
    with tempfile.NamedTemporaryFile("w", suffix=".json") as stored:
        json.dump({"video": [v.hex() for v in clip.video], "audio": [a.hex() for a in clip.audio]}, stored)
        stored.flush()
        runs = [(n, False) for n in args.sizes] + [(n, True) for n in args.relay_sizes]
        for n, relay in runs:
            result = await run_room(n, stored.name, relay=relay, warmup=warmup,
                                    duration=duration / 2 if relay else duration, processes=args.client_processes,
                                    model=args.model, checksums=clip.checksums)
            print(json.dumps(result), flush=True)
            results.append(result)
    forward = {r["participants"]: r for r in results if r["mode"] == "forward"}
    for r in results:
        smaller = [n for n in forward if n <= r["participants"]]
        if r["mode"] != "forward" and smaller:
            reference = forward[max(smaller)]
            r["cpu_ratio_vs_forward"] = round(r["cpu_ms_per_stream_second"] / reference["cpu_ms_per_stream_second"], 1)
            r["ratio_against_forward_size"] = reference["participants"]
    print_table(results)
    print(f"total {time.monotonic() - started:.0f}s", flush=True)
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    print()
    print(f"{'mode':<22}{'n':>3}{'streams':>8}{'cores':>7}{'ms/str·s':>9}{'delivered':>16}{'added p50/p99':>15}"
          f"{'hop p50/p99':>15}{'server p50/p99':>16}{'lag p99':>8}{'ratio':>6}{'clients':>8}{'c.lag':>7}{'others':>7}{'load':>6}")
    for r in results:
        latency = r["hop_latency_ms"]
        hop = f"{latency['p50']}/{latency['p99']}" if latency else "-"
        parts = r.get("hop_breakdown_ms")
        added = f"{parts['added']['p50']}/{parts['added']['p99']}" if parts else "-"
        inside = r["server_delay_ms"]
        server = f"{inside['p50']}/{inside['p99_worst_interval']}" if inside["p50"] is not None else "-"
        delivered = f"{r['video_frames_delivered']}/{r['video_frames_expected']}"
        print(
            f"{r['mode']:<22}{r['participants']:>3}{r['forwarded_streams']:>8}{r['server_cores']:>7}"
            f"{r['cpu_ms_per_stream_second']:>9}{delivered:>16}{added:>15}{hop:>15}{server:>16}"
            f"{r['loop_lag_ms']['p99_worst_interval']!s:>8}{r.get('cpu_ratio_vs_forward', ''):>6}"
            f"{r['clients_cores']:>8}{r['clients_loop_lag_p99_ms']:>7}{r['other_processes_cores']:>7}{r['load_1min']:>6}"
        )
    print("cores: server process CPU / wall. ms/str·s: server CPU per forwarded stream-second. delivered: video")
    print("frames sent in the window that reached each other participant (baseline: frames received). added: ms the")
    print("forwarding hop adds to a frame (publisher's last packet on the wire -> the server's last packet of it to")
    print("this subscriber on the wire). hop: ms from the publisher's sender to the subscriber's tap, end to end")
    print("through both clients' stacks (which share this machine's cores with the server). server: ms a")
    print("frame spends in the server (complete on arrival -> last packet to the kernel; worst 1-s p99). lag p99:")
    print("the server's event-loop lag, worst 1-s interval. ratio: baseline CPU per stream-second over forwarding's")
    print("(same size, else the next smaller). clients: cores of the client processes; c.lag: their worst event-loop")
    print("lag p99 (ms), which the hop latency includes. others: cores used by")
    print("unrelated processes (the machine is shared). load: 1-minute load average at the end of the window.")
    for r in results:
        parts = r.get("hop_breakdown_ms")
        if parts:
            def legs(values: dict[str, float]) -> str:
                return " + ".join(f"{name} {values[name]}" for name in ("publisher", "server_in", "server_out", "subscriber"))

            print(f"{r['mode']} n={r['participants']} ({r['model']}): hop = {legs(parts['median'])} ms (medians);"
                  f" slowest 1 %: {parts['p99_tail_mean']['hop']} ms = {legs(parts['p99_tail_mean'])}"
                  f" ({parts['p99_tail_keyframes']:.0%} keyframes)")
    for r in results:
        busy = r["server_cores"] + r["clients_cores"] + r["other_processes_cores"]
        if busy > 0.9 * (r["machine_cores"] or 1):
            print(f"! {r['mode']} n={r['participants']}: the machine was saturated ({busy:.2f} of {r['machine_cores']} cores busy,"
                  f" {r['other_processes_cores']} by other processes); the server may have waited for CPU, rerun on a quiet machine")
    forward = [r for r in results if r["mode"] == "forward" and r["participants"] == 12]
    for r in forward:
        parts = r.get("hop_breakdown_ms")
        added_p99 = parts["added"]["p99"] if parts else None
        met = (r["server_cores"] < 1 and r["video_frames_delivered"] == r["video_frames_expected"]
               and added_p99 is not None and added_p99 < 20)
        print(f"target (12 people: < 1 core, no frame loss, latency the hop adds p99 < 20 ms): {'met' if met else 'NOT met'}"
              f" ({r['server_cores']} cores, {r['video_frames_delivered']}/{r['video_frames_expected']} frames,"
              f" added p99 {added_p99} ms; end to end through both clients p99 {r['hop_latency_ms']['p99']} ms)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter warm-up and measurement")
    parser.add_argument("--sizes", default="2,6,12")
    parser.add_argument("--relay-sizes", default="2,3", help="baseline room sizes ('' to skip)")
    parser.add_argument("--duration", type=float, help="measured seconds per forwarding room (default 10, --quick 4)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--model", choices=["independent", "in-step"], default="independent",
                        help="independent cameras (each publisher starts at a random place in the clip; the default)"
                             " or all in step (every keyframe at the same moment: the worst case)")
    parser.add_argument("--client-processes", type=int, default=2, help="processes the client peers are spread over")
    parser.add_argument("--serve-relay", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-worker", help=argparse.SUPPRESS)
    parser.add_argument("--cap", type=int, default=12, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_relay:
        serve_relay(arguments.serve_relay, arguments.cap)
        sys.exit(0)
    if arguments.client_worker:
        config = json.loads(arguments.client_worker)
        with open(config["clip"]) as stored:
            asyncio.run(client_worker(config, json.load(stored)))
        sys.exit(0)
    arguments.sizes = [int(s) for s in arguments.sizes.split(",") if s]
    arguments.relay_sizes = [int(s) for s in arguments.relay_sizes.split(",") if s]
    output = asyncio.run(main(arguments))
    if arguments.json:
        with open(arguments.json, "w") as out:
            json.dump(output, out, indent=2)
