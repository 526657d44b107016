"""Links between professionals and clients.

A professional sees a client only when linked. A supervisor's link is
read-only. The creator of a client account is linked automatically.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields, models


class LinkKind(StrEnum):
    TREATING = "treating"        # therapist (or secretary-created link for a therapist)
    SUPERVISING = "supervising"  # read-only


class CaseloadLink(models.Model):
    id = fields.IntField(primary_key=True)
    client = fields.ForeignKeyField("lotse.Account", related_name="professional_links", on_delete=fields.CASCADE)
    professional = fields.ForeignKeyField("lotse.Account", related_name="client_links", on_delete=fields.CASCADE)
    kind = fields.CharEnumField(LinkKind, max_length=12, default=LinkKind.TREATING)
    created_at = fields.DatetimeField()

    class Meta:
        table = "caseload_link"
        unique_together = (("client", "professional"),)
