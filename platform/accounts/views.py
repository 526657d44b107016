"""Pages to manage accounts: professionals (application admins) and clients (therapists, secretaries).

Thin views: read the form (CSRF-checked), call one action or query, render.
Buttons that change an account first show a page that says what will
happen and asks to confirm (no script needed, so it works without
JavaScript), then post again with ``confirmed=1``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from quart import Blueprint, flash, g, redirect, request, url_for

from lotse.platform.accounts import actions, queries
from lotse.platform.accounts.models import Account, Gender, Role
from lotse.platform.accounts.roles import ROLE_NAMES
from lotse.platform.errors import ConflictError, NotFoundError, NotPermittedError, ValidationError
from lotse.platform.i18n import LazyText, _, _l
from lotse.platform.organisations.models import ExternalAccounts, FieldRule, Organisation
from lotse.platform.permissions import Permission, allowed
from lotse.platform.web import actor, form_data, render, services, signed_in

blueprint = Blueprint("accounts", __name__)

GENDER_NAMES: dict[Gender, LazyText] = {
    Gender.FEMALE: _l("Female"),
    Gender.MALE: _l("Male"),
    Gender.OTHER: _l("Other"),
    Gender.UNKNOWN: _l("Not specified"),
}


def _organisation() -> Organisation:
    organisation: Organisation = g.organisation
    return organisation


def _common_context() -> dict[str, Any]:
    return {"ROLE_NAMES": ROLE_NAMES, "GENDER_NAMES": GENDER_NAMES,
            "assignable_roles": actions.ASSIGNABLE_PROFESSIONAL_ROLES, "FieldRule": FieldRule,
            "gender_options": [(gender.value, GENDER_NAMES[gender]) for gender in Gender],
            "role_options": [(role.value, ROLE_NAMES[role]) for role in actions.ASSIGNABLE_PROFESSIONAL_ROLES]}


# --- professionals ------------------------------------------------------------------


@blueprint.get("/professionals")
@signed_in()
async def professionals() -> Any:
    """The organisation's professionals, filterable by role (application admins)."""
    raw = request.args.get("role", "")
    role = Role(raw) if raw in {r.value for r in Role if r is not Role.CLIENT} else None
    people = await queries.list_professionals(services(), actor(), _organisation(), role=role)
    return await render("accounts/professionals.html", people=people, role=role,
                        filter_roles=[r for r in Role if r is not Role.CLIENT], **_common_context())


@blueprint.route("/professionals/new", methods=["GET", "POST"])
@signed_in()
async def new_professional() -> Any:
    organisation = _organisation()
    if not await allowed(actor(), Permission.PROFESSIONAL_CREATE, organisation):
        raise NotPermittedError()
    values: dict[str, str] = {"role": Role.THERAPIST.value}
    error = None
    if request.method == "POST":
        values = await form_data()
        try:
            account = await actions.do_create_professional(services(), actor(), organisation, values)
        except (ValidationError, ConflictError) as caught:
            error = caught
        else:
            await flash(_("The account was created and the welcome mail is on its way."), "ok")
            return redirect(url_for("accounts.account", account_id=account.id))
    return await render("accounts/professional_form.html", 422 if error else 200, values=values, error=error,
                        **_common_context())


# --- clients ----------------------------------------------------------------------


@blueprint.get("/clients")
@signed_in()
async def clients() -> Any:
    """The clients the professional may see: linked ones, or all of the organisation for secretaries."""
    organisation = _organisation()
    people = await queries.list_clients(services(), actor(), organisation)
    may_create = await allowed(actor(), Permission.CLIENT_CREATE, organisation)
    return await render("accounts/clients.html", people=people, may_create=may_create, **_common_context())


@blueprint.route("/clients/new", methods=["GET", "POST"])
@signed_in()
async def new_client() -> Any:
    """The "new client" form; field errors in the user's language, ``email_taken`` marked for its help link."""
    organisation = _organisation()
    therapists = await queries.therapists_for_assignment(services(), actor(), organisation)
    values: dict[str, str] = {}
    error = None
    if request.method == "POST":
        values = await form_data()
        therapist_id = values.get("therapist_id", "")
        try:
            account = await actions.do_create_client(
                services(), actor(), organisation, values,
                therapist_id=int(therapist_id) if therapist_id.isdigit() else None,
            )
        except (ValidationError, ConflictError) as caught:
            error = caught
        else:
            await flash(_("The client account was created and the welcome mail is on its way."), "ok")
            return redirect(url_for("accounts.account", account_id=account.id))
    status = (error.status if error else 200)
    return await render("accounts/client_form.html", status, values=values, error=error, organisation=organisation,
                        therapist_options=[(str(t.id), t.name) for t in therapists]
                        if g.account.role is Role.SECRETARY else [],
                        **_common_context())


# --- one account ------------------------------------------------------------------


async def _load(account_id: int, permission: Permission | None = None, *, audit_read: bool = True) -> Account:
    return await queries.get_account_for(services(), actor(), account_id, permission, audit_read=audit_read)


async def _possible(account: Account) -> dict[str, bool]:
    """Which buttons to offer: permitted, and sensible in the account's state and the organisation's setting."""
    who = actor()
    organisation = _organisation()
    manage = await allowed(who, actions.manage_permission(account), account)
    external = account.externally_managed and organisation.external_accounts is not ExternalAccounts.ALWAYS_EDITABLE
    status_locked = account.externally_managed and organisation.external_accounts is ExternalAccounts.NEVER_EDITABLE
    own = account.id == who.account_id
    return {
        "edit": manage and not external,
        "deactivate": manage and account.is_active and not status_locked and not own,
        "reactivate": manage and not account.is_active and not status_locked,
        "resend_welcome": manage and account.is_active,
        "unblock": manage and (account.is_blocked or account.failed_logins > 0),
        "reset_two_factor": (await allowed(who, Permission.TWO_FACTOR_RESET, account))
        and (account.totp_secret is not None or account.totp_enabled_at is not None or bool(account.recovery_codes)),
    }


@blueprint.get("/accounts/<int:account_id>")
@signed_in()
async def account(account_id: int) -> Any:
    subject = await _load(account_id)
    links = await queries.linked_professionals(subject) if subject.role is Role.CLIENT else []
    return await render("accounts/account.html", subject=subject, links=links, can=await _possible(subject),
                        organisation=_organisation(), **_common_context())


@blueprint.route("/accounts/<int:account_id>/edit", methods=["GET", "POST"])
@signed_in()
async def edit(account_id: int) -> Any:
    subject = await _load(account_id, audit_read=request.method == "GET")
    if not (await _possible(subject))["edit"]:
        if subject.externally_managed:
            actions.guard_external(subject, _organisation())
        raise NotPermittedError()
    values = _values_of(subject)
    error = None
    if request.method == "POST":
        submitted = await form_data()
        values = {**values, **submitted}
        try:
            changed = await actions.do_update_account(services(), actor(), subject, submitted)
        except (ValidationError, ConflictError) as caught:
            error = caught
        else:
            await flash(_("The changes were saved.") if changed else _("Nothing was changed."), "ok")
            return redirect(url_for("accounts.account", account_id=subject.id))
    return await render("accounts/edit.html", error.status if error else 200, subject=subject, values=values,
                        error=error, organisation=_organisation(), **_common_context())


def _values_of(account: Account) -> dict[str, str]:
    names = ["email", "first_name", "last_name"]
    if account.role is Role.CLIENT:
        names += ["gender", "phone", "client_ref", "label", "package"]
    values = {name: (str(getattr(account, name).value if hasattr(getattr(account, name), "value")
                         else getattr(account, name) or "")) for name in names}
    if account.role is Role.CLIENT:
        values["date_of_birth"] = account.date_of_birth.isoformat() if account.date_of_birth else ""
    else:
        values["role"] = account.role.value
    return values


Operation = Callable[[Account], Awaitable[Any]]


def _operations() -> dict[str, tuple[Operation, LazyText, LazyText, LazyText]]:
    """verb → (action, question, consequence, done message)."""
    svc, who = services(), actor()
    return {
        "deactivate": (
            lambda a: actions.do_deactivate_account(svc, who, a),
            _l("Deactivate this account?"),
            _l("The person can no longer sign in and is signed out everywhere. All data is kept, and you can reactivate the account at any time."),
            _l("The account was deactivated."),
        ),
        "reactivate": (
            lambda a: actions.do_reactivate_account(svc, who, a),
            _l("Reactivate this account?"),
            _l("The person can sign in again with their existing password."),
            _l("The account was reactivated."),
        ),
        "resend-welcome": (
            lambda a: actions.do_resend_welcome(svc, who, a),
            _l("Send the welcome mail again?"),
            _l("A new link to choose a password is sent, valid for 7 days. Earlier links stop working."),
            _l("The welcome mail was sent again."),
        ),
        "unblock": (
            lambda a: actions.do_unblock_account(svc, who, a),
            _l("Unblock this account?"),
            _l("The account was blocked after too many failed sign-in attempts. After unblocking, the person can sign in again."),
            _l("The account was unblocked."),
        ),
        "reset-two-factor": (
            lambda a: actions.do_reset_two_factor(svc, who, a),
            _l("Reset two-factor authentication?"),
            _l("The authenticator app and all recovery codes stop working. The person sets up two-factor authentication again at the next sign-in and is told about this by e-mail."),
            _l("Two-factor authentication was reset."),
        ),
    }


@blueprint.post("/accounts/<int:account_id>/<verb>")
@signed_in()
async def operate(account_id: int, verb: str) -> Any:
    """Ask for confirmation, then run one of the account operations."""
    operations = _operations()
    if verb not in operations:
        raise NotFoundError()
    form = await form_data()
    subject = await _load(account_id, audit_read=False)
    run, question, consequence, done = operations[verb]
    if form.get("confirmed") != "1":
        return await render("accounts/confirm.html", subject=subject, verb=verb, question=question,
                            consequence=consequence, **_common_context())
    try:
        await run(subject)
    except ConflictError as caught:
        await flash(str(caught.message), "error")
    else:
        await flash(str(done), "ok")
    return redirect(url_for("accounts.account", account_id=subject.id))
