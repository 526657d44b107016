"""One append-only audit table.

Rows are written by ``lotse.platform.actions`` inside the same transaction as
the change they describe (and in a transaction of their own for refusals and
reads). ``save`` on an existing row and ``delete`` raise; database triggers
(installed by ``lotse.platform.db``) refuse UPDATE and DELETE underneath the
ORM too. Clients are recorded by their pseudonym, never by name, so that the
trail survives erasure unchanged.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields, models


class AuditType(StrEnum):
    CREATE = "create"
    READ = "read"
    UPDATE = "update"
    DELETE = "delete"
    SEARCH = "search"
    EXPORT = "export"
    IMPORT = "import"
    EMERGENCY_ACCESS = "emergency_access"
    SIGN_IN = "sign_in"
    SIGN_IN_FAILURE = "sign_in_failure"
    SIGN_OUT = "sign_out"


class Outcome(StrEnum):
    SUCCESS = "success"
    REFUSED = "refused"
    FAILED = "failed"


class AuditLogIsAppendOnlyError(RuntimeError):
    pass


class AuditEvent(models.Model):
    id = fields.BigIntField(primary_key=True)
    at = fields.DatetimeField(db_index=True)
    event_type = fields.CharEnumField(AuditType, max_length=20, db_index=True)
    action = fields.CharField(max_length=80)  # e.g. "account.reactivate"
    outcome = fields.CharEnumField(Outcome, max_length=10)
    organisation_id = fields.IntField(null=True, db_index=True)
    actor_id = fields.IntField(null=True, db_index=True)
    actor_role = fields.CharField(max_length=20, default="")
    on_behalf_of_id = fields.IntField(null=True)
    subject_id = fields.IntField(null=True)  # the account acted on (any role)
    client_pseudonym = fields.CharField(max_length=32, null=True, db_index=True)
    source_address = fields.CharField(max_length=64, default="")
    via = fields.CharField(max_length=10, default="")  # web, api, flow, cli, job
    reason = fields.TextField(default="")
    details: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)

    class Meta:
        table = "audit_event"
        ordering = ("-id",)

    async def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._saved_in_db:
            await super().save(*args, **kwargs)
            return
        raise AuditLogIsAppendOnlyError("audit rows cannot be changed")

    async def delete(self, *args: Any, **kwargs: Any) -> None:
        raise AuditLogIsAppendOnlyError("audit rows cannot be deleted")
