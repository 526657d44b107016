"""Tasks: work waiting for a person, or for everyone with a role in an organisation.

A task is assigned either to one account or to a role within an organisation
("the application admins of organisation 3"); it may concern a client. What a
task says is derived from its ``kind`` and ``data`` when it is shown, so that
it reads in the language of whoever looks at it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise import fields, models

from lotse.platform.accounts.models import Role

if TYPE_CHECKING:
    from lotse.platform.accounts.models import Account


class TaskKind(StrEnum):
    LINK_REQUEST = "link_request"                   # for a client: accept or reject a professional
    LINK_REQUEST_ANSWERED = "link_request_answered"  # for the professional: the client's answer
    LINK_REQUEST_EXPIRED = "link_request_expired"    # for the professional: no answer in time
    TWO_FACTOR_RESET = "two_factor_reset"
    MESSAGE_PURGE = "message_purge"
    ERASURE = "erasure"
    FOLLOW_UP = "follow_up"                          # a professional's own to-do about a client


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Task(models.Model):
    id = fields.IntField(primary_key=True)
    organisation_id = fields.IntField(db_index=True)
    assignee: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="tasks", null=True, on_delete=fields.CASCADE
    )
    assignee_id: int | None  # the key's column, set by Tortoise
    assignee_role = fields.CharEnumField(Role, max_length=20, null=True)
    client: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="client_tasks", null=True, on_delete=fields.CASCADE
    )
    client_id: int | None  # the key's column, set by Tortoise
    kind = fields.CharEnumField(TaskKind, max_length=32)
    status = fields.CharEnumField(TaskStatus, max_length=10, default=TaskStatus.OPEN, db_index=True)
    note = fields.TextField(default="")   # free text a professional typed; never translated
    data: fields.Field[dict[str, Any]] = fields.JSONField(default=dict)
    due_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField()
    created_by_id = fields.IntField(null=True)
    completed_at = fields.DatetimeField(null=True)
    completed_by_id = fields.IntField(null=True)

    class Meta:
        table = "task"
        ordering = ("due_at", "id")

    @property
    def is_open(self) -> bool:
        return self.status is TaskStatus.OPEN
