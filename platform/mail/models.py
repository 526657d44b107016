"""The outbox: every mail and SMS is a row first, written in the same
transaction as the action that causes it, and delivered afterwards."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields, models


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"


class OutboxMessage(models.Model):
    id = fields.IntField(primary_key=True)
    channel = fields.CharEnumField(Channel, max_length=5, default=Channel.EMAIL)
    organisation_id = fields.IntField(null=True)
    account_id = fields.IntField(null=True, db_index=True)  # recipient, where it is an account
    recipient = fields.CharField(max_length=254)
    subject = fields.CharField(max_length=300, default="")
    body_text = fields.TextField()
    body_html = fields.TextField(default="")
    attachments: fields.Field[list[dict[str, str]]] = fields.JSONField(default=list)  # [{filename, content_type, data(base64)}]
    kind = fields.CharField(max_length=40, default="")  # welcome, reset, unblock, two_factor_reset, ...
    language = fields.CharField(max_length=2, default="nl")
    created_at = fields.DatetimeField()
    next_attempt_at = fields.DatetimeField(db_index=True)
    attempts = fields.IntField(default=0)
    sent_at = fields.DatetimeField(null=True, db_index=True)
    failed_at = fields.DatetimeField(null=True)  # gave up after the retry limit
    last_error = fields.TextField(default="")
    message_id = fields.CharField(max_length=200, default="")

    class Meta:
        table = "outbox_message"
