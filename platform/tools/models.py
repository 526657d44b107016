"""Guided tools: the organisation's catalogue and what each client works on.

A tool (module, training, diary, questionnaire) is assigned to a client with a
supervising professional, who gives feedback. A tool without a supervisor is
"unlinked": the client keeps working in it, without contact. Archived tools
stay visible in the dossier, apart from the active ones.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields, models

if TYPE_CHECKING:
    from lotse.platform.accounts.models import Account
    from lotse.platform.organisations.models import Organisation


class ToolKind(StrEnum):
    MODULE = "module"
    TRAINING = "training"
    DIARY = "diary"
    QUESTIONNAIRE = "questionnaire"


class Tool(models.Model):
    """One entry of an organisation's catalogue (titles are the organisation's own content)."""

    id = fields.IntField(primary_key=True)
    organisation: fields.ForeignKeyRelation[Organisation] = fields.ForeignKeyField(
        "lotse.Organisation", related_name="tools", on_delete=fields.CASCADE
    )
    organisation_id: int  # the key's column, set by Tortoise
    kind = fields.CharEnumField(ToolKind, max_length=16)
    title = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    steps = fields.IntField(default=1)
    available = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "tool"
        unique_together = (("organisation", "title"),)


class ToolAssignment(models.Model):
    id = fields.IntField(primary_key=True)
    tool: fields.ForeignKeyRelation[Tool] = fields.ForeignKeyField(
        "lotse.Tool", related_name="assignments", on_delete=fields.CASCADE
    )
    tool_id: int  # the key's column, set by Tortoise
    client: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="tool_assignments", on_delete=fields.CASCADE
    )
    client_id: int  # the key's column, set by Tortoise
    supervisor: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="supervised_tools", null=True, on_delete=fields.SET_NULL
    )
    supervisor_id: int | None  # the key's column, set by Tortoise
    steps_done = fields.IntField(default=0)
    assigned_at = fields.DatetimeField()
    assigned_by_id = fields.IntField(null=True)
    updated_at = fields.DatetimeField()
    archived_at = fields.DatetimeField(null=True)

    class Meta:
        table = "tool_assignment"

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None

    def progress(self, steps: int) -> int:
        """Return the progress in percent, given the tool's number of steps."""
        return min(100, round(100 * self.steps_done / steps)) if steps > 0 else 0
