"""Help sessions under load: simulated people walking a flow over HTTP against a served instance on SQLite.

    .venv/bin/python benchmarks/help_sessions.py [--users 200] [--think 5] [--ramp 60] [--workers 1]
                                                 [--keep-alive 75] [--flow video-call-readiness] [--keep DIR]

What it does, in a temporary data directory:

1. seeds one organisation with ``--users`` application admins (already signed
   in: their browser sessions are written directly, no argon2) and as many
   deactivated therapists, one per admin;
2. starts Lotse in ``--workers`` separate processes (Hypercorn, the app as
   ``lotse serve`` builds it, ``gc.freeze`` after start-up as it does, the
   shipped ``flows/``) sharing one listening socket on 127.0.0.1. Idle
   connections stay open ``--keep-alive`` seconds (Hypercorn's default of 5 s
   closes them between two clicks, and a request racing that close failed);
3. lets every admin walk ``video-call-readiness`` through the runner pages
   exactly as a browser without JavaScript does: the start form, then per step
   one POST answered with the next page. The path: the therapist's account is
   answered from platform data (deactivated) → confirm the reactivation (a
   real action, audited) → the therapist can sign in → the therapist creates
   the client account → read the instructions → write a message → confirm
   the task for the therapist (a real action) → the client can sign in →
   ready. People turn up at random within ``--ramp`` seconds (``--ramp 0``:
   within twice the think time, the earlier model, which puts every start into
   the first seconds) and wait ``--think`` seconds (± 50 %) between clicks, as
   people read; ``--think 0`` hammers the server instead;
4. prints the exact command and settings, the load average before, during
   and after, p50 / p95 / p99 per step and per step kind (action steps with a
   confirmation, simple steps, the start), the throughput, the errors, the
   server's CPU seconds per request, the same percentiles measured inside the
   server (without the network and the client), and checks the effects (every
   therapist active, every session resolved, one task per session).

It is a benchmark, not a test: nothing fails on a slow number.

Two workers (``--workers 2``) share the SQLite file: Lotse begins its
transactions with ``BEGIN IMMEDIATE`` and waits for the other process's write
lock (``lotse.platform.sqlite``), so a read-then-write transaction no longer
fails with "database is locked" when the other worker committed in between.

The simulated people speak HTTP/1.1 through a small client of their own
(``Browser``: one kept-alive connection per person, its cookies, the response
read by its length); httpx, used before, cost about 3 ms of CPU per request
in this process, on the same two cores as the server.

Numbers: see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import random
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PREFERRED_OPTIONS = ("yes", "therapist", "therapist-creates", "by-therapist")


# -- seeding -------------------------------------------------------------------------------


async def seed(database_url: str, users: int) -> list[tuple[str, int]]:
    """Create admins (with signed-in sessions) and deactivated therapists; return (session key, therapist id)."""
    from tortoise.transactions import in_transaction

    from lotse.platform.accounts.models import Account, AccountStatus, Role
    from lotse.platform.accounts.sessions import start_session
    from lotse.platform.db import close_db, init_db
    from lotse.platform.organisations.models import Organisation

    await init_db(database_url)
    try:
        now = datetime.now(UTC)
        organisation = await Organisation.create(slug="bench", name="Benchmark Care", created_at=now)

        def account(role: Role, n: int, **extra: object) -> Account:
            return Account(organisation=organisation, role=role, email=f"{role.value}{n}@bench.example",
                           first_name=f"Eva{n}", last_name="Jansen", pseudonym=secrets.token_hex(8),
                           password_hash="unused", created_at=now, updated_at=now, **extra)  # noqa: S106

        async with in_transaction():
            await Account.bulk_create([account(Role.APP_ADMIN, n) for n in range(users)])
            await Account.bulk_create([account(Role.THERAPIST, n, status=AccountStatus.DEACTIVATED,
                                               last_login_at=now) for n in range(users)])
        admins = await Account.filter(role=Role.APP_ADMIN).order_by("id")
        therapists = await Account.filter(role=Role.THERAPIST).order_by("id").values_list("id", flat=True)
        keys = [await start_session(admin, now, pending_two_factor=False) for admin in admins]
        return list(zip(keys, therapists, strict=True))  # type: ignore[arg-type]
    finally:
        await close_db()


# -- the server, in its own process -----------------------------------------------------------


def serve(fd: int, keep_alive: float) -> None:
    """One server worker: Hypercorn on the listening socket the parent opened (``fd``), shared by every worker."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from lotse.platform.app import create_app

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        config = Config()
        config.bind = [f"fd://{fd}"]
        config.accesslog = None
        config.backlog = 1024
        config.keep_alive_timeout = keep_alive
        app = create_app()
        times: list[tuple[str, float, float]] = []
        inner = app.asgi_app

        async def timed(scope: Any, receive: Any, send: Any) -> None:
            # Wall time inside this process, from the request's start to its last byte handed over.
            began = time.perf_counter()
            await inner(scope, receive, send)
            if scope.get("type") == "http":
                times.append((f"{scope['method']} {scope['path'].split('/')[2] if scope['path'].count('/') > 1 else ''}",
                              time.perf_counter() - began, began))

        app.asgi_app = timed  # type: ignore[method-assign]

        @app.before_serving
        async def ready() -> None:  # after the app's own start-up (migrations, database open)
            (Path(os.environ["LOTSE_DATA_DIR"]) / f"ready-{os.getpid()}").touch()

        synchronous = os.environ.get("BENCH_SQLITE_SYNCHRONOUS")
        if synchronous:
            @app.before_serving
            async def relax() -> None:  # only with --sqlite-synchronous: what db.py would set
                from tortoise import connections

                await connections.get("default").execute_script(f"PRAGMA synchronous={synchronous};")

        gc.collect()
        gc.freeze()  # as ``lotse serve`` does
        await hypercorn_serve(app, config, shutdown_trigger=stop.wait)
        (Path(os.environ["LOTSE_DATA_DIR"]) / f"times-{os.getpid()}.json").write_text(json.dumps(times))

    asyncio.run(main())


def process_cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (Linux /proc; 0 elsewhere)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def server_process(data_dir: Path, database_url: str, synchronous: str = "", workers: int = 1,
                   keep_alive: float = 75.0) -> Iterator[tuple[str, list[int]]]:
    """Start ``workers`` server processes on one listening socket; yield (url, their pids)."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    listener.set_inheritable(True)
    port = int(listener.getsockname()[1])
    env = {**os.environ, "BENCH_SQLITE_SYNCHRONOUS": synchronous, "LOTSE_DATA_DIR": str(data_dir), "LOTSE_DATABASE_URL": database_url,
           "LOTSE_BASE_URL": f"http://127.0.0.1:{port}", "LOTSE_FLOWS_DIR": str(REPO / "flows"),
           "LOTSE_LOCALES_DIR": str(REPO / "locales")}
    log = (data_dir / "server.log").open("w")
    processes = []
    for worker in range(workers):
        processes.append(subprocess.Popen(
            [sys.executable, __file__, "--serve", str(listener.fileno()), "--keep-alive", str(keep_alive)],
            env=env, stdout=log, stderr=log, pass_fds=(listener.fileno(),)))
        if worker == 0:
            _wait_until_up(processes, data_dir)  # the first one applies the migrations, alone
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(processes, data_dir)
        yield url, [process.pid for process in processes]
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        listener.close()
        log.close()


def _wait_until_up(processes: list[subprocess.Popen[bytes]], data_dir: Path) -> None:
    """Wait until every started server process has opened the database and serves."""
    deadline = time.monotonic() + 120
    while not all((data_dir / f"ready-{process.pid}").exists() for process in processes):
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"a server stopped (exit {process.returncode}); see {data_dir / 'server.log'}")
        if time.monotonic() > deadline:
            raise SystemExit("the server did not start within 120 s")
        time.sleep(0.1)


# -- one simulated person --------------------------------------------------------------------------

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
STEP = re.compile(r'name="step" value="([^"]+)"')
INPUT = re.compile(r'name="input" value="(continue|choose|submit|tick|confirm)"')
OPTION = re.compile(r'name="option" value="([^"]+)"')
FIELD = re.compile(r'<(?:input|textarea|select)[^>]*name="(f_[^"]+)"[^>]*?(?:type="([a-z]+)")?')
ITEM = re.compile(r'name="(item_[^"]+)"')


def answer(page: str) -> dict[str, str] | None:
    """Return the form a person would send on this runner page (None at the end)."""
    kinds = INPUT.findall(page)
    step = STEP.search(page)
    token = CSRF.search(page)
    if not kinds or step is None or token is None:
        return None
    data = {"csrf_token": token.group(1), "step": step.group(1)}
    kind = "confirm" if "confirm" in kinds else kinds[0]
    data["input"] = kind
    if kind == "choose":
        options = OPTION.findall(page)
        data["option"] = next((o for o in PREFERRED_OPTIONS if o in options), options[0])
    elif kind == "submit":
        for name, kind_attr in FIELD.findall(page):
            data[name] = "someone@example.org" if kind_attr == "email" else "Please set up the client account today."
    elif kind == "tick":
        for name in ITEM.findall(page):
            data[name] = "1"
    return data


class Reply:
    """One HTTP response: status, headers (lower-case names), body text."""

    def __init__(self, status_code: int, headers: dict[str, str], text: str) -> None:
        self.status_code = status_code
        self.headers = headers
        self.text = text


class Browser:
    """A minimal HTTP/1.1 client for one simulated person: one kept-alive connection, its cookies.

    The people used httpx before; its request and response handling cost about
    3 ms of CPU per request in this process, on the same two cores as the
    server it measures. This sends the same requests (a GET, or a POST of a
    urlencoded form, with the cookies a browser would send) over one
    connection per person, as before, and reads the response by its
    Content-Length (or chunks). Redirects are not followed (nor were they).
    """

    def __init__(self, url: str, cookies: dict[str, str], timeout: float = 120) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies = dict(cookies)
        self.timeout = timeout
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def get(self, path: str) -> Reply:
        return await self.request("GET", path)

    async def post(self, path: str, data: dict[str, str]) -> Reply:
        return await self.request("POST", path, urllib.parse.urlencode(data).encode())

    async def request(self, method: str, path: str, body: bytes | None = None) -> Reply:
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}", "Accept: */*"]
        if self.cookies:
            head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        if body is not None:
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        message = ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")
        fresh = self._streams is None
        try:
            return await asyncio.wait_for(self._exchange(message), self.timeout)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            await self.aclose()
            if fresh or (isinstance(error, asyncio.IncompleteReadError) and error.partial):
                raise
            # The server had closed the kept-alive connection and answered nothing: once more on a new one.
            return await asyncio.wait_for(self._exchange(message), self.timeout)

    async def _exchange(self, message: bytes) -> Reply:
        if self._streams is None:
            self._streams = await asyncio.open_connection(self.host, self.port)
        reader, writer = self._streams
        writer.write(message)
        await writer.drain()
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                self._remember(value)
            headers[name] = value
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            body = b"".join(chunks)
        else:
            body = await reader.read()
            await self.aclose()
        if headers.get("connection", "").lower() == "close":
            await self.aclose()
        return Reply(status, headers, body.decode())

    def _remember(self, set_cookie: str) -> None:
        name, _, rest = set_cookie.partition("=")
        value, *attributes = rest.split(";")
        gone = any(a.strip().lower() in ("max-age=0", "max-age=-1") for a in attributes)
        if gone or not value:
            self.cookies.pop(name.strip(), None)
        else:
            self.cookies[name.strip()] = value.strip()

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class Stats:
    """Response times per step, the errors, and the requests sent."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.kinds: dict[str, list[float]] = defaultdict(list)
        self.errors: list[str] = []
        self.requests = 0


async def walk(url: str, key: str, therapist_id: int, flow: str, think: float, arrive_within: float, stats: Stats,
               rng: random.Random) -> tuple[int, str]:
    cookies = {"lotse_session": key, "lotse_lang": "de"}
    http = Browser(url, cookies)
    await asyncio.sleep(rng.uniform(0, arrive_within))  # when this person turns up
    try:
        return await _walk(http, therapist_id, flow, think, stats, rng)
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError, AssertionError, RuntimeError) as error:
        stats.errors.append(f"{type(error).__name__}: {str(error)[:200]}")
        return 0, ""
    finally:
        await http.aclose()


async def _walk(http: Browser, therapist_id: int, flow: str, think: float, stats: Stats,
                rng: random.Random) -> tuple[int, str]:
    began = time.perf_counter()
    start_page = await http.get(f"/help/start/{flow}")
    stats.requests += 1
    stats.times["start page (GET)"].append(time.perf_counter() - began)
    assert start_page.status_code == 200, f"start page: {start_page.status_code}"
    token = CSRF.search(start_page.text)
    assert token, start_page.text[:500]
    if think:
        await asyncio.sleep(rng.uniform(think * 0.5, think * 1.5))
    began = time.perf_counter()
    response = await http.post(f"/help/start/{flow}", data={"csrf_token": token.group(1),
                                                              "in_therapist": str(therapist_id)})
    assert response.status_code == 303, f"start: {response.status_code} {response.text[:300]}"
    location = response.headers["location"]
    page = (await http.get(location)).text
    stats.requests += 2
    stats.times["start (POST + GET)"].append(time.perf_counter() - began)
    steps = 1
    while True:
        data = answer(page)
        if data is None:
            return steps, page
        if think:
            await asyncio.sleep(rng.uniform(think * 0.5, think * 1.5))
        began = time.perf_counter()
        response = await http.post(location.split("#")[0], data=data)
        stats.requests += 1
        if response.status_code == 303:
            page = (await http.get(response.headers["location"])).text
            stats.requests += 1
        else:
            assert response.status_code == 200, f"step {data['step']}: {response.status_code}"
            page = response.text
        took = time.perf_counter() - began
        stats.times[data["step"]].append(took)
        stats.kinds["action steps (confirm)" if data["input"] == "confirm" else "simple steps"].append(took)
        steps += 1
        if steps > 40:
            raise RuntimeError(f"the walk did not end: {data}")


SERVER_NAMES = {"GET start": "start page (GET)", "POST start": "start (POST)", "GET sessions": "session page (GET)",
                "POST sessions": "runner step (POST)"}


def line(name: str, seconds: list[float]) -> str:
    if not seconds:
        return f"{name:<26} n=0"
    ms = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return f"{name:<26} n={len(ms):<5} p50 {cuts[49]:7.1f} ms  p95 {cuts[94]:7.1f} ms  p99 {cuts[98]:7.1f} ms"


async def check_effects(database_url: str, users: int) -> str:
    from lotse.platform.accounts.models import Account, AccountStatus, Role
    from lotse.platform.db import close_db, init_db
    from lotse.platform.help.models import ActionRun, HelpSession
    from lotse.platform.tasks.models import Task

    await init_db(database_url, create=False)
    try:
        active = await Account.filter(role=Role.THERAPIST, status=AccountStatus.ACTIVE).count()
        finished = await HelpSession.filter(outcome="resolved").count()
        runs = await ActionRun.all().count()
        tasks = await Task.all().count()
        failed = await ActionRun.exclude(error=None).count()
        return (f"effects: {active}/{users} therapists active again, {finished}/{users} sessions resolved, "
                f"{runs} action runs ({failed} failed), {tasks} tasks")
    finally:
        await close_db()


async def sample_load(samples: list[float]) -> None:
    while True:
        samples.append(os.getloadavg()[0])
        await asyncio.sleep(5)


async def run(url: str, pids: list[int], pairs: list[tuple[str, int]], args: argparse.Namespace) -> None:
    stats = Stats()
    rng = random.Random(5)
    think = args.think
    arrive_within = args.ramp or think * 2
    # Other processes on the machine slow the server down as much as anything in it: say how busy it was.
    load_before = os.getloadavg()
    loads: list[float] = []
    sampler = asyncio.create_task(sample_load(loads))
    cpu_before = process_cpu_seconds(pids)
    client_before = time.process_time()
    began = time.perf_counter()
    results = await asyncio.gather(*(walk(url, key, tid, args.flow, think, arrive_within, stats,
                                          random.Random(rng.random())) for key, tid in pairs))
    wall = time.perf_counter() - began
    server_cpu = process_cpu_seconds(pids) - cpu_before
    client_cpu = time.process_time() - client_before
    sampler.cancel()
    steps = sum(count for count, _page in results)
    print(f"\ncommand: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"{len(pairs)} people walked {args.flow}, arriving within {arrive_within:g} s, think time {think} s ± 50 %; "
          f"{args.workers} server worker(s) (Hypercorn, keep-alive {args.keep_alive:g} s); SQLite synchronous="
          f"{os.environ.get('BENCH_SQLITE_SYNCHRONOUS') or 'NORMAL (as Lotse sets it, WAL)'}; {os.cpu_count()} CPUs")
    print("load average (1, 5, 15 min) before: {:.2f} {:.2f} {:.2f}, after: {:.2f} {:.2f} {:.2f}".format(
        *load_before, *os.getloadavg()))
    if loads:
        print(f"1-min load average during the run (every 5 s): min {min(loads):.2f}, "
              f"median {statistics.median(loads):.2f}, max {max(loads):.2f}")
    print(f"{steps} steps ({stats.requests} requests) in {wall:.1f} s: {steps / wall:.1f} steps/s, "
          f"{stats.requests / wall:.1f} requests/s; errors: {len(stats.errors)}")
    if server_cpu:
        print(f"server CPU: {server_cpu:.1f} s in all, {1000 * server_cpu / max(stats.requests, 1):.1f} ms per request, "
              f"{server_cpu / wall:.2f} cores on average; the simulated people (this process) {client_cpu / wall:.2f} cores")
    for error in sorted(set(stats.errors))[:5]:
        print(f"  error: {error}")
    print()
    everything: list[float] = []
    for name, seconds in stats.times.items():
        print(line(name, seconds))
        if not name.startswith("start"):
            everything.extend(seconds)
    print()
    for name, seconds in stats.kinds.items():
        print(line(name, seconds))
    print(line("all runner steps", everything))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--think", type=float, default=5.0, help="seconds between clicks, ± 50 %% (default 5)")
    parser.add_argument("--ramp", type=float, default=60.0,
                        help="people turn up at random within this many seconds (default 60; the earlier model, "
                             "everybody within twice the think time, is --ramp 0)")
    parser.add_argument("--workers", type=int, default=1, help="server processes sharing one socket (default 1)")
    parser.add_argument("--keep-alive", type=float, default=75.0,
                        help="seconds the server keeps an idle connection open (Hypercorn's default is 5; "
                             "browsers and proxies keep theirs longer)")
    parser.add_argument("--flow", default="video-call-readiness")
    parser.add_argument("--sqlite-synchronous", default="", choices=["", "NORMAL", "FULL"],
                        help="set SQLite's synchronous pragma in the server (default: as Lotse sets it, NORMAL under WAL)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this directory")
    parser.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve, args.keep_alive)
        return
    if not (REPO / "flows" / f"{args.flow}.yaml").exists():
        raise SystemExit(f"flows/{args.flow}.yaml does not exist")
    with tempfile.TemporaryDirectory() as temp:
        data_dir = args.keep or Path(temp)
        data_dir.mkdir(parents=True, exist_ok=True)
        database_url = f"sqlite://{data_dir / 'lotse.sqlite3'}"
        began = time.perf_counter()
        pairs = asyncio.run(seed(database_url, args.users))
        print(f"seeded {args.users} admins and therapists in {time.perf_counter() - began:.1f} s")
        with server_process(data_dir, database_url, args.sqlite_synchronous, args.workers, args.keep_alive) as (url, pids):
            os.environ["BENCH_SQLITE_SYNCHRONOUS"] = args.sqlite_synchronous
            asyncio.run(run(url, pids, pairs, args))
        print("\nthe same measured inside the server (request start to last byte, without the network and the client):")
        inside: dict[str, list[float]] = defaultdict(list)
        for path in data_dir.glob("times-*.json"):
            for name, seconds, _began in json.loads(path.read_text()):
                inside[SERVER_NAMES.get(name, name)].append(seconds)
        for name in sorted(inside):
            print(line(name, inside[name]))
        print(asyncio.run(check_effects(database_url, args.users)))


if __name__ == "__main__":
    main()
