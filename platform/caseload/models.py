"""Links between professionals and clients.

A professional sees a client only when linked. A supervisor's link is
read-only. The creator of a client account is linked automatically.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields, models

if TYPE_CHECKING:
    from lotse.platform.accounts.models import Account


class LinkKind(StrEnum):
    TREATING = "treating"        # therapist (or secretary-created link for a therapist)
    SUPERVISING = "supervising"  # read-only


class CaseloadLink(models.Model):
    id = fields.IntField(primary_key=True)
    client: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="professional_links", on_delete=fields.CASCADE
    )
    client_id: int  # the key's column, set by Tortoise
    professional: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="client_links", on_delete=fields.CASCADE
    )
    professional_id: int  # the key's column, set by Tortoise
    kind = fields.CharEnumField(LinkKind, max_length=12, default=LinkKind.TREATING)
    created_at = fields.DatetimeField()

    class Meta:
        table = "caseload_link"
        unique_together = (("client", "professional"),)
        # "My caseload" starts from the professional.
        indexes = (("professional_id", "client_id"),)


class LinkRequestStatus(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    EXPIRED = "expired"


class LinkRequest(models.Model):
    """A professional asks a client for consent to be linked (policy ``client_consent``)."""

    id = fields.IntField(primary_key=True)
    organisation_id = fields.IntField(db_index=True)
    client: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="link_requests", on_delete=fields.CASCADE
    )
    client_id: int  # the key's column, set by Tortoise
    professional: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="sent_link_requests", on_delete=fields.CASCADE
    )
    professional_id: int  # the key's column, set by Tortoise
    status = fields.CharEnumField(LinkRequestStatus, max_length=10, default=LinkRequestStatus.PENDING, db_index=True)
    motivation = fields.TextField(default="")
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    answered_at = fields.DatetimeField(null=True)

    class Meta:
        table = "link_request"


class ClientSearchEntry(models.Model):
    """The normalised, searchable text of one client (lower-case, accents stripped).

    Holds only what is searched by text (name, e-mail, client ID) and the date
    of birth; the account's status is read from the account itself, so that
    (de)activating needs no re-indexing.

    Kept by ``lotse.platform.caseload.search.index_client``; the trigram index
    over ``text`` (SQLite FTS5 or PostgreSQL pg_trgm) is created next to it by
    ``create_search_schema``.
    """

    account_id = fields.IntField(primary_key=True, generated=False)
    organisation_id = fields.IntField(db_index=True)
    date_of_birth = fields.DateField(null=True, db_index=True)
    text = fields.TextField()

    class Meta:
        table = "client_search"
