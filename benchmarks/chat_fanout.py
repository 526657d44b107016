"""Benchmark conversation fan-out: post → WebSocket receipt, in process and through Redis.

Scenarios, each against real Hypercorn worker processes on 127.0.0.1 and a
SQLite file in a temporary directory:

- ``fanout``: one conversation with 200 participants, each with a WebSocket
  open; one more participant posts messages through the JSON API.
- ``spread``: 1,000 WebSocket connections over 100 conversations of 10.

Each runs with one worker and the in-process bus, and with two workers
sharing a ``redis-server`` started for the run on a free port (sockets
spread over both workers, posts sent to the first). Every worker is its own
process served the way ``lotse serve`` serves (``cli._serve``: Hypercorn,
its WebSocket settings, ``gc.freeze`` after start-up); the clients run in
this process, never in a server's. Reported:

- delivery latency p50/p99: from just before the POST is sent to the
  arrival of the ``message.posted`` event on each socket (one clock, this
  process's monotonic ``perf_counter``); one message at a time;
- sustained messages/s: messages posted by 8 concurrent posters until every
  socket has received every one of them, and the deliveries/s that makes;
- memory per idle connection: the growth of the server processes' resident
  memory (VmRSS) from after a warm-up (sockets opened and closed, a pause) to
  after the sockets connected and settled, divided by the sockets.

    python benchmarks/chat_fanout.py [--quick] [--json out.json] [--limit SECONDS]

Targets (2-core machine): p99 under 100 ms at 200 recipients; under 100 KB
of server memory per idle connection; the table shows the ratio to each
(below 1.0 meets it). The clients share the machine's two cores with the
servers, so latency is an upper bound on what the server alone costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import websockets  # noqa: E402

from lotse.platform.accounts.models import Role  # noqa: E402
from lotse.platform.accounts.sessions import start_session  # noqa: E402
from lotse.platform.actions import Services  # noqa: E402
from lotse.platform.clock import SystemClock  # noqa: E402
from lotse.platform.config import Settings  # noqa: E402
from lotse.platform.conversations.actions import do_start_conversation  # noqa: E402
from lotse.platform.db import close_db, init_db  # noqa: E402
from lotse.platform.events import InProcessBus  # noqa: E402
from lotse.platform.permissions import Actor  # noqa: E402
from lotse.platform.web import SESSION_COOKIE  # noqa: E402
from tests.factories import make_account, make_org  # noqa: E402
from tests.platform.conversations.workers import RedisServer, Worker, redis_available  # noqa: E402

TARGET_P99_MS = 100.0
TARGET_KB_PER_CONNECTION = 100.0
SECRET = "chat-fanout-benchmark"  # noqa: S105 (a throwaway key for a temporary data directory)


class ServedWorker(Worker):
    """A worker process started through ``cli._serve``, as ``lotse serve`` runs in production."""

    def start(self) -> ServedWorker:
        import subprocess

        self.log_path = Path(self.env["LOTSE_DATA_DIR"]) / f"worker-{self.port}.log"
        self._log = self.log_path.open("wb")
        code = f"from lotse.platform.cli import _serve; _serve('127.0.0.1', {self.port}, banner=lambda url: None)"
        self.process = subprocess.Popen([sys.executable, "-c", code], env=self.env, stdout=subprocess.DEVNULL,
                                        stderr=self._log, cwd=str(Path(self.env["LOTSE_DATA_DIR"]).parent))
        self.wait_until_serving()
        return self


def rss_kb(pid: int) -> int:
    """Resident memory of a process and its children (Hypercorn serves from a child process)."""
    total = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            total += int(line.split()[1])
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        total += sum(rss_kb(int(child)) for child in children)
    return total


async def seed(settings: Settings, groups: int, size: int) -> list[dict[str, Any]]:
    """Create ``groups`` conversations of ``size`` listeners plus one poster each; return keys."""
    await init_db(settings.database_url)
    try:
        svc = Services(settings=settings, clock=SystemClock(), bus=InProcessBus(), translations=None)  # type: ignore[arg-type]
        org = await make_org(svc)
        out = []
        for _ in range(groups):
            poster = await make_account(svc, org, Role.THERAPIST, password=None)
            listeners = [await make_account(svc, org, Role.SECRETARY, password=None) for _ in range(size)]
            conversation = await do_start_conversation(svc, Actor.of(poster), subject="Benchmark",
                                                       participants=listeners)
            out.append({
                "conversation": conversation.id,
                "poster": await start_session(poster, svc.now(), pending_two_factor=False),
                "listeners": [await start_session(p, svc.now(), pending_two_factor=False) for p in listeners],
            })
        return out
    finally:
        await close_db()


class Listener:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.arrivals: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Future[None]] = {}

    async def run(self) -> None:
        async for raw in self.ws:
            event = json.loads(raw)
            if event.get("event") == "message.posted":
                now = time.perf_counter()
                self.arrivals[event["body"]] = now


async def connect(url: str, key: str, conversation: int) -> Listener:
    socket_url = url.replace("http", "ws") + f"/conversations/ws?conversation={conversation}"
    ws = await websockets.connect(socket_url, origin=url, additional_headers={"Cookie": f"{SESSION_COOKIE}={key}"},
                                  max_queue=None, ping_interval=None)
    await ws.recv()  # hello
    return Listener(ws)


async def wait_for(listeners: list[Listener], bodies: list[str], limit: float = 60) -> None:
    deadline = time.perf_counter() + limit
    while time.perf_counter() < deadline:
        if all(all(b in listener.arrivals for b in bodies) for listener in listeners):
            return
        await asyncio.sleep(0.002)
    raise TimeoutError("not every message arrived")


async def scenario(name: str, groups: int, size: int, workers: int, quick: bool) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="lotse-chat-"))
    data_dir = tmp / "var"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite://{data_dir / 'lotse.sqlite3'}", secret_key=SECRET)
    seeded = await seed(settings, groups, size)
    redis = RedisServer().start() if workers > 1 else None
    procs = [ServedWorker(data_dir, redis.url if redis else None, SECRET, "http://127.0.0.1").start()
             for _ in range(workers)]
    result: dict[str, Any] = {"scenario": name, "workers": workers, "bus": "redis" if redis else "in-process",
                              "conversations": groups, "sockets": groups * size}
    tasks: list[asyncio.Task[None]] = []
    try:
        # Warm-up: the first sockets load code and fill caches that later ones share.
        warm = [await connect(w.url, seeded[0]["listeners"][0], seeded[0]["conversation"]) for w in procs for _ in range(3)]
        for listener in warm:
            await listener.ws.close()
        await asyncio.sleep(1.0)
        before = sum(rss_kb(w.process.pid) for w in procs)  # type: ignore[union-attr]
        listeners_by_group: list[list[Listener]] = []
        n = 0
        for group in seeded:
            group_listeners = []
            for key in group["listeners"]:
                worker = procs[n % len(procs)]
                n += 1
                group_listeners.append(await connect(worker.url, key, group["conversation"]))
            listeners_by_group.append(group_listeners)
        all_listeners = [listener for group in listeners_by_group for listener in group]
        tasks = [asyncio.create_task(listener.run()) for listener in all_listeners]
        await asyncio.sleep(2.0)
        after = sum(rss_kb(w.process.pid) for w in procs)  # type: ignore[union-attr]
        result["memory_per_idle_connection_kb"] = round((after - before) / len(all_listeners), 1)

        clients = [httpx.AsyncClient(base_url=procs[0].url, cookies={SESSION_COOKIE: g["poster"]}, timeout=60)
                   for g in seeded]
        # Latency: one message at a time, rotating over the conversations.
        latencies: list[float] = []
        rounds = 20 if quick else 60
        for i in range(rounds):
            g = i % len(seeded)
            body = f"lat-{i}"
            sent = time.perf_counter()
            response = await clients[g].post(f"/api/v1/conversations/{seeded[g]['conversation']}/messages",
                                              json={"body": body})
            response.raise_for_status()
            await wait_for(listeners_by_group[g], [body])
            latencies += [(listener.arrivals[body] - sent) * 1000 for listener in listeners_by_group[g]]
        latencies.sort()
        result["latency_p50_ms"] = round(statistics.median(latencies), 1)
        result["latency_p99_ms"] = round(latencies[int(len(latencies) * 0.99) - 1], 1)

        # Throughput: 8 concurrent posters.
        total = 80 if quick else 240
        bodies = [f"tp-{i}" for i in range(total)]
        queue: asyncio.Queue[int] = asyncio.Queue()
        for i in range(total):
            queue.put_nowait(i)

        async def poster() -> None:
            while not queue.empty():
                i = queue.get_nowait()
                g = i % len(seeded)
                response = await clients[g].post(f"/api/v1/conversations/{seeded[g]['conversation']}/messages",
                                                  json={"body": bodies[i]})
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(poster() for _ in range(8)))
        for g, group in enumerate(listeners_by_group):
            await wait_for(group, [b for i, b in enumerate(bodies) if i % len(seeded) == g], limit=120)
        elapsed = time.perf_counter() - start
        result["messages_per_s"] = round(total / elapsed, 1)
        result["deliveries_per_s"] = round(total * size / elapsed, 1)
        for client in clients:
            await client.aclose()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for w in procs:
            w.stop()
        if redis:
            redis.stop()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer messages")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--limit", type=float, default=300, help="seconds at most per scenario (default 300)")
    args = parser.parse_args()
    runs = [("fanout", 1, 200), ("spread", 100, 10)]
    modes = [1, 2] if redis_available() else [1]
    results = []
    for name, groups, size in runs:
        for workers in modes:
            result = await asyncio.wait_for(scenario(name, groups, size, workers, args.quick), args.limit)
            result["p99_to_target"] = round(result["latency_p99_ms"] / TARGET_P99_MS, 2)
            result["memory_to_target"] = round(result["memory_per_idle_connection_kb"] / TARGET_KB_PER_CONNECTION, 2)
            results.append(result)
            print(json.dumps(result), flush=True)
    print()
    print(f"targets: p99 < {TARGET_P99_MS:g} ms, < {TARGET_KB_PER_CONNECTION:g} KB per idle connection "
          "(x target: below 1.0 meets it)")
    print(f"{'scenario':8} {'bus':10} {'sockets':>7} {'p50 ms':>7} {'p99 ms':>7} {'x target':>8} {'msg/s':>7} "
          f"{'deliv/s':>8} {'KB/conn':>8} {'x target':>8}")
    for r in results:
        print(f"{r['scenario']:8} {r['bus']:10} {r['sockets']:>7} {r['latency_p50_ms']:>7} {r['latency_p99_ms']:>7} "
              f"{r['p99_to_target']:>8} {r['messages_per_s']:>7} {r['deliveries_per_s']:>8} "
              f"{r['memory_per_idle_connection_kb']:>8} {r['memory_to_target']:>8}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
