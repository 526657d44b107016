"""Caseload search at scale, over HTTP.

Seeds 100,000 clients across 200 professionals (a caseload of 500 each) in a
fresh database, serves the real app with Hypercorn on 127.0.0.1 (a process of
its own, so that the client does not share its CPU time) and measures
p50/p95/p99 of

- search inside one professional's caseload (``GET /api/v1/caseload/search``),
- search outside the caseload across all clients of the organisation
  (``POST /api/v1/caseload/search-outside``, with a motivation),

with name fragments of three to six letters, typed without accents.

    python benchmarks/caseload_search.py                 # SQLite in a temporary folder
    python benchmarks/caseload_search.py --database-url postgres://user:pw@127.0.0.1/db
    python benchmarks/caseload_search.py --clients 20000 --requests 200

Every search writes its audit row, as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import secrets
import socket
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx

FIRST = ["Anaïs", "Jörg", "Eva", "Daan", "Sophie", "Lukas", "Émile", "Noor", "Femke", "Jan", "Lotte", "Maximilian",
         "Zoë", "Bram", "Hannah", "Søren", "Julia", "Ruben", "Inès", "Thijs", "Mila", "Felix", "Fenna", "Jonas"]
LAST = ["de Vries", "Müller", "Jansen", "Bakker", "Schröder", "Visser", "van Dijk", "Smit", "Meijer", "Schäfer",
        "de Boer", "Mulder", "Koç", "Weiß", "Hoffmann", "Peeters", "Dekker", "Brouwer", "Öztürk", "van Leeuwen",
        "Wagner", "Hendriks", "Becker", "Kramer", "Vermeulen", "Lange", "Postma", "Zimmermann", "Bosman", "Groot"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def seed(n_clients: int, n_professionals: int, rng: random.Random) -> tuple[list[int], dict[int, list[str]]]:
    """Insert the organisation, professionals, clients, links and search entries in bulk."""
    from tortoise import connections

    from lotse.platform.accounts.models import Account, Role
    from lotse.platform.caseload.search import normalise
    from lotse.platform.organisations.models import Organisation

    now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    organisation = await Organisation.create(slug="bench", name="Bench", created_at=now, search_outside_caseload=True)
    professionals = []
    for i in range(n_professionals):
        professionals.append(await Account.create(
            organisation=organisation, role=Role.THERAPIST, email=f"therapist{i}@bench.example",
            first_name="Thera", last_name=f"Pist {i}", pseudonym=secrets.token_hex(8), created_at=now, updated_at=now,
        ))
    conn = connections.get("default")
    is_sqlite = conn.capabilities.dialect == "sqlite"
    first_id = professionals[-1].id + 1

    def marks(n: int, offset: int = 0) -> str:
        return ", ".join("?" if is_sqlite else f"${offset + i + 1}" for i in range(n))

    # Fixed statements with placeholders only; the values are parameters.
    account_sql = (
        "INSERT INTO account (id, organisation_id, role, email, first_name, last_name, status, gender, date_of_birth,"  # noqa: S608
        " pseudonym, failed_logins, recovery_codes, externally_managed, client_ref, created_at, updated_at)"
        f" VALUES ({marks(16)})"
    )
    search_sql = f"INSERT INTO client_search (account_id, organisation_id, date_of_birth, text) VALUES ({marks(4)})"  # noqa: S608
    link_sql = f"INSERT INTO caseload_link (client_id, professional_id, kind, created_at) VALUES ({marks(4)})"  # noqa: S608
    fragments: dict[int, list[str]] = {}
    batch = 5000
    for start in range(0, n_clients, batch):
        accounts, entries, links = [], [], []
        for i in range(start, min(n_clients, start + batch)):
            account_id = first_id + i
            first, last = rng.choice(FIRST), rng.choice(LAST)
            born = date(1950, 1, 1) + timedelta(days=rng.randrange(60 * 365))
            email = f"client{i}@bench.example"
            ref = f"K{i:07d}"
            accounts.append((account_id, organisation.id, "client", email, first, last, "active", "other", born,
                             secrets.token_hex(8), 0, "[]", False, ref, now, now))
            entries.append((account_id, organisation.id, born, normalise(f"{last} {first} {email} {ref}")))
            professional = professionals[i % n_professionals]
            links.append((account_id, professional.id, "treating", now))
            if i % n_professionals == 0:
                fragments.setdefault(professional.id, []).append(normalise(last))
        await conn.execute_many(account_sql, accounts)
        await conn.execute_many(search_sql, entries)
        await conn.execute_many(link_sql, links)
    if is_sqlite:
        await conn.execute_script("ANALYZE")
    else:
        await conn.execute_script("ANALYZE account; ANALYZE client_search; ANALYZE caseload_link")
    return [p.id for p in professionals], fragments


def fragment_of(rng: random.Random) -> str:
    name = rng.choice([*FIRST, *LAST])
    plain = name.replace("ï", "i").replace("ö", "o").replace("É", "E").replace("ë", "e").replace("ü", "u")
    plain = plain.replace("ø", "o").replace("ç", "c").replace("ß", "ss").replace("Ö", "O").replace("è", "e")
    plain = plain.split()[-1]
    length = rng.randint(3, min(6, len(plain)))
    start = rng.randrange(0, len(plain) - length + 1)
    return plain[start:start + length].lower()


SERVER = """
import asyncio, os
from hypercorn.asyncio import serve
from hypercorn.config import Config
from lotse.platform.app import create_app
config = Config()
config.bind = ["127.0.0.1:" + os.environ["BENCH_PORT"]]
config.accesslog = None
asyncio.run(serve(create_app(start_workers=False), config))
"""


async def _empty_postgres() -> None:
    """Empty every table of the benchmark's database (what ``tests/conftest.py`` does; not importable from here)."""
    from tortoise import connections

    conn = connections.get("default")
    rows = await conn.execute_query_dict("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    names = ", ".join(f'"{row["tablename"]}"' for row in rows if row["tablename"] != "tortoise_migrations")
    if names:
        await conn.execute_script(f"TRUNCATE {names} RESTART IDENTITY CASCADE")


async def run(args: argparse.Namespace) -> None:
    """Seed with the database open in this process, then serve the app from a separate process and measure."""
    import os
    import subprocess
    import sys

    from lotse.platform.accounts.models import Account
    from lotse.platform.accounts.sessions import start_session
    from lotse.platform.config import load_settings
    from lotse.platform.db import close_db, init_db
    from lotse.platform.web import SESSION_COOKIE

    rng = random.Random(7)
    folder = Path(tempfile.mkdtemp(prefix="lotse-bench-"))
    repo = Path(__file__).resolve().parent.parent  # noqa: ASYNC240 - once, before measuring
    env = {**os.environ, "LOTSE_DATA_DIR": str(folder), "LOTSE_SECRET_KEY": "bench",
           "LOTSE_DATABASE_URL": args.database_url or f"sqlite://{folder / 'bench.sqlite3'}",
           "BENCH_PORT": str(free_port())}
    settings = load_settings(env)
    await init_db(settings.database_url)
    if not settings.is_sqlite:
        await _empty_postgres()
        from lotse.platform.db import install_extras

        await install_extras(settings.database_url)
    started = time.perf_counter()
    professional_ids, _fragments = await seed(args.clients, args.professionals, rng)
    print(f"database: {'SQLite' if settings.is_sqlite else 'PostgreSQL'}; seeded {args.clients:,} clients across "
          f"{args.professionals} professionals in {time.perf_counter() - started:.1f} s")
    me = await Account.get(id=professional_ids[0])
    key = await start_session(me, datetime.now(UTC), pending_two_factor=False)
    await close_db()

    server = subprocess.Popen([sys.executable, "-c", SERVER], env=env, cwd=repo)  # noqa: ASYNC220 - started once, not awaited
    base = f"http://127.0.0.1:{env['BENCH_PORT']}"
    try:
        async with httpx.AsyncClient(base_url=base, cookies={SESSION_COOKIE: key}, timeout=30) as http:
            for _ in range(200):
                try:
                    await http.get("/sign-in")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            for _ in range(20):  # warm-up
                await http.get("/api/v1/caseload/search", params={"q": fragment_of(rng)})
            inside, outside = "inside the caseload (500)", f"outside, across all ({args.clients:,})"
            results: dict[str, list[float]] = {inside: [], outside: []}
            hits: dict[str, list[int]] = {inside: [], outside: []}
            for _ in range(args.requests):
                q = fragment_of(rng)
                t0 = time.perf_counter()
                response = await http.get("/api/v1/caseload/search", params={"q": q})
                results[inside].append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
                hits[inside].append(len(response.json()["results"]))
                q = fragment_of(rng)
                t0 = time.perf_counter()
                response = await http.post("/api/v1/caseload/search-outside",
                                           json={"q": q, "motivation": "Benchmark: client called, account exists"})
                results[outside].append((time.perf_counter() - t0) * 1000)
                response.raise_for_status()
                hits[outside].append(len(response.json()["results"]))
    finally:
        server.terminate()
        server.wait(10)
    print(f"{'search':<34} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'mean hits':>10}")
    for name, values in results.items():
        print(f"{name:<34} {len(values):>5} {percentile(values, 50):>8.1f} {percentile(values, 95):>8.1f} "
              f"{percentile(values, 99):>8.1f} {statistics.mean(hits[name]):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="", help="PostgreSQL URL (default: SQLite in a temporary folder)")
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--professionals", type=int, default=200)
    parser.add_argument("--requests", type=int, default=300)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
