"""Fixtures every test shares: settings in a temporary folder, a frozen clock,
the real app on a real database (SQLite, or PostgreSQL when
``LOTSE_TEST_DATABASE_URL`` says so), and signed-in test clients."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.testing import QuartClient

from lotse.platform.actions import Services
from lotse.platform.clock import FrozenClock
from lotse.platform.config import Settings

REPO = Path(__file__).resolve().parent.parent
TEST_DATABASE_URL = os.environ.get("LOTSE_TEST_DATABASE_URL", "")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file built once by the migrations; each test starts from a copy.

    Applying every migration takes most of a second, copying the result a
    millisecond; the app's start-up still runs ``migrate`` on the copy and
    finds nothing to do, as it would on a deployed database.
    """
    from lotse.platform.db import close_db, init_db

    path = tmp_path_factory.mktemp("template") / "lotse.sqlite3"

    async def build() -> None:
        await init_db(f"sqlite://{path}")
        await close_db()

    asyncio.run(build())
    return path


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    if TEST_DATABASE_URL:
        # Every test starts from empty tables, whichever fixture opens the app.
        asyncio.run(_empty_postgres(TEST_DATABASE_URL))
    else:
        shutil.copyfile(request.getfixturevalue("migrated_sqlite"), tmp_path / "lotse.sqlite3")
    url = TEST_DATABASE_URL or f"sqlite://{tmp_path / 'lotse.sqlite3'}"
    return Settings(
        data_dir=tmp_path,
        database_url=url,
        base_url="http://lotse.test",
        secret_key="test-secret-key-not-for-production",
        flows_dir=REPO / "flows",
        locales_dir=REPO / "locales",
        testing=True,
    )


async def _empty_postgres(url: str) -> None:
    """Empty every table but the migrations' own record (the schema stays)."""
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        names = ", ".join(f'"{row["tablename"]}"' for row in rows if row["tablename"] != "tortoise_migrations")
        if names:
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture
async def app(settings: Settings, clock: FrozenClock) -> AsyncIterator[Quart]:
    """The real app, started (database open, schema created), workers off."""
    from lotse.platform.app import create_app

    application = create_app(settings, clock=clock, start_workers=False)
    async with application.test_app():
        yield application


@pytest.fixture
def svc(app: Quart) -> Services:
    services: Services = app.extensions["lotse"]
    return services


@pytest.fixture
def client(app: Quart) -> QuartClient:
    return app.test_client()


@pytest.fixture
def sign_in_as(app: Quart, svc: Services) -> Any:
    """Return ``await sign_in_as(account) -> client`` with a live session (no password round trip)."""
    from lotse.platform.accounts.sessions import start_session
    from lotse.platform.web import SESSION_COOKIE

    async def make(account: Any, language: str | None = None) -> QuartClient:
        key = await start_session(account, svc.now(), pending_two_factor=False)
        test_client = app.test_client()
        test_client.set_cookie("localhost", SESSION_COOKIE, key)
        if language:
            test_client.set_cookie("localhost", "lotse_lang", language)
        return test_client

    return make
