"""Creating organisations (command line, demo) and changing their settings (application admins).

Settings changes are audited with every changed value, old and new: they are
configuration, not personal data, and an admin must be able to see who turned
what on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from lotse.platform.actions import Services, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.events import Event
from lotse.platform.i18n import LANGUAGES, LazyText, _l
from lotse.platform.organisations.models import (
    SETTING_NAMES,
    ExternalAccounts,
    FieldRule,
    LinkPolicy,
    Organisation,
    TwoFactorRule,
    _plain,
)
from lotse.platform.permissions import Actor, Permission

PARTICIPANT_CAP_MIN = 2
PARTICIPANT_CAP_MAX = 12

BOOLEAN_SETTINGS = ("video_calls", "search_outside_caseload", "sms_invitations", "data_leak_deletion")
_CHOICES: dict[str, type[StrEnum]] = {
    "link_policy": LinkPolicy,
    "external_accounts": ExternalAccounts,
    "phone_rule": FieldRule,
    "client_id_rule": FieldRule,
    "two_factor": TwoFactorRule,
}


@dataclass(frozen=True)
class OrganisationCreated(Event):
    name: ClassVar[str] = "organisation.created"
    organisation_id: int


@dataclass(frozen=True)
class SettingsUpdated(Event):
    name: ClassVar[str] = "organisation.settings_updated"
    organisation_id: int
    changes: dict[str, list[Any]]


def clean_settings(data: Mapping[str, Any]) -> dict[str, Any]:
    """Check setting values (form strings or JSON values); raise one ``ValidationError`` naming each bad one."""
    errors: dict[str, LazyText] = {}
    out: dict[str, Any] = {}
    invalid = _l("This value is not valid.")
    for name, raw in data.items():
        if name not in SETTING_NAMES:
            errors[name] = _l("This is not a setting.")
        elif name in BOOLEAN_SETTINGS:
            value = {"on": True, "off": False, "true": True, "false": False}.get(raw) if isinstance(raw, str) else raw
            if isinstance(value, bool):
                out[name] = value
            else:
                errors[name] = invalid
        elif name == "participant_cap":
            value = int(raw) if isinstance(raw, str) and raw.strip().isdigit() else raw
            if isinstance(value, bool) or not isinstance(value, int):
                errors[name] = invalid
            elif not PARTICIPANT_CAP_MIN <= value <= PARTICIPANT_CAP_MAX:
                errors[name] = _l("Choose a number from %(low)s to %(high)s.", low=PARTICIPANT_CAP_MIN,
                                  high=PARTICIPANT_CAP_MAX)
            else:
                out[name] = value
        elif name == "default_language":
            if raw in LANGUAGES:
                out[name] = raw
            else:
                errors[name] = _l("Please choose one of the offered languages.")
        else:
            choices = _CHOICES[name]
            if isinstance(raw, str) and raw in {c.value for c in choices}:
                out[name] = choices(raw)
            else:
                errors[name] = invalid
    if errors:
        raise ValidationError(fields=errors)
    return out


async def do_create_organisation(
    svc: Services, actor: Actor, *, slug: str, name: str, settings: Mapping[str, Any] | None = None
) -> Organisation:
    """Create an organisation with default settings (command line and demo only)."""
    if not actor.is_system:
        raise NotPermittedError()
    values = clean_settings(settings or {})
    async with unit(svc, actor, "organisation.create", None) as u:
        if await Organisation.filter(slug=slug).exists():
            raise ConflictError("slug_taken", _l("An organisation with this short name already exists."))
        organisation = await Organisation.create(slug=slug, name=name, created_at=u.now, **values)
        u.audit(AuditType.CREATE, details={"organisation_id": organisation.id, "slug": slug})
        u.event(OrganisationCreated(organisation.id))
    return organisation


async def do_update_settings(
    svc: Services, actor: Actor, organisation: Organisation, data: Mapping[str, Any]
) -> dict[str, list[Any]]:
    """Change settings; return ``{setting: [old, new]}`` for those that changed."""
    async with unit(svc, actor, "organisation.update_settings", Permission.ORG_SETTINGS, organisation) as u:
        values = clean_settings(data)
        changes: dict[str, list[Any]] = {}
        for name, value in values.items():
            old = getattr(organisation, name)
            if old != value:
                changes[name] = [_plain(old), _plain(value)]
                setattr(organisation, name, value)
        if changes:
            await organisation.save(update_fields=list(changes))
            u.audit(AuditType.UPDATE, details={"organisation_id": organisation.id, "changes": changes})
            u.event(SettingsUpdated(organisation.id, changes))
    return changes
