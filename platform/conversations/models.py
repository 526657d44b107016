"""Conversations, their participants, messages, attachments and the deletion log.

- A ``Conversation`` has one manager (who started it, until handed over).
- A ``Participant`` row stays when someone leaves or is removed
  (``left_at``): the history is kept, they can read what was said while
  they took part, and they post nothing new. Read state is the id of the
  last message read; "N unread" counts messages above it.
- A ``Message`` removed as a data leak keeps its row so that everyone sees
  "a message was removed" in its place; its text and attachments are never
  served again, and the purge empties the text and deletes the attachment
  rows and files. Edits overwrite the text: no earlier version is kept,
  so that a purge leaves nothing behind.
- ``DataLeakDeletion`` is the deletion log: who removed which message or
  attachment (by id), when, and who purged it; it never holds content.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tortoise import fields, models

if TYPE_CHECKING:
    from lotse.platform.accounts.models import Account


class Conversation(models.Model):
    id = fields.IntField(primary_key=True)
    organisation_id = fields.IntField(db_index=True)
    subject = fields.CharField(max_length=200)
    manager: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="managed_conversations", on_delete=fields.RESTRICT
    )
    manager_id: int  # the key's column, set by Tortoise
    created_by_id = fields.IntField(null=True)
    created_at = fields.DatetimeField(db_index=True)
    last_message_at = fields.DatetimeField(null=True, db_index=True)
    message_count = fields.IntField(default=0)

    class Meta:
        table = "conversation"


class ChatParticipant(models.Model):
    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "lotse.Conversation", related_name="participants", on_delete=fields.CASCADE
    )
    conversation_id: int  # the key's column, set by Tortoise
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="conversation_memberships", on_delete=fields.CASCADE
    )
    account_id: int  # the key's column, set by Tortoise
    joined_at = fields.DatetimeField()
    left_at = fields.DatetimeField(null=True)
    # The newest message when they left: what a former participant may still read.
    visible_up_to = fields.IntField(null=True)
    last_read_id = fields.IntField(default=0)
    last_notified_at = fields.DatetimeField(null=True)

    class Meta:
        table = "conversation_participant"
        unique_together = (("conversation", "account"),)
        indexes = (("account_id", "left_at"),)

    @property
    def active(self) -> bool:
        return self.left_at is None


class ChatMessage(models.Model):
    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "lotse.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    conversation_id: int  # the key's column, set by Tortoise
    author: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="conversation_messages", null=True, on_delete=fields.SET_NULL
    )
    author_id: int | None  # the key's column, set by Tortoise
    body = fields.TextField(default="")
    created_at = fields.DatetimeField()
    edited_at = fields.DatetimeField(null=True)
    removed_at = fields.DatetimeField(null=True)
    purged_at = fields.DatetimeField(null=True)

    class Meta:
        table = "conversation_message"
        ordering = ("id",)
        indexes = (("conversation_id", "id"),)

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


class ChatAttachment(models.Model):
    id = fields.IntField(primary_key=True)
    message: fields.ForeignKeyRelation[ChatMessage] = fields.ForeignKeyField(
        "lotse.ChatMessage", related_name="attachments", on_delete=fields.CASCADE
    )
    message_id: int  # the key's column, set by Tortoise
    file_key = fields.CharField(max_length=64, unique=True)
    filename = fields.CharField(max_length=200)
    content_type = fields.CharField(max_length=100)
    size = fields.BigIntField()
    created_at = fields.DatetimeField()
    removed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "conversation_attachment"
        ordering = ("id",)

    @property
    def removed(self) -> bool:
        return self.removed_at is not None


class DataLeakDeletion(models.Model):
    """One entry of the deletion log (ids and times only, never content)."""

    id = fields.IntField(primary_key=True)
    organisation_id = fields.IntField(db_index=True)
    conversation_id = fields.IntField()
    message_id = fields.IntField()
    attachment_id = fields.IntField(null=True)
    removed_by_id = fields.IntField(null=True)
    removed_at = fields.DatetimeField()
    task_id = fields.IntField(null=True)
    purged_by_id = fields.IntField(null=True)
    purged_at = fields.DatetimeField(null=True)

    class Meta:
        table = "conversation_deletion"
        ordering = ("-id",)
