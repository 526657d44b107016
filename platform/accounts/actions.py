"""Every change to an account: create, edit, (de)activate, welcome mail, unblock, two-factor, import.

Each ``do_*`` function is the one door for its change (see
``lotse.platform.actions``): the web pages, the JSON API, the CLI, the import
and the flow engine call these and nothing else.

Which permission applies depends on the account acted on: professionals are
managed by the organisation's application admins (``PROFESSIONAL_MANAGE``),
clients by a linked therapist or a secretary (``CLIENT_MANAGE``).

Audit rows of account changes name the changed *fields*, not their values:
the audit trail outlives an erasure and must then hold no personal data.

Externally managed accounts (coupled to a record system) follow the
organisation's ``external_accounts`` setting:

| setting   | details (name, e-mail, ...) | deactivate / reactivate | welcome mail, unblock, two-factor |
|-----------|-----------------------------|-------------------------|-----------------------------------|
| ``protect`` | refused (``externally_managed``) | allowed           | allowed |
| ``never``   | refused                          | refused           | allowed |
| ``always``  | allowed                          | allowed           | allowed |

The record system changes such accounts through ``do_import_accounts``. Under
``protect`` Lotse may still end someone's access, because that is about signing
in here, not about the record; ``never`` leaves even that to the record system.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tortoise.exceptions import IntegrityError

from lotse.platform.accounts.models import Account, AccountStatus, Role, Token, TokenPurpose
from lotse.platform.accounts.sessions import end_all_sessions
from lotse.platform.accounts.tokens import LIFETIME, issue_token
from lotse.platform.accounts.validation import EXTERNAL_REF_MAX, clean_account_data
from lotse.platform.actions import MailSpec, Services, Unit, require, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.caseload.search import index_client
from lotse.platform.errors import ConflictError, NotPermittedError, PlatformError, ValidationError
from lotse.platform.events import Event
from lotse.platform.i18n import LANGUAGES, LazyText, _l
from lotse.platform.organisations.models import ExternalAccounts, Organisation
from lotse.platform.permissions import Actor, Permission

# Roles an application admin may give; the service desk is made only on the command line.
ASSIGNABLE_PROFESSIONAL_ROLES: tuple[Role, ...] = (
    Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.APP_ADMIN, Role.CONTENT_EDITOR,
)


# --- events -------------------------------------------------------------------


@dataclass(frozen=True)
class AccountCreated(Event):
    name: ClassVar[str] = "account.created"
    account_id: int
    organisation_id: int
    role: str


@dataclass(frozen=True)
class AccountUpdated(Event):
    name: ClassVar[str] = "account.updated"
    account_id: int
    fields: tuple[str, ...]


@dataclass(frozen=True)
class AccountDeactivated(Event):
    name: ClassVar[str] = "account.deactivated"
    account_id: int


@dataclass(frozen=True)
class AccountReactivated(Event):
    name: ClassVar[str] = "account.reactivated"
    account_id: int


@dataclass(frozen=True)
class WelcomeMailSent(Event):
    name: ClassVar[str] = "account.welcome_sent"
    account_id: int


@dataclass(frozen=True)
class AccountUnblocked(Event):
    name: ClassVar[str] = "account.unblocked"
    account_id: int


@dataclass(frozen=True)
class TwoFactorReset(Event):
    name: ClassVar[str] = "account.two_factor_reset"
    account_id: int


@dataclass(frozen=True)
class AccountsImported(Event):
    name: ClassVar[str] = "accounts.imported"
    organisation_id: int
    created: int
    updated: int
    unchanged: int
    errors: int


# --- helpers ------------------------------------------------------------------


def manage_permission(account: Account) -> Permission:
    """Return the permission that governs changes to ``account``."""
    return Permission.CLIENT_MANAGE if account.role is Role.CLIENT else Permission.PROFESSIONAL_MANAGE


def mail_language(account: Account, organisation: Organisation) -> str:
    """The recipient's language: their profile, else the organisation's default."""
    if account.locale in LANGUAGES:
        return account.locale
    return organisation.default_language if organisation.default_language in LANGUAGES else LANGUAGES[0]


def _email_taken() -> ConflictError:
    message = _l("A user with this e-mail address already exists.")
    return ConflictError("email_taken", message, fields={"email": message})


def _client_ref_taken() -> ConflictError:
    message = _l("Another client of this organisation already has this client ID.")
    return ConflictError("client_id_taken", message, fields={"client_ref": message})


def _externally_managed() -> ConflictError:
    return ConflictError(
        "externally_managed",
        _l("This account is managed in the coupled record system; please change it there."),
    )


def _integrity_to_conflict(error: IntegrityError) -> ConflictError:
    """Map a unique-constraint failure that slipped past the checks (a race) to its error."""
    text = str(error).lower()
    if "client_ref" in text:
        return _client_ref_taken()
    if "external_ref" in text:
        return ConflictError("external_ref_taken", _l("This external reference is already in use."),
                             fields={"external_ref": _l("This external reference is already in use.")})
    return _email_taken()


async def _check_unique(organisation: Organisation, values: Mapping[str, Any], exclude_id: int | None) -> None:
    email = values.get("email")
    if email:
        query = Account.filter(email=email)
        if exclude_id is not None:
            query = query.exclude(id=exclude_id)
        if await query.exists():
            raise _email_taken()
    ref = values.get("client_ref")
    if ref:
        query = Account.filter(organisation_id=organisation.id, client_ref=ref)
        if exclude_id is not None:
            query = query.exclude(id=exclude_id)
        if await query.exists():
            raise _client_ref_taken()


def guard_external(account: Account, organisation: Organisation, *, status_change: bool = False) -> None:
    """Refuse a change to an externally managed account where the organisation's setting says so."""
    if not account.externally_managed:
        return
    rule = organisation.external_accounts
    if rule is ExternalAccounts.ALWAYS_EDITABLE:
        return
    if rule is ExternalAccounts.PROTECT and status_change:
        return
    raise _externally_managed()


async def _send_welcome(u: Unit, account: Account, organisation: Organisation) -> None:
    secret = await issue_token(account, TokenPurpose.WELCOME, u.now)
    u.mail(MailSpec(
        kind="welcome",
        to=account.email,
        language=mail_language(account, organisation),
        context={
            "first_name": account.first_name,
            "organisation": organisation.name,
            "link": f"{u.svc.settings.base_url}/welcome/{secret}",
            "days": LIFETIME[TokenPurpose.WELCOME].days,
            "email": account.email,
        },
        account_id=account.id,
        organisation_id=organisation.id,
    ))
    u.event(WelcomeMailSent(account.id))


async def _insert(u: Unit, organisation: Organisation, role: Role, values: Mapping[str, Any]) -> Account:
    await _check_unique(organisation, values, None)
    try:
        account = await Account.create(
            organisation=organisation, role=role, pseudonym=secrets.token_hex(8),
            created_by_id=u.actor.account_id, created_at=u.now, updated_at=u.now, **values,
        )
    except IntegrityError as error:
        raise _integrity_to_conflict(error) from error
    await index_client(account)
    return account


async def _save(account: Account, fields: Sequence[str]) -> None:
    try:
        await account.save(update_fields=[*fields, "updated_at"])
    except IntegrityError as error:
        raise _integrity_to_conflict(error) from error


async def _organisation_of(account: Account) -> Organisation:
    return await Organisation.get(id=account.organisation_id)


# --- creating ----------------------------------------------------------------


async def do_create_professional(
    svc: Services, actor: Actor, organisation: Organisation, data: Mapping[str, Any], *, send_welcome: bool = True
) -> Account:
    """Create a professional account and send its welcome mail (set-password link, 7 days)."""
    async with unit(svc, actor, "account.create", Permission.PROFESSIONAL_CREATE, organisation) as u:
        role = _professional_role(data.get("role"), allow_servicedesk=actor.is_system)
        values = clean_account_data(data, role=role, organisation=organisation, today=u.now.date())
        values.update(_language(data))
        account = await _insert(u, organisation, role, values)
        if send_welcome:
            await _send_welcome(u, account, organisation)
        u.audit(AuditType.CREATE, subject=account, details={"role": role.value})
        u.event(AccountCreated(account.id, organisation.id, role.value))
    return account


def _professional_role(raw: Any, *, allow_servicedesk: bool) -> Role:
    allowed = ASSIGNABLE_PROFESSIONAL_ROLES + ((Role.SERVICEDESK,) if allow_servicedesk else ())
    if isinstance(raw, Role) and raw in allowed:
        return raw
    if isinstance(raw, str) and raw in {r.value for r in allowed}:
        return Role(raw)
    raise ValidationError(fields={"role": _l("Please choose one of the offered roles.")})


def _language(data: Mapping[str, Any]) -> dict[str, Any]:
    locale = data.get("locale")
    if locale in (None, ""):
        return {}
    if locale not in LANGUAGES:
        raise ValidationError(fields={"locale": _l("Please choose one of the offered languages.")})
    return {"locale": locale}


async def do_create_client(
    svc: Services,
    actor: Actor,
    organisation: Organisation,
    data: Mapping[str, Any],
    *,
    therapist_id: int | None = None,
    send_welcome: bool = True,
) -> Account:
    """Create a client account, link its treating therapist, and send the welcome mail.

    A therapist who creates a client is linked to it. A secretary may name the
    treating therapist (an active therapist of the same organisation).
    """
    async with unit(svc, actor, "account.create", Permission.CLIENT_CREATE, organisation) as u:
        values = clean_account_data(data, role=Role.CLIENT, organisation=organisation, today=u.now.date())
        values.update(_language(data))
        therapist = await _treating_therapist(actor, organisation, therapist_id)
        account = await _insert(u, organisation, Role.CLIENT, values)
        if therapist is not None:
            await CaseloadLink.create(client=account, professional_id=therapist, kind=LinkKind.TREATING,
                                      created_at=u.now)
        if send_welcome:
            await _send_welcome(u, account, organisation)
        u.audit(AuditType.CREATE, subject=account,
                details={"role": Role.CLIENT.value, "linked_professional_id": therapist})
        u.event(AccountCreated(account.id, organisation.id, Role.CLIENT.value))
    return account


async def _treating_therapist(actor: Actor, organisation: Organisation, therapist_id: int | None) -> int | None:
    if actor.role is Role.THERAPIST:
        return actor.account_id
    if therapist_id is None:
        return None
    found = await Account.filter(
        id=therapist_id, organisation_id=organisation.id, role=Role.THERAPIST, status=AccountStatus.ACTIVE
    ).exists()
    if not found:
        raise ValidationError(fields={"therapist_id": _l("Please choose a therapist of your organisation.")})
    return therapist_id


# --- changing ---------------------------------------------------------------


async def do_update_account(svc: Services, actor: Actor, account: Account, data: Mapping[str, Any]) -> list[str]:
    """Change an account's details; return the names of the fields that changed.

    Only the keys present in ``data`` are changed. For professionals ``role``
    may change among the assignable roles, though not one's own.
    """
    async with unit(svc, actor, "account.update", manage_permission(account), account) as u:
        organisation = await _organisation_of(account)
        guard_external(account, organisation)
        values = clean_account_data(data, role=account.role, organisation=organisation, today=u.now.date(),
                                    partial=True)
        values.update(_language(data))
        if account.role is not Role.CLIENT and "role" in data and data["role"] != account.role.value:
            if account.id == actor.account_id:
                raise ConflictError("own_account", _l("You cannot change your own role."))
            values["role"] = _professional_role(data["role"], allow_servicedesk=actor.is_system)
        changed = [name for name, value in values.items() if getattr(account, name) != value]
        if changed:
            await _check_unique(organisation, {k: values[k] for k in changed}, account.id)
            for name in changed:
                setattr(account, name, values[name])
            account.updated_at = u.now
            await _save(account, changed)
            await index_client(account)
            u.audit(AuditType.UPDATE, subject=account, details={"fields": changed})
            u.event(AccountUpdated(account.id, tuple(changed)))
    return changed


async def do_deactivate_account(svc: Services, actor: Actor, account: Account, *, reason: str = "") -> None:
    """Deactivate: the person can no longer sign in and is signed out everywhere; all data is kept."""
    async with unit(svc, actor, "account.deactivate", manage_permission(account), account) as u:
        organisation = await _organisation_of(account)
        guard_external(account, organisation, status_change=True)
        if account.id == actor.account_id:
            raise ConflictError("own_account", _l("You cannot deactivate your own account."))
        if not account.is_active:
            raise ConflictError("already_deactivated", _l("This account is already deactivated."))
        account.status = AccountStatus.DEACTIVATED
        account.updated_at = u.now
        await account.save(update_fields=["status", "updated_at"])
        await end_all_sessions(account.id)
        u.audit(AuditType.UPDATE, subject=account, details={"status": "deactivated"}, reason=reason or None)
        u.event(AccountDeactivated(account.id))


async def do_reactivate_account(
    svc: Services, actor: Actor, account: Account, *, reason: str = "", organisation: Organisation | None = None
) -> None:
    """Reactivate a deactivated account: the person can sign in again with their password.

    ``organisation``: the account's organisation when the caller has it at hand (else it is loaded).
    """
    async with unit(svc, actor, "account.reactivate", manage_permission(account), account) as u:
        if organisation is None or organisation.id != account.organisation_id:
            organisation = await _organisation_of(account)
        guard_external(account, organisation, status_change=True)
        if account.is_active:
            raise ConflictError("already_active", _l("This account is already active."))
        account.status = AccountStatus.ACTIVE
        account.updated_at = u.now
        await account.save(update_fields=["status", "updated_at"])
        u.audit(AuditType.UPDATE, subject=account, details={"status": "active"}, reason=reason or None)
        u.event(AccountReactivated(account.id))


async def do_resend_welcome(svc: Services, actor: Actor, account: Account) -> None:
    """Send a new welcome mail; the link sent before stops working."""
    async with unit(svc, actor, "account.resend_welcome", manage_permission(account), account) as u:
        if not account.is_active:
            raise ConflictError("not_active", _l("This account is deactivated. Reactivate it first."))
        organisation = await _organisation_of(account)
        await _send_welcome(u, account, organisation)
        u.audit(AuditType.UPDATE, subject=account, details={"welcome_mail": "sent"})


async def do_issue_welcome_link(svc: Services, actor: Actor, account: Account) -> str:
    """Return a fresh welcome link without mailing it (command line only: an admin passes it on)."""
    refuse_unless_system(actor)
    async with unit(svc, actor, "account.issue_welcome_link", None) as u:
        if not account.is_active:
            raise ConflictError("not_active", _l("This account is deactivated. Reactivate it first."))
        secret = await issue_token(account, TokenPurpose.WELCOME, u.now)
        u.audit(AuditType.UPDATE, subject=account, details={"welcome_link": "issued"})
    return f"{svc.settings.base_url}/welcome/{secret}"


async def do_unblock_account(svc: Services, actor: Actor, account: Account) -> None:
    """Unblock an account that was blocked after failed sign-ins."""
    async with unit(svc, actor, "account.unblock", manage_permission(account), account) as u:
        if account.blocked_at is None and not account.failed_logins:
            raise ConflictError("not_blocked", _l("This account is not blocked."))
        account.blocked_at = None
        account.failed_logins = 0
        account.updated_at = u.now
        await account.save(update_fields=["blocked_at", "failed_logins", "updated_at"])
        # The link in the "account blocked" mail is of no use any more: it dies.
        await Token.filter(account_id=account.id, purpose=TokenPurpose.UNBLOCK, used_at=None,
                           revoked_at=None).update(revoked_at=u.now)
        u.audit(AuditType.UPDATE, subject=account, details={"blocked": False})
        u.event(AccountUnblocked(account.id))


async def do_reset_two_factor(svc: Services, actor: Actor, account: Account) -> None:
    """Remove the authenticator and the recovery codes; the owner is told by mail and enrols again."""
    async with unit(svc, actor, "account.reset_two_factor", Permission.TWO_FACTOR_RESET, account) as u:
        if account.totp_secret is None and account.totp_enabled_at is None and not account.recovery_codes:
            raise ConflictError("two_factor_not_set_up", _l("This account has no two-factor authentication to reset."))
        account.totp_secret = None
        account.totp_enabled_at = None
        account.totp_last_step = None
        account.recovery_codes = []
        account.updated_at = u.now
        await account.save(update_fields=["totp_secret", "totp_enabled_at", "totp_last_step", "recovery_codes",
                                          "updated_at"])
        organisation = await _organisation_of(account)
        u.mail(MailSpec(
            kind="two_factor_reset", to=account.email, language=mail_language(account, organisation),
            context={"first_name": account.first_name, "organisation": organisation.name,
                     "when": u.now, "time_zone": organisation.time_zone},
            account_id=account.id, organisation_id=organisation.id,
        ))
        u.audit(AuditType.UPDATE, subject=account, details={"two_factor": "reset"})
        u.event(TwoFactorReset(account.id))


# --- import --------------------------------------------------------------------


@dataclass
class ImportResult:
    """What happened to one record; ``fields`` and ``message`` only for errors."""

    index: int
    external_ref: str | None
    outcome: str                      # created, updated, unchanged, error
    account_id: int | None = None
    code: str | None = None
    message: LazyText | None = None
    fields: dict[str, LazyText] = field(default_factory=dict)

    def to_json(self, language: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"index": self.index, "external_ref": self.external_ref, "outcome": self.outcome,
                                "account_id": self.account_id}
        if self.outcome == "error":
            body["code"] = self.code
            body["message"] = self.message.render(language) if self.message else ""
            body["fields"] = {name: text.render(language) for name, text in self.fields.items()}
        return body


@dataclass
class ImportReport:
    results: list[ImportResult]

    def count(self, outcome: str) -> int:
        return sum(1 for result in self.results if result.outcome == outcome)

    def summary(self) -> dict[str, int]:
        return {name: self.count(name) for name in ("created", "updated", "unchanged", "error")}


_IMPORT_FIELDS = ("email", "first_name", "last_name", "gender", "date_of_birth", "phone", "client_ref",
                  "label", "package")


async def do_import_accounts(
    svc: Services, actor: Actor, organisation: Organisation, records: Sequence[Any]
) -> ImportReport:
    """Create and update externally managed accounts from JSON records keyed by ``external_ref``.

    A record: ``external_ref`` (required), ``role`` (default ``client``),
    ``email``, ``first_name``, ``last_name``; for clients ``gender``,
    ``date_of_birth``, ``phone``, ``client_ref``, ``label``, ``package`` and
    ``therapist_email`` (the treating therapist to link); ``active`` (default
    true). Each record is its own transaction, so one bad record does not stop
    the rest; new active accounts get their welcome mail.
    """
    await require(svc, actor, Permission.ACCOUNTS_IMPORT, organisation, "accounts.import")
    results: list[ImportResult] = []
    for index, record in enumerate(records):
        ref = record.get("external_ref") if isinstance(record, Mapping) else None
        ref_text = ref if isinstance(ref, str) else None
        try:
            async with unit(svc, actor, "accounts.import", None) as u:
                outcome, account_id = await _import_one(u, organisation, record)
            results.append(ImportResult(index, ref_text, outcome, account_id))
        except PlatformError as error:
            results.append(ImportResult(index, ref_text, "error", None, error.code, error.message,
                                        dict(error.fields)))
    report = ImportReport(results)
    async with unit(svc, actor, "accounts.import", None) as u:
        u.audit(AuditType.IMPORT, details={"organisation_id": organisation.id, **report.summary()})
        u.event(AccountsImported(organisation.id, report.count("created"), report.count("updated"),
                                 report.count("unchanged"), report.count("error")))
    return report


async def _import_one(u: Unit, organisation: Organisation, record: Any) -> tuple[str, int]:
    if not isinstance(record, Mapping):
        raise ValidationError(fields={"record": _l("Each record must be a JSON object.")})
    ref = record.get("external_ref")
    if not isinstance(ref, str) or not ref.strip() or len(ref) > EXTERNAL_REF_MAX:
        raise ValidationError(fields={"external_ref": _l("Each record needs an external reference (text).")})
    ref = ref.strip()
    raw_role = record.get("role", Role.CLIENT.value)
    role = Role.CLIENT if raw_role == Role.CLIENT.value else _professional_role(raw_role, allow_servicedesk=False)
    active = record.get("active", True)
    if not isinstance(active, bool):
        raise ValidationError(fields={"active": _l("This value is not valid.")})
    data = {name: record.get(name) for name in _IMPORT_FIELDS if name in record}
    values = clean_account_data(data, role=role, organisation=organisation, today=u.now.date())
    therapist_id = await _import_therapist(organisation, record.get("therapist_email"), role)

    account = await Account.get_or_none(organisation_id=organisation.id, external_ref=ref)
    if account is None:
        values.update(external_ref=ref, externally_managed=True,
                      status=AccountStatus.ACTIVE if active else AccountStatus.DEACTIVATED)
        account = await _insert(u, organisation, role, values)
        if therapist_id is not None:
            await CaseloadLink.create(client=account, professional_id=therapist_id, kind=LinkKind.TREATING,
                                      created_at=u.now)
        if active:
            await _send_welcome(u, account, organisation)
        u.audit(AuditType.IMPORT, subject=account, details={"result": "created", "role": role.value})
        u.event(AccountCreated(account.id, organisation.id, role.value))
        return "created", account.id

    if (account.role is Role.CLIENT) != (role is Role.CLIENT):
        raise ValidationError(fields={"role": _l("A client cannot become a professional, or the other way round.")})
    if role is not account.role:
        values["role"] = role
    if not account.externally_managed:
        values["externally_managed"] = True
    status = AccountStatus.ACTIVE if active else AccountStatus.DEACTIVATED
    if status is not account.status:
        values["status"] = status
    changed = [name for name, value in values.items() if getattr(account, name) != value]
    linked = False
    if therapist_id is not None and not await CaseloadLink.filter(client_id=account.id,
                                                                  professional_id=therapist_id).exists():
        await CaseloadLink.create(client=account, professional_id=therapist_id, kind=LinkKind.TREATING,
                                  created_at=u.now)
        linked = True
    if not changed and not linked:
        return "unchanged", account.id
    if changed:
        await _check_unique(organisation, {k: values[k] for k in changed}, account.id)
        for name in changed:
            setattr(account, name, values[name])
        account.updated_at = u.now
        await _save(account, changed)
        await index_client(account)
        if "status" in changed and status is AccountStatus.DEACTIVATED:
            await end_all_sessions(account.id)
    u.audit(AuditType.IMPORT, subject=account,
            details={"result": "updated", "fields": changed, "linked_professional_id": therapist_id if linked else None})
    u.event(AccountUpdated(account.id, tuple(changed)))
    return "updated", account.id


async def _import_therapist(organisation: Organisation, email: Any, role: Role) -> int | None:
    if email in (None, ""):
        return None
    if role is not Role.CLIENT or not isinstance(email, str):
        raise ValidationError(fields={"therapist_email": _l("This value is not valid.")})
    therapist = await Account.get_or_none(email=email.strip().lower(), organisation_id=organisation.id,
                                          role=Role.THERAPIST)
    if therapist is None:
        raise ValidationError(fields={"therapist_email": _l("No therapist of this organisation has this e-mail address.")})
    return therapist.id


def refuse_unless_system(actor: Actor) -> None:
    """For what only the command line may do (service desk accounts, organisations)."""
    if not actor.is_system:
        raise NotPermittedError()
