"""Tortoise set-up: one app label ``lotse``, SQLite by default, PostgreSQL by URL.

The schema is built by the migrations in ``lotse.platform.migrations``
(Tortoise's own), applied at every start and by ``lotse db migrate``; what the
ORM cannot express (append-only triggers, trigram search indexes) is
idempotent SQL run after them (``install_extras``).

Tortoise 1.x keeps its state in a context variable; Quart runs start-up in
another task than requests, so the app initialises with
``_enable_global_fallback=True`` (see TOOLCHAIN.md) instead of
``register_tortoise``, which is broken in 1.1.9.

On SQLite, transactions begin with ``BEGIN IMMEDIATE`` (``lotse.platform.sqlite``):
Tortoise's plain ``BEGIN`` is deferred, and a transaction that reads and then
writes fails at once with "database is locked" when another process (a second
worker, a CLI command) committed in between; an immediate one takes the write
lock first and waits up to ``SQLITE_BUSY_TIMEOUT_MS`` for it instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Generic, TypeVar

from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import MultipleObjectsReturned
from tortoise.models import Model
from tortoise.queryset import QuerySet

from lotse.platform.sqlite import SQLITE_BUSY_TIMEOUT_MS

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


MIGRATIONS_MODULE = "lotse.platform.migrations"

def _connection_config(database_url: str) -> str | dict[str, Any]:
    if not database_url.startswith("sqlite"):
        return database_url
    expanded = expand_db_url(database_url)
    return {"engine": "lotse.platform.sqlite",
            "credentials": {**expanded["credentials"], "busy_timeout": SQLITE_BUSY_TIMEOUT_MS}}


def tortoise_config(database_url: str) -> dict[str, Any]:
    return {
        "connections": {"default": _connection_config(database_url)},
        "apps": {
            "lotse": {"models": list(MODEL_MODULES), "default_connection": "default", "migrations": MIGRATIONS_MODULE}
        },
        "use_tz": True,
        "timezone": "UTC",
    }


async def init_db(database_url: str, *, create: bool = True) -> None:
    """Connect; with ``create``, apply pending migrations and the raw-SQL extras first."""
    if create:
        # In a context of its own: the migration executor's Tortoise context
        # must not leak into the app's (on PostgreSQL it did, and rows written
        # by one query were missing for the next).
        await asyncio.create_task(migrate(database_url), context=contextvars.Context())
    await Tortoise.init(config=tortoise_config(database_url), _enable_global_fallback=True)
    conn = connections.get("default")
    if database_url.startswith("sqlite"):
        # WAL makes synchronous=NORMAL safe (a crash loses at most the last commits,
        # never consistency) and saves a disk sync per commit.
        await conn.execute_script("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")
    if create:
        await install_extras(database_url)


async def migrate(database_url: str, *, progress: Callable[[str, str, str], object] | None = None) -> None:
    """Apply every pending migration of ``lotse.platform.migrations``."""
    from tortoise.migrations.api.migrate import migrate as run_migrations

    try:
        await run_migrations(config=tortoise_config(database_url), progress=progress)
    finally:
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def _model_changes() -> AsyncIterator[list[Any]]:
    """Yield Tortoise's migration writers for model changes no migration covers yet."""
    from tortoise.context import TortoiseContext
    from tortoise.migrations.autodetector import MigrationAutodetector

    config = tortoise_config("sqlite://:memory:")
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        assert ctx.apps is not None
        yield await MigrationAutodetector(ctx.apps, {"lotse": config["apps"]["lotse"]}).changes()


async def pending_model_changes() -> list[str]:
    """Describe model changes that no migration covers yet (empty when in step)."""
    async with _model_changes() as writers:
        return [f"{writer.app_label}: {operation.describe()}" for writer in writers for operation in writer.operations]


async def make_migrations(name: str | None = None) -> list[str]:
    """Write a migration for model changes; return the files written."""
    from tortoise.migrations.writer import format_migration_name

    async with _model_changes() as writers:
        paths = []
        for writer in writers:
            if name:
                writer.name = format_migration_name(int(writer.name.split("_", 1)[0]), name)
            paths.append(str(writer.write()))
        return paths


async def install_extras(database_url: str) -> None:
    """Idempotent SQL that the ORM cannot express: append-only triggers, search indexes.

    Run after the migrations on every start; each statement checks for itself
    (IF NOT EXISTS / OR REPLACE), so a new extra reaches existing databases too.
    """
    conn = connections.get("default")
    is_sqlite = database_url.startswith("sqlite")
    for statement in _APPEND_ONLY_SQLITE if is_sqlite else _APPEND_ONLY_POSTGRES:
        await conn.execute_script(statement)
    from lotse.platform.caseload.search import create_search_schema

    await create_search_schema(conn, is_sqlite=is_sqlite)


async def close_db() -> None:
    await Tortoise.close_connections()


M = TypeVar("M", bound=Model)

# The dialects whose hot statements Lotse writes out itself (written_insert, written_update).
_PLACEHOLDERS: dict[str, Callable[[int], str]] = {"sqlite": lambda n: "?", "postgres": lambda n: f"${n}"}


def _columns_and_values(model: type[Model], values: Mapping[str, Any]) -> tuple[list[str], list[Any]]:
    fields = [model._meta.fields_map[name] for name in values]
    return ([f'"{f.source_field or f.model_field_name}"' for f in fields],
            [f.to_db_value(value, model) for f, value in zip(fields, values.values(), strict=True)])


async def written_insert(model: type[Model], values: Mapping[str, Any]) -> None:
    """Insert one row with a statement written out on SQLite and PostgreSQL (the ORM elsewhere).

    For rows written on every click: building the ORM's query costs more CPU
    than running it, and its insert reads the new row's id back in a second
    statement. Only the model's own table and column names go into the text;
    every value is a parameter.
    """
    meta = model._meta
    placeholder = _PLACEHOLDERS.get(meta.db.capabilities.dialect)
    if placeholder is None:
        await model.create(**values)
        return
    columns, params = _columns_and_values(model, values)
    marks = ", ".join(placeholder(i) for i in range(1, len(columns) + 1))
    await meta.db.execute_query(
        f'INSERT INTO "{meta.db_table}" ({", ".join(columns)}) VALUES ({marks})', params)  # noqa: S608


async def written_update(model: type[Model], changes: Mapping[str, Any], where: Mapping[str, Any]) -> int:
    """``UPDATE ... SET changes WHERE`` every ``where`` field equals its value; return the rows changed.

    Written out on SQLite and PostgreSQL, like :func:`written_insert`.
    """
    meta = model._meta
    placeholder = _PLACEHOLDERS.get(meta.db.capabilities.dialect)
    if placeholder is None:
        return int(await model.filter(**where).update(**changes))
    set_columns, set_params = _columns_and_values(model, changes)
    where_columns, where_params = _columns_and_values(model, where)
    n = len(set_columns)
    sets = ", ".join(f"{column} = {placeholder(i)}" for i, column in enumerate(set_columns, 1))
    conditions = " AND ".join(f"{column} = {placeholder(n + i)}" for i, column in enumerate(where_columns, 1))
    changed, _rows = await meta.db.execute_query(
        f'UPDATE "{meta.db_table}" SET {sets} WHERE {conditions}', [*set_params, *where_params])  # noqa: S608
    return int(changed)


class Prepared(Generic[M]):
    """A read that the ORM builds once (per SQL dialect) and that then runs many times with other values.

    Building a query costs Tortoise more CPU than SQLite needs to run it: the
    session look-up of every signed-in request (session, account and
    organisation in one join) took about 0.6 ms to build and 0.1 ms to run.
    ``build`` receives one marker per parameter and returns the QuerySet; the
    markers are looked up among the built query's values and replaced by each
    call's values. Only for values the field passes on unchanged (text): a
    marker that does not come through as itself fails at preparation.
    ``numeric``: the parameters are integers (row ids); the markers are then
    negative numbers no row id takes.
    Model instances (related ones included) come out exactly as the QuerySet
    would make them; the connection is the current one (transactions
    included).
    """

    def __init__(self, model: type[M], build: Callable[..., QuerySet[M]], params: int = 1, *,
                 numeric: bool = False) -> None:
        self.model = model
        self.build = build
        self.params = params
        self.numeric = numeric
        self._built: dict[str, tuple[str, list[Any], list[int], Any]] = {}

    def _prepare(self, db: Any) -> tuple[str, list[Any], list[int], Any]:
        markers: list[Any] = ([-(2**62) - i for i in range(self.params)] if self.numeric
                              else [f"\x01lotse-parameter-{i}\x01" for i in range(self.params)])
        queryset = self.build(*markers).using_db(db)
        queryset._make_query()
        sql, values = queryset.query.get_parameterized_sql()
        positions = []
        for marker in markers:
            found = [i for i, value in enumerate(values) if value == marker]
            if len(found) != 1:
                raise ValueError(f"parameter {marker!r} is not passed on as it is: {values!r}")
            positions.append(found[0])
        return sql, list(values), positions, queryset._select_related_idx

    async def all(self, *values: Any) -> list[M]:
        """Return the rows for these parameter values."""
        db = self.model._meta.db
        dialect = db.capabilities.dialect
        built = self._built.get(dialect)
        if built is None:
            built = self._built[dialect] = self._prepare(db)
        sql, template, positions, select_related_idx = built
        params = list(template)
        for position, value in zip(positions, values, strict=True):
            params[position] = value
        executor = db.executor_class(model=self.model, db=db, select_related_idx=select_related_idx)
        return await executor.execute_select(sql, params)

    async def one_or_none(self, *values: Any) -> M | None:
        """Return the one row for these values, None when there is none (more than one: an error)."""
        rows = await self.all(*values)
        if len(rows) > 1:
            raise MultipleObjectsReturned(self.model)
        return rows[0] if rows else None
