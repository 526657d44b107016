"""Tortoise set-up: one app label ``lotse``, SQLite by default, PostgreSQL by URL.

Tortoise 1.x keeps its state in a context variable; Quart runs start-up in
another task than requests, so the app initialises with
``_enable_global_fallback=True`` (see TOOLCHAIN.md) instead of
``register_tortoise``, which is broken in 1.1.9.
"""

from __future__ import annotations

from typing import Any

from tortoise import Tortoise, connections

# Every module that defines models; the order does not matter to Tortoise.
MODEL_MODULES: list[str] = [
    "lotse.platform.organisations.models",
    "lotse.platform.accounts.models",
    "lotse.platform.audit.models",
    "lotse.platform.mail.models",
    "lotse.platform.caseload.models",
    "lotse.platform.tasks.models",
    "lotse.platform.conversations.models",
    "lotse.platform.calls.models",
    "lotse.platform.tools.models",
    "lotse.platform.help.models",
]

_APPEND_ONLY_SQLITE = [
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
]
_APPEND_ONLY_POSTGRES = [
    """CREATE OR REPLACE FUNCTION lotse_audit_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS audit_event_append_only ON audit_event",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION lotse_audit_append_only()""",
]


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": database_url},
        "apps": {"lotse": {"models": list(MODEL_MODULES), "default_connection": "default"}},
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(database_url: str, *, create: bool = True) -> None:
    """Connect, and create or complete the schema when ``create`` is set."""
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    if create:
        await create_schema(database_url)


async def create_schema(database_url: str) -> None:
    """Create missing tables and the triggers that keep the audit log append-only."""
    await Tortoise.generate_schemas(safe=True)
    conn = connections.get("default")
    statements = _APPEND_ONLY_SQLITE if database_url.startswith("sqlite") else _APPEND_ONLY_POSTGRES
    for statement in statements:
        await conn.execute_script(statement)
    if database_url.startswith("sqlite"):
        # WAL makes synchronous=NORMAL safe (a crash loses at most the last commits,
        # never consistency) and saves a disk sync per commit.
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
    from lotse.platform.caseload.search import create_search_schema

    await create_search_schema(conn, is_sqlite=database_url.startswith("sqlite"))


async def close_db() -> None:
    await Tortoise.close_connections()
