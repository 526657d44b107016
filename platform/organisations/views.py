"""The organisation's settings page, for its application admins."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, flash, g, redirect, request, url_for

from lotse.platform.actions import require
from lotse.platform.errors import ValidationError
from lotse.platform.i18n import LANGUAGE_NAMES, LANGUAGES, LazyText, _, _l
from lotse.platform.organisations import actions
from lotse.platform.organisations.models import (
    SETTING_NAMES,
    ExternalAccounts,
    FieldRule,
    LinkPolicy,
    Organisation,
    TwoFactorRule,
)
from lotse.platform.permissions import Permission
from lotse.platform.web import actor, form_data, render, services, signed_in

blueprint = Blueprint("organisations", __name__)

ON_OFF: list[tuple[str, LazyText]] = [("on", _l("On")), ("off", _l("Off"))]
CHOICES: dict[str, list[tuple[str, LazyText | str]]] = {
    "link_policy": [
        (LinkPolicy.READ_ONLY.value, _l("Read-only: ask a linked professional or a secretary")),
        (LinkPolicy.SELF_LINK.value, _l("Professionals may link themselves")),
        (LinkPolicy.CLIENT_CONSENT.value, _l("The client must consent to the link")),
    ],
    "external_accounts": [
        (ExternalAccounts.PROTECT.value, _l("Protect externally managed accounts (details are changed in the record system)")),
        (ExternalAccounts.NEVER_EDITABLE.value, _l("Never editable (not even activation) once coupled")),
        (ExternalAccounts.ALWAYS_EDITABLE.value, _l("Always editable in Lotse")),
    ],
    "phone_rule": [(FieldRule.OPTIONAL.value, _l("Optional")), (FieldRule.REQUIRED.value, _l("Required"))],
    "client_id_rule": [(FieldRule.OPTIONAL.value, _l("Optional")), (FieldRule.REQUIRED.value, _l("Required"))],
    "two_factor": [
        (TwoFactorRule.OPTIONAL.value, _l("Optional")),
        (TwoFactorRule.REQUIRED.value, _l("Required")),
        (TwoFactorRule.OFF.value, _l("Off")),
    ],
    "default_language": [(code, LANGUAGE_NAMES[code]) for code in LANGUAGES],  # each in its own language
}
LABELS: dict[str, LazyText] = {
    "video_calls": _l("Video calls"),
    "participant_cap": _l("Maximum participants in a video call"),
    "search_outside_caseload": _l("Search outside the caseload"),
    "link_policy": _l("Linking professionals outside the caseload"),
    "external_accounts": _l("Externally managed accounts (coupling)"),
    "phone_rule": _l("Client phone number"),
    "client_id_rule": _l("Client ID"),
    "two_factor": _l("Two-factor authentication"),
    "sms_invitations": _l("SMS invitations"),
    "data_leak_deletion": _l("Deleting messages after a data leak"),
    "default_language": _l("Default language"),
}
HINTS: dict[str, LazyText] = {
    "participant_cap": _l("From 2 to 12, for example 9 for group therapy in Germany."),
    "search_outside_caseload": _l("Professionals give a reason, which is logged."),
}


def form_values(organisation: Organisation) -> dict[str, str]:
    """The settings as the form shows them (``on``/``off`` for switches)."""
    values: dict[str, str] = {}
    for name, value in organisation.settings_dict().items():
        values[name] = ("on" if value else "off") if isinstance(value, bool) else str(value)
    return values


@blueprint.route("/organisation/settings", methods=["GET", "POST"])
@signed_in()
async def settings() -> Any:
    organisation: Organisation = g.organisation
    await require(services(), actor(), Permission.ORG_SETTINGS, organisation, "organisation.view_settings")
    values = form_values(organisation)
    error = None
    if request.method == "POST":
        submitted = {k: v for k, v in (await form_data()).items() if k in SETTING_NAMES}
        values.update(submitted)
        try:
            changes = await actions.do_update_settings(services(), actor(), organisation, submitted)
        except ValidationError as caught:
            error = caught
        else:
            await flash(_("The settings were saved.") if changes else _("Nothing was changed."), "ok")
            return redirect(url_for("organisations.settings"))
    return await render("organisations/settings.html", 422 if error else 200, organisation=organisation,
                        values=values, error=error, names=SETTING_NAMES, labels=LABELS, hints=HINTS,
                        choices={**CHOICES, **dict.fromkeys(actions.BOOLEAN_SETTINGS, ON_OFF)})
