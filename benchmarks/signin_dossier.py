"""Sign-in and client-page latency with 100,000 client accounts on SQLite.

    .venv/bin/python benchmarks/signin_dossier.py [--clients 100000] [--therapists 200]
                                                  [--sign-ins 50] [--fetches 300] [--keep DIR]

What it does, in a temporary data directory:

1. seeds one organisation with ``--therapists`` therapists and ``--clients``
   clients, each client linked to one therapist (bulk inserts through the
   models, one precomputed argon2 hash shared by every account);
2. starts Lotse in a separate process (Hypercorn, one worker, the app exactly
   as ``lotse serve`` builds it) on a free 127.0.0.1 port;
3. signs in ``--sign-ins`` different therapists one after another through
   the HTML form (``POST /sign-in``, CSRF token fetched first and not timed)
   and again through ``POST /api/v1/session`` — the full action, argon2
   verification included;
4. as a handful of those therapists, fetches ``--fetches`` random clients of
   their own caseload, one request at a time, from every client-detail
   endpoint: ``GET /api/v1/accounts/<id>`` (JSON), the account page
   ``GET /accounts/<id>`` and the dossier page ``GET /clients/<id>``; each is
   an access-checked, audited read;
5. fetches the dossier page again while another connection keeps signing in,
   which shows how much a sign-in's argon2 work holds up everyone else;
6. prints p50 / p95 / max per measurement, and the seeding time.

Requests are sequential, so the numbers are latency on an otherwise idle
server, measured with httpx from the same machine (connection kept alive).
It is a benchmark, not a test: nothing fails on a slow number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

PASSWORD = "benchmark password #1"  # noqa: S105 - the seeded accounts exist only in a temporary database
# Every endpoint that shows one client to a professional: the JSON account, the
# account page and the dossier (caseload) page.
DOSSIER_ENDPOINTS = (("GET /api/v1/accounts/<id> (JSON)", "/api/v1/accounts/{id}"),
                     ("GET /accounts/<id> (HTML page)", "/accounts/{id}"),
                     ("GET /clients/<id> (dossier page)", "/clients/{id}"))


# -- seeding -----------------------------------------------------------------------------------


async def seed(database_url: str, clients: int, therapists: int) -> list[tuple[str, list[int]]]:
    """Create the organisation and accounts; return ``(therapist e-mail, client ids)`` pairs."""
    from tortoise.transactions import in_transaction

    from lotse.platform.accounts.models import Account, AccountStatus, Gender, Role
    from lotse.platform.accounts.passwords import hash_password
    from lotse.platform.caseload.models import CaseloadLink, LinkKind
    from lotse.platform.db import close_db, init_db
    from lotse.platform.organisations.models import Organisation, TwoFactorRule

    await init_db(database_url)
    try:
        now = datetime.now(UTC)
        password_hash = hash_password(PASSWORD)
        organisation = await Organisation.create(
            slug="bench", name="Benchmark Care", created_at=now, two_factor=TwoFactorRule.OPTIONAL,
        )
        rng = random.Random(7)
        first_names = ["Anna", "Bram", "Carla", "Daan", "Eva", "Finn", "Greta", "Hugo", "Ilse", "Jonas"]
        last_names = ["de Vries", "Jansen", "Müller", "Schmidt", "Bakker", "Visser", "Weber", "Meijer"]

        def account(role: Role, n: int, **extra: object) -> Account:
            return Account(
                organisation=organisation, role=role, email=f"{role.value}{n}@bench.example",
                first_name=rng.choice(first_names), last_name=rng.choice(last_names),
                pseudonym=secrets.token_hex(8), password_hash=password_hash, status=AccountStatus.ACTIVE,
                created_at=now, updated_at=now, **extra,
            )

        async with in_transaction():
            await Account.bulk_create([account(Role.THERAPIST, n) for n in range(therapists)], batch_size=1000)
            batch: list[Account] = []
            for n in range(clients):
                batch.append(account(
                    Role.CLIENT, n, gender=rng.choice(list(Gender)), client_ref=f"C{n:07d}",
                    date_of_birth=date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 55)),
                ))
                if len(batch) == 5000:
                    await Account.bulk_create(batch, batch_size=1000)
                    batch = []
            if batch:
                await Account.bulk_create(batch, batch_size=1000)

        therapist_rows = await Account.filter(organisation=organisation, role=Role.THERAPIST).order_by("id").values_list("id", "email")
        client_ids: list[int] = await Account.filter(organisation=organisation, role=Role.CLIENT).order_by("id").values_list("id", flat=True)  # type: ignore[assignment]
        caseloads: dict[int, list[int]] = {tid: [] for tid, _email in therapist_rows}
        async with in_transaction():
            links: list[CaseloadLink] = []
            for index, client_id in enumerate(client_ids):
                therapist_id = therapist_rows[index % len(therapist_rows)][0]
                caseloads[therapist_id].append(client_id)
                links.append(CaseloadLink(client_id=client_id, professional_id=therapist_id,
                                          kind=LinkKind.TREATING, created_at=now))
                if len(links) == 5000:
                    await CaseloadLink.bulk_create(links, batch_size=1000)
                    links = []
            if links:
                await CaseloadLink.bulk_create(links, batch_size=1000)
        return [(email, caseloads[tid]) for tid, email in therapist_rows]
    finally:
        await close_db()


# -- the server, in its own process ------------------------------------------------------------


def serve(host: str, port: int) -> None:
    """Serve the app until SIGTERM (runs in the child process)."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    from lotse.platform.app import create_app

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        config = Config()
        config.bind = [f"{host}:{port}"]
        config.accesslog = None
        await hypercorn_serve(create_app(), config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]

    asyncio.run(main())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def server_process(data_dir: Path, database_url: str):  # type: ignore[no-untyped-def]
    port = free_port()
    env = {**os.environ, "LOTSE_DATA_DIR": str(data_dir), "LOTSE_DATABASE_URL": database_url,
           "LOTSE_BASE_URL": f"http://127.0.0.1:{port}"}
    log = (data_dir / "server.log").open("w")
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the server stopped (exit {process.returncode}); see {data_dir / 'server.log'}")
            try:
                if httpx.get(url + "/static/lotse.css", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("the server did not start within 120 s")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


# -- measuring ---------------------------------------------------------------------------------


def summary(name: str, seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return (f"{name:<38} n={len(ms):<4} p50 {cuts[49]:7.1f} ms   p95 {cuts[94]:7.1f} ms   "
            f"max {ms[-1]:7.1f} ms   mean {statistics.fmean(ms):7.1f} ms")


CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def sign_in_form(http: httpx.Client, email: str) -> float:
    """Sign in through the HTML form (as a browser does); time only the POST."""
    page = http.get("/sign-in")
    token = CSRF_FIELD.search(page.text)
    if page.status_code != 200 or token is None:
        raise SystemExit(f"GET /sign-in answered {page.status_code} without a CSRF token")
    started = time.perf_counter()
    response = http.post("/sign-in", data={"csrf_token": token.group(1), "email": email,
                                           "password": PASSWORD, "next": "/"})
    elapsed = time.perf_counter() - started
    if response.status_code != 302 or "sign-in" in response.headers.get("location", "sign-in"):
        raise SystemExit(f"form sign-in of {email} failed: {response.status_code} {response.text[:300]}")
    return elapsed


def sign_in_api(http: httpx.Client, email: str) -> float | str:
    """Sign in through the JSON API; return the time, or why it could not be measured."""
    started = time.perf_counter()
    response = http.post("/api/v1/session", json={"email": email, "password": PASSWORD})
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json().get("status") != "signed_in":
        return f"answered {response.status_code}: {response.text[:120].strip()}"
    return elapsed


def measure(url: str, caseloads: list[tuple[str, list[int]]], sign_ins: int, fetches: int) -> list[str]:
    lines: list[str] = []
    rng = random.Random(11)
    chosen = caseloads[:sign_ins]
    with httpx.Client(base_url=url, timeout=60) as warm:
        sign_in_form(warm, caseloads[-1][0])  # first requests: templates, connection pool, caches
        sign_in_api(warm, caseloads[-1][0])

    form_timings: list[float] = []
    sessions: list[tuple[httpx.Client, list[int]]] = []
    for email, clients in chosen:
        http = httpx.Client(base_url=url, timeout=60)
        form_timings.append(sign_in_form(http, email))
        if len(sessions) < 10 and clients:
            sessions.append((http, clients))
        else:
            http.close()
    lines.append(summary("POST /sign-in form (argon2 incl.)", form_timings))

    api_timings: list[float] = []
    problem = ""
    with httpx.Client(base_url=url, timeout=60) as http:
        for email, _clients in chosen:
            result = sign_in_api(http, email)
            if isinstance(result, str):
                problem = result
                break
            api_timings.append(result)
    if problem:
        lines.append(f"{'POST /api/v1/session (argon2 incl.)':<38} not measured: {problem}")
    else:
        lines.append(summary("POST /api/v1/session (argon2 incl.)", api_timings))

    try:
        for name, template in DOSSIER_ENDPOINTS:
            http, clients = sessions[0]
            probe = http.get(template.format(id=clients[0]))
            if probe.status_code != 200:
                lines.append(f"{name:<38} not measured: answered {probe.status_code} for a client in the caseload")
                continue
            for http, clients in sessions:  # warm up each connection
                http.get(template.format(id=clients[-1]))
            durations: list[float] = []
            for n in range(fetches):
                http, clients = sessions[n % len(sessions)]
                path = template.format(id=rng.choice(clients))
                started = time.perf_counter()
                response = http.get(path)
                durations.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise SystemExit(f"{path} answered {response.status_code}: {response.text[:300]}")
            lines.append(summary(name, durations))
            if template.startswith("/clients/"):
                lines.append(summary("  the same while sign-ins run", _during_sign_ins(
                    url, caseloads, sessions, template, fetches, rng)))
    finally:
        for http, _clients in sessions:
            http.close()
    return lines


def _during_sign_ins(url: str, caseloads: list[tuple[str, list[int]]], sessions: list[tuple[httpx.Client, list[int]]],
                     template: str, fetches: int, rng: random.Random) -> list[float]:
    """Fetch pages while another connection signs in over and over: shows whether argon2 blocks the server."""
    stop = threading.Event()

    def keep_signing_in() -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            n = 0
            while not stop.is_set():
                sign_in_form(http, caseloads[n % len(caseloads)][0])
                n += 1

    worker = threading.Thread(target=keep_signing_in, daemon=True)
    worker.start()
    durations: list[float] = []
    try:
        for n in range(fetches):
            http, clients = sessions[n % len(sessions)]
            started = time.perf_counter()
            response = http.get(template.format(id=rng.choice(clients)))
            durations.append(time.perf_counter() - started)
            if response.status_code != 200:
                raise SystemExit(f"page answered {response.status_code} during sign-ins")
    finally:
        stop.set()
        worker.join(timeout=60)
    return durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--therapists", type=int, default=200)
    parser.add_argument("--sign-ins", type=int, default=50)
    parser.add_argument("--fetches", type=int, default=300)
    parser.add_argument("--keep", type=Path, help="use (and keep) this data directory instead of a temporary one")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve("127.0.0.1", args.serve)
        return 0
    if args.clients < 1 or args.therapists < 1 or args.sign_ins < 1 or args.fetches < 2:
        parser.error("--clients, --therapists, --sign-ins must be at least 1 and --fetches at least 2")

    with contextlib.ExitStack() as stack:
        if args.keep:
            data_dir = args.keep.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
        else:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lotse-bench-")))
        database = data_dir / "lotse.sqlite3"
        if database.exists():
            raise SystemExit(f"{database} exists already; pass an empty --keep directory")
        database_url = f"sqlite://{database}"
        print(f"Seeding {args.clients:,} clients and {args.therapists} therapists into {database} ...", flush=True)
        started = time.perf_counter()
        caseloads = asyncio.run(seed(database_url, args.clients, args.therapists))
        seeded = time.perf_counter() - started
        size = database.stat().st_size / 1e6
        print(f"seeded in {seeded:.1f} s; database {size:.0f} MB", flush=True)
        with server_process(data_dir, database_url) as url:
            print(f"server at {url}; measuring (sequential requests) ...\n", flush=True)
            lines = measure(url, caseloads, args.sign_ins, args.fetches)
    print(f"Lotse sign-in / client-page benchmark: {args.clients:,} clients, {args.therapists} therapists, SQLite")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}\n")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
