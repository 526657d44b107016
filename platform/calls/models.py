"""Call metadata: who took part in which call, when, and for how long.

Nothing of a call's content is stored anywhere (no recording exists): a
``Call`` row says which conversation it belongs to, who started it, when it
started and ended, and where its room lives; ``CallAttendance`` rows say who
was in it from when to when (one row per stay: leaving and coming back makes
two). ``CallInvitation`` rows are the people who may join it. All of it is
purged 90 days after the call ended (``jobs.purge_call_metadata``).

The conversation is referenced by id, not by a foreign key, so that the
metadata's own retention does not depend on the conversation's.
"""

from __future__ import annotations

from tortoise import fields, models


class Call(models.Model):
    id = fields.IntField(primary_key=True)
    organisation_id = fields.IntField(db_index=True)
    conversation_id = fields.IntField(db_index=True)
    room_id = fields.CharField(max_length=64, unique=True)
    # Empty for the media unit inside the app process; else the `lotse media serve` URL.
    media_url = fields.CharField(max_length=300, default="")
    cap = fields.IntField()
    started_by_id = fields.IntField(null=True)
    started_at = fields.DatetimeField(db_index=True)
    ended_at = fields.DatetimeField(null=True, db_index=True)
    # The conversation's id while the call runs, cleared when it ends. Unique (NULLs
    # do not collide), so a conversation never has two running calls, however many
    # people press "start" at the same moment.
    running_for = fields.IntField(null=True, unique=True)

    class Meta:
        table = "call"

    @property
    def running(self) -> bool:
        return self.ended_at is None


class CallInvitation(models.Model):
    id = fields.IntField(primary_key=True)
    call: fields.ForeignKeyRelation[Call] = fields.ForeignKeyField(
        "lotse.Call", related_name="invitations", on_delete=fields.CASCADE
    )
    call_id: int  # the key's column, set by Tortoise
    account_id = fields.IntField()
    invited_by_id = fields.IntField(null=True)
    invited_at = fields.DatetimeField()

    class Meta:
        table = "call_invitation"
        unique_together = (("call", "account_id"),)


class CallAttendance(models.Model):
    id = fields.IntField(primary_key=True)
    call: fields.ForeignKeyRelation[Call] = fields.ForeignKeyField(
        "lotse.Call", related_name="attendances", on_delete=fields.CASCADE
    )
    call_id: int  # the key's column, set by Tortoise
    account_id = fields.IntField(db_index=True)
    joined_at = fields.DatetimeField()
    left_at = fields.DatetimeField(null=True)

    class Meta:
        table = "call_attendance"
        indexes = (("call_id", "left_at"),)

    @property
    def seconds(self) -> int | None:
        """How long this stay lasted, once it is over."""
        if self.left_at is None:
            return None
        return int((self.left_at - self.joined_at).total_seconds())
