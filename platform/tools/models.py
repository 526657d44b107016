"""Guided tools: the organisation's catalogue and what each client works on.

A tool (module, training, diary, questionnaire) is assigned to a client with a
supervising professional, who gives feedback. A tool without a supervisor is
"unlinked": the client keeps working in it, without contact. Archived tools
stay visible in the dossier, apart from the active ones.
"""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields, models


class ToolKind(StrEnum):
    MODULE = "module"
    TRAINING = "training"
    DIARY = "diary"
    QUESTIONNAIRE = "questionnaire"


class Tool(models.Model):
    """One entry of an organisation's catalogue (titles are the organisation's own content)."""

    id = fields.IntField(primary_key=True)
    organisation = fields.ForeignKeyField("lotse.Organisation", related_name="tools", on_delete=fields.CASCADE)
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
    tool = fields.ForeignKeyField("lotse.Tool", related_name="assignments", on_delete=fields.CASCADE)
    client = fields.ForeignKeyField("lotse.Account", related_name="tool_assignments", on_delete=fields.CASCADE)
    supervisor = fields.ForeignKeyField(
        "lotse.Account", related_name="supervised_tools", null=True, on_delete=fields.SET_NULL
    )
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
