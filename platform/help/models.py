"""Help sessions, the flow versions they are pinned to, and the actions they ran.

- ``FlowVersion``: the exact text of a flow as it was when a session first
  used it (content hash); a session loads its pinned version, so publishing
  a changed flow never disturbs a session in progress.
- ``HelpSession``: one person walking one flow. ``public_id`` is the opaque
  resume link (random, not guessable, never written to the audit log);
  ``id`` names the session in audit reasons ("help session 42"). The
  engine's state is kept as JSON; ``revision`` guards against two requests
  saving over each other. When it ends, outcome, path and action results
  stay on the row for the outcome statistics.
- ``ActionRun``: one run of an action under the engine's idempotency key
  (unique), so that a doubled confirmation runs the action once.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields, models

if TYPE_CHECKING:
    from lotse.platform.accounts.models import Account


class SessionStatus(StrEnum):
    ACTIVE = "active"
    FINISHED = "finished"
    ABANDONED = "abandoned"


class FlowVersion(models.Model):
    id = fields.IntField(primary_key=True)
    flow_id = fields.CharField(max_length=100, db_index=True)
    version = fields.IntField()
    content_hash = fields.CharField(max_length=64)
    source = fields.TextField()
    title = fields.CharField(max_length=300, default="")
    first_seen_at = fields.DatetimeField()

    class Meta:
        table = "help_flow_version"
        unique_together = (("flow_id", "content_hash"),)


class HelpSession(models.Model):
    id = fields.IntField(primary_key=True)
    public_id = fields.CharField(max_length=64, unique=True)
    flow_id = fields.CharField(max_length=100, db_index=True)
    flow_version: fields.ForeignKeyRelation[FlowVersion] = fields.ForeignKeyField(
        "lotse.FlowVersion", related_name="sessions", on_delete=fields.RESTRICT
    )
    flow_version_id: int  # the key's column, set by Tortoise
    version = fields.IntField()
    organisation_id = fields.IntField(null=True, db_index=True)
    # The person running it; anonymous sessions (sign-in page) are keyed by a cookie instead.
    account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="help_sessions", null=True, on_delete=fields.CASCADE
    )
    account_id: int | None  # the key's column, set by Tortoise
    anonymous_key_hash = fields.CharField(max_length=64, null=True, db_index=True)
    # The client or professional the session is about (for the dossier and erasure).
    subject_id = fields.IntField(null=True, db_index=True)
    role = fields.CharField(max_length=20, default="")
    locale = fields.CharField(max_length=5, default="nl")
    status = fields.CharEnumField(SessionStatus, max_length=10, default=SessionStatus.ACTIVE, db_index=True)
    step = fields.CharField(max_length=100, default="")
    state: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    revision = fields.IntField(default=0)
    outcome = fields.CharField(max_length=20, null=True)
    path: fields.Field[list[str]] = fields.JSONField(default=list)
    action_results: fields.Field[list[dict[str, Any]]] = fields.JSONField(default=list)
    started_at = fields.DatetimeField()
    updated_at = fields.DatetimeField(db_index=True)
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "help_session"

    @property
    def is_active(self) -> bool:
        return self.status is SessionStatus.ACTIVE


class ActionRun(models.Model):
    id = fields.IntField(primary_key=True)
    session: fields.ForeignKeyRelation[HelpSession] = fields.ForeignKeyField(
        "lotse.HelpSession", related_name="action_runs", on_delete=fields.CASCADE
    )
    session_id: int  # the key's column, set by Tortoise
    key = fields.CharField(max_length=255, unique=True)
    action = fields.CharField(max_length=100)
    done = fields.BooleanField(default=False)
    value: fields.Field[Any] = fields.JSONField(null=True)
    error = fields.CharField(max_length=64, null=True)
    message = fields.TextField(default="")
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)

    class Meta:
        table = "help_action_run"
