"""The organisation and every setting of PRODUCT.md's table, default first."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields, models


class LinkPolicy(StrEnum):
    READ_ONLY = "read_only"
    SELF_LINK = "self_link"
    CLIENT_CONSENT = "client_consent"


class ExternalAccounts(StrEnum):
    PROTECT = "protect"          # externally managed accounts cannot be edited here
    NEVER_EDITABLE = "never"     # no client account can be edited once coupled
    ALWAYS_EDITABLE = "always"


class FieldRule(StrEnum):
    OPTIONAL = "optional"
    REQUIRED = "required"


class TwoFactorRule(StrEnum):
    OPTIONAL = "optional"
    REQUIRED = "required"
    OFF = "off"


class Organisation(models.Model):
    id = fields.IntField(primary_key=True)
    slug = fields.CharField(max_length=64, unique=True)
    name = fields.CharField(max_length=200)
    url = fields.CharField(max_length=300, default="")
    time_zone = fields.CharField(max_length=64, default="Europe/Amsterdam")

    video_calls = fields.BooleanField(default=True)
    participant_cap = fields.IntField(default=12)
    search_outside_caseload = fields.BooleanField(default=False)
    link_policy = fields.CharEnumField(LinkPolicy, default=LinkPolicy.READ_ONLY, max_length=20)
    external_accounts = fields.CharEnumField(ExternalAccounts, default=ExternalAccounts.PROTECT, max_length=20)
    phone_rule = fields.CharEnumField(FieldRule, default=FieldRule.OPTIONAL, max_length=10)
    client_id_rule = fields.CharEnumField(FieldRule, default=FieldRule.OPTIONAL, max_length=10)
    two_factor = fields.CharEnumField(TwoFactorRule, default=TwoFactorRule.OPTIONAL, max_length=10)
    sms_invitations = fields.BooleanField(default=False)
    data_leak_deletion = fields.BooleanField(default=True)
    default_language = fields.CharField(max_length=2, default="nl")

    created_at = fields.DatetimeField()

    class Meta:
        table = "organisation"

    def settings_dict(self) -> dict[str, object]:
        """Return the settings as plain data (what flows see as ``org.settings``)."""
        return {name: _plain(getattr(self, name)) for name in SETTING_NAMES}


SETTING_NAMES: tuple[str, ...] = (
    "video_calls",
    "participant_cap",
    "search_outside_caseload",
    "link_policy",
    "external_accounts",
    "phone_rule",
    "client_id_rule",
    "two_factor",
    "sms_invitations",
    "data_leak_deletion",
    "default_language",
)


def _plain(value: object) -> object:
    return value.value if isinstance(value, StrEnum) else value
