"""Accounts, single-use links and browser sessions.

One ``Account`` table for every role: e-mail addresses are unique across the
whole installation, professionals included, and a person signs in the same
way whatever their role. Client-only fields are simply empty for
professionals.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from tortoise import fields, models

if TYPE_CHECKING:
    from lotse.platform.organisations.models import Organisation


class Role(StrEnum):
    CLIENT = "client"
    THERAPIST = "therapist"
    SUPERVISOR = "supervisor"
    SECRETARY = "secretary"
    APP_ADMIN = "app_admin"
    CONTENT_EDITOR = "content_editor"
    SERVICEDESK = "servicedesk"

    @property
    def is_professional(self) -> bool:
        return self is not Role.CLIENT


PROFESSIONAL_ROLES: tuple[Role, ...] = tuple(role for role in Role if role.is_professional)


class Gender(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"
    UNKNOWN = "unknown"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    DEACTIVATED = "deactivated"


class Account(models.Model):
    id = fields.IntField(primary_key=True)
    organisation: fields.ForeignKeyRelation[Organisation] = fields.ForeignKeyField(
        "lotse.Organisation", related_name="accounts", on_delete=fields.RESTRICT
    )
    organisation_id: int  # the key's column, set by Tortoise
    role = fields.CharEnumField(Role, max_length=20)
    email = fields.CharField(max_length=254, unique=True)  # stored lower-case
    first_name = fields.CharField(max_length=100)
    last_name = fields.CharField(max_length=100)
    locale = fields.CharField(max_length=2, null=True)
    status = fields.CharEnumField(AccountStatus, default=AccountStatus.ACTIVE, max_length=12)

    # Client fields.
    gender = fields.CharEnumField(Gender, max_length=10, null=True)
    date_of_birth = fields.DateField(null=True)
    phone = fields.CharField(max_length=32, null=True)
    client_ref = fields.CharField(max_length=64, null=True)  # the organisation's client ID
    label = fields.CharField(max_length=100, null=True)
    package = fields.CharField(max_length=100, null=True)

    # Coupling with an external record system.
    external_ref = fields.CharField(max_length=128, null=True)
    externally_managed = fields.BooleanField(default=False)

    # Stable pseudonymous id: what the audit trail keeps after erasure.
    pseudonym = fields.CharField(max_length=32, unique=True)

    # Sign-in.
    password_hash = fields.CharField(max_length=255, null=True)
    password_changed_at = fields.DatetimeField(null=True)
    failed_logins = fields.IntField(default=0)
    blocked_at = fields.DatetimeField(null=True)
    last_login_at = fields.DatetimeField(null=True)
    totp_secret = fields.CharField(max_length=64, null=True)
    totp_enabled_at = fields.DatetimeField(null=True)
    totp_last_step = fields.IntField(null=True)  # refuses a code replayed within its window
    recovery_codes: fields.Field[list[str]] = fields.JSONField(default=list)  # argon2 hashes

    created_by: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name=None, null=True, on_delete=fields.SET_NULL
    )
    created_by_id: int | None  # the key's column, set by Tortoise
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "account"
        unique_together = (("organisation", "client_ref"), ("organisation", "external_ref"))

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def is_active(self) -> bool:
        return self.status is AccountStatus.ACTIVE

    @property
    def is_blocked(self) -> bool:
        return self.blocked_at is not None

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    def __str__(self) -> str:
        return self.name


class TokenPurpose(StrEnum):
    WELCOME = "welcome"   # set the first password; 7 days
    RESET = "reset"       # forgotten password; 1 hour
    UNBLOCK = "unblock"   # unblock after failed sign-ins


class Token(models.Model):
    """A single-use link. Only the SHA-256 of the secret is stored."""

    id = fields.IntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="tokens", on_delete=fields.CASCADE
    )
    account_id: int  # the key's column, set by Tortoise
    purpose = fields.CharEnumField(TokenPurpose, max_length=10)
    secret_hash = fields.CharField(max_length=64, unique=True)
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "token"


class WebSession(models.Model):
    """A signed-in browser. The cookie carries a random id, and only its hash is stored."""

    id = fields.IntField(primary_key=True)
    key_hash = fields.CharField(max_length=64, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "lotse.Account", related_name="web_sessions", on_delete=fields.CASCADE
    )
    account_id: int  # the key's column, set by Tortoise
    created_at = fields.DatetimeField()
    last_seen_at = fields.DatetimeField()
    # Password checked, second factor still to come.
    pending_two_factor = fields.BooleanField(default=False)
    source_address = fields.CharField(max_length=64, default="")

    class Meta:
        table = "web_session"
