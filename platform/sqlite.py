"""Lotse's SQLite engine for Tortoise: its client begins transactions with ``BEGIN IMMEDIATE``.

Tortoise's own SQLite client begins a transaction with a plain (deferred)
``BEGIN``: it takes the write lock only at the first write. A transaction that
reads and then writes therefore fails at once with "database is locked" when
another process (a second server worker, a CLI command) committed after its
first read; SQLite cannot wait that out. An immediate transaction takes the
write lock at its start and waits up to ``busy_timeout`` for it instead.

``db.tortoise_config`` names this module as the engine of SQLite URLs (Tortoise
finds the client through ``client_class``). Its name contains "sqlite"
because Tortoise's migration executor picks its SQLite schema editor by the
client's module name.
"""

from __future__ import annotations

import sqlite3

from tortoise.backends.base.client import TransactionContext
from tortoise.backends.sqlite.client import (
    SqliteClient,
    SqliteTransactionContext,
    SqliteTransactionWrapper,
)
from tortoise.exceptions import TransactionManagementError

# How long a statement waits for another process's write lock before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 5000


class _ImmediateTransaction(SqliteTransactionWrapper):
    """Tortoise's SQLite transaction, begun with ``BEGIN IMMEDIATE`` (the write lock first)."""

    async def begin(self) -> None:
        try:
            if self._connection.in_transaction:
                await self._connection.commit()
            await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


class LotseSqliteClient(SqliteClient):
    """Tortoise's SQLite client whose transactions begin immediate (see the module docstring)."""

    def _in_transaction(self) -> TransactionContext:
        return SqliteTransactionContext(_ImmediateTransaction(self), self._lock)


# Tortoise finds a client through its engine module's ``client_class``.
client_class = LotseSqliteClient
