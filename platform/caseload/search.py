"""Finding clients by any part of their name, e-mail, client ID or date of birth.

At 100,000 clients a ``LIKE '%jan%'`` over the account table is a full scan,
so every client has a row in ``client_search`` with its text normalised once
(NFKD, accents stripped, case-folded) and a trigram index over that text:

- SQLite: an FTS5 table with ``tokenize='trigram'`` (SQLite >= 3.34), kept in
  step with ``client_search`` by triggers; terms of three or more characters
  are looked up there, shorter terms filter the candidates with ``LIKE``.
- PostgreSQL: a GIN ``gin_trgm_ops`` index (pg_trgm), which serves
  ``LIKE '%term%'`` directly.

Inside a caseload the candidates are the professional's links (a few hundred
rows), so a ``LIKE`` over those is fast on both databases without the index.

This module does no access checks and writes no audit rows: that is
``lotse.platform.caseload.queries``. Account actions that create or change a
client call ``index_client``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from tortoise import connections

from lotse.platform.accounts.models import Account, Role
from lotse.platform.caseload.models import ClientSearchEntry

DATE_PATTERN = re.compile(r"^(\d{1,2})-(\d{1,2})-(\d{4})$")
TRIGRAM = 3


def normalise(text: str) -> str:
    """Return ``text`` lower-cased, accents stripped, whitespace collapsed."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())


def search_text(account: Account) -> str:
    """Return what a client is found by: last and first name first (the sort order), e-mail, client ID."""
    parts = [account.last_name, account.first_name, account.email, account.client_ref or ""]
    return normalise(" ".join(part for part in parts if part))


async def index_client(account: Account) -> None:
    """Create or refresh the search entry of a client (call it inside the creating/editing action)."""
    if account.role is not Role.CLIENT:
        return
    fields: dict[str, Any] = {
        "organisation_id": account.organisation_id,
        "date_of_birth": account.date_of_birth,
        "text": search_text(account),
    }
    updated = await ClientSearchEntry.filter(account_id=account.id).update(**fields)
    if not updated:
        await ClientSearchEntry.create(account_id=account.id, **fields)


async def unindex_client(account_id: int) -> None:
    """Drop a client's search entry (erasure)."""
    await ClientSearchEntry.filter(account_id=account_id).delete()


async def reindex_clients(organisation_id: int | None = None) -> int:
    """Index every client (of one organisation) that has no entry yet; return how many."""
    query = Account.filter(role=Role.CLIENT)
    if organisation_id is not None:
        query = query.filter(organisation_id=organisation_id)
    known = set(cast("list[int]", await ClientSearchEntry.all().values_list("account_id", flat=True)))
    count = 0
    for account in await query:
        if account.id not in known:
            await index_client(account)
            count += 1
    return count


_SQLITE_SCHEMA = [
    """CREATE VIRTUAL TABLE IF NOT EXISTS client_search_fts USING fts5(text, tokenize='trigram')""",
    """CREATE TRIGGER IF NOT EXISTS client_search_ai AFTER INSERT ON client_search BEGIN
         INSERT INTO client_search_fts(rowid, text) VALUES (new.account_id, new.text); END""",
    """CREATE TRIGGER IF NOT EXISTS client_search_ad AFTER DELETE ON client_search BEGIN
         DELETE FROM client_search_fts WHERE rowid = old.account_id; END""",
    """CREATE TRIGGER IF NOT EXISTS client_search_au AFTER UPDATE ON client_search BEGIN
         DELETE FROM client_search_fts WHERE rowid = old.account_id;
         INSERT INTO client_search_fts(rowid, text) VALUES (new.account_id, new.text); END""",
]
_POSTGRES_SCHEMA = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS client_search_text_trgm ON client_search USING gin (text gin_trgm_ops)",
]


async def create_search_schema(conn: Any, *, is_sqlite: bool) -> None:
    """Create the trigram index next to ``client_search`` (idempotent)."""
    for statement in _SQLITE_SCHEMA if is_sqlite else _POSTGRES_SCHEMA:
        await conn.execute_script(statement)


@dataclass(frozen=True)
class ParsedQuery:
    terms: tuple[str, ...]
    date_of_birth: date | None
    invalid_date: bool = False

    @property
    def empty(self) -> bool:
        return not self.terms and self.date_of_birth is None


def parse_query(raw: str) -> ParsedQuery:
    """Split a search into normalised text terms and a date of birth typed DD-MM-YYYY."""
    terms: list[str] = []
    born: date | None = None
    invalid = False
    for word in normalise(raw).split():
        match = DATE_PATTERN.match(word)
        if match:
            day, month, year = (int(part) for part in match.groups())
            try:
                born = date(year, month, day)
            except ValueError:
                invalid = True
            continue
        terms.append(word)
    return ParsedQuery(tuple(terms), born, invalid)


class _Sql:
    """Builds one statement with the placeholders of the database at hand."""

    def __init__(self, is_sqlite: bool) -> None:
        self.is_sqlite = is_sqlite
        self.values: list[Any] = []

    def param(self, value: Any) -> str:
        self.values.append(value)
        return "?" if self.is_sqlite else f"${len(self.values)}"


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _fts_phrase(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


async def find_client_ids(
    query: ParsedQuery,
    *,
    organisation_id: int,
    professional_id: int | None = None,
    include_inactive: bool = False,
    limit: int = 50,
) -> list[int]:
    """Return ids of matching clients, ordered by last name.

    With ``professional_id`` only that professional's linked clients are
    searched; without it, the whole organisation.
    """
    if query.empty or query.invalid_date:
        return []
    conn = connections.get("default")
    is_sqlite = conn.capabilities.dialect == "sqlite"
    sql = _Sql(is_sqlite)
    joins: list[str] = ["JOIN account a ON a.id = s.account_id"]
    where: list[str] = [f"s.organisation_id = {sql.param(organisation_id)}"]
    if professional_id is not None:
        joins.append("JOIN caseload_link l ON l.client_id = s.account_id")
        where.append(f"l.professional_id = {sql.param(professional_id)}")
    if not include_inactive:
        where.append(f"a.status = {sql.param('active')}")
    if query.date_of_birth is not None:
        where.append(f"s.date_of_birth = {sql.param(query.date_of_birth)}")
    long_terms = [term for term in query.terms if len(term) >= TRIGRAM]
    use_fts = is_sqlite and professional_id is None and bool(long_terms)
    if use_fts:
        joins.insert(0, "JOIN client_search_fts f ON f.rowid = s.account_id")
        match = " AND ".join(_fts_phrase(term) for term in long_terms)
        where.append(f"client_search_fts MATCH {sql.param(match)}")
    for term in query.terms:
        if use_fts and len(term) >= TRIGRAM:
            continue
        where.append(f"s.text LIKE {sql.param(_like(term))} ESCAPE '\\'")
    # Only fixed fragments and placeholders are joined here; every value is a parameter.
    # With the trigram index (FTS5, or pg_trgm behind the LIKE) a common fragment matches
    # thousands of clients; sorting them all costs more than the search (on PostgreSQL 38 ms
    # instead of 0.3 ms for "ker" at 100,000 clients), so the first ``limit`` matches are
    # sorted here instead. More than ``limit`` matches means "refine your search" anyway.
    trigram_lookup = professional_id is None and bool(long_terms)
    order = "" if trigram_lookup else " ORDER BY s.text"
    statement = (
        "SELECT s.account_id AS id, s.text AS text FROM client_search s " + " ".join(joins)  # noqa: S608
        + " WHERE " + " AND ".join(where)
        + f"{order} LIMIT {sql.param(limit)}"
    )
    rows = await conn.execute_query_dict(statement, sql.values)
    return [int(row["id"]) for row in sorted(rows, key=lambda row: str(row["text"]))]
