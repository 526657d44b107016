"""Reading the audit log: filters, plain rows, plain-language action names.

Two layers, so that the same reading serves two audiences:

- ``list_events(filters, after_id, limit)`` is the bare query: scoped to one
  organisation, newest first, paginated by keyset on the id, names of the
  people involved looked up. It checks nothing and records nothing; whoever
  calls it decides who may see what. The client-facing contact history
  (a client's own view of what happened in their account) will call it with
  a client filter after its own access check.
- ``read_audit_log`` and ``export_audit_log`` are the application admins'
  doors: they demand ``Permission.AUDIT_READ`` (a refusal is audited), and
  they record the reading itself (``AuditType.READ`` / ``AuditType.EXPORT``,
  with the filters in the details), as NEN 7513 asks.

``ACTION_DESCRIPTIONS`` turns an action name such as ``account.reactivate``
into words for people; engineers who add actions add their entry here.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lotse.platform import i18n
from lotse.platform.accounts.models import Account, Role
from lotse.platform.accounts.roles import role_label
from lotse.platform.actions import Services, record
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.errors import NotPermittedError, ValidationError
from lotse.platform.i18n import LazyText, _l, pgettext
from lotse.platform.permissions import Actor, Permission, allowed

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# An export is one file in one response; beyond this, narrow the period.
MAX_EXPORT_ROWS = 50_000
MAX_INT32 = 2**31 - 1
MAX_ID = 2**63 - 1

ACTION_DESCRIPTIONS: Mapping[str, LazyText] = {
    # Accounts (``account.create_client`` and the other flow actions' names are recorded
    # when a flow asks for them without permission).
    "account.create": _l("Created an account"),
    "account.create_client": _l("Created a client account"),
    "account.update": _l("Changed account details"),
    "account.update_email": _l("Changed an e-mail address"),
    "account.deactivate": _l("Deactivated an account"),
    "account.reactivate": _l("Reactivated an account"),
    "account.resend_welcome": _l("Sent the welcome mail again"),
    "account.resend_welcome_mail": _l("Sent the welcome mail again"),
    "account.issue_welcome_link": _l("Made a new welcome link"),
    "account.send_password_reset": _l("Sent a password reset link"),
    "account.send_unblock_link": _l("Sent an unblock link"),
    "account.unblock": _l("Unblocked an account"),
    "account.reset_two_factor": _l("Two-factor authentication was reset"),
    "account.set_language": _l("Changed the language"),
    "account.view": _l("Looked at an account"),
    "account.list_clients": _l("Listed clients"),
    "account.list_professionals": _l("Listed professionals"),
    "account.list_therapists": _l("Listed therapists"),
    "accounts.import": _l("Imported accounts from a record system"),
    # Signing in
    "auth.sign_in": _l("Signed in"),
    "auth.sign_in.password": _l("Password accepted, second factor due"),
    "auth.two_factor": _l("Entered a two-factor code"),
    "auth.sign_out": _l("Signed out"),
    "auth.password_reset.request": _l("Asked for a password reset link"),
    "auth.unblock_link.request": _l("Asked for an unblock link"),
    "auth.password.welcome": _l("Chose a first password"),
    "auth.password.reset": _l("Chose a new password"),
    "auth.password.change": _l("Changed the password"),
    "auth.block": _l("Account blocked after failed sign-ins"),
    "auth.unblock": _l("Account unblocked"),
    "auth.two_factor.enable": _l("Two-factor authentication was set up"),
    "auth.recovery_code.use": _l("Used a recovery code"),
    "auth.recovery_codes.regenerate": _l("Made new recovery codes"),
    # Organisations, audit, mail
    "organisation.create": _l("Created an organisation"),
    "organisation.view": _l("Looked at the organisation"),
    "organisation.view_settings": _l("Looked at the organisation's settings"),
    "organisation.update_settings": _l("Changed the organisation's settings"),
    "organisation.professionals": _l("Listed the organisation's professionals"),
    "audit.read": _l("Read the audit log"),
    "audit.export": _l("Exported the audit log"),
    "mail.give_up": _l("Gave up delivering a message"),
    # Help sessions
    "help.session.start": _l("Started a help session"),
    "help.session.advance": _l("Went on in a help session"),
    "help.session.end": _l("Finished a help session"),
    "help.session.abandon": _l("Abandoned a help session"),
    "help.fact": _l("Looked up a client's details in a help session"),
    "help.outcomes": _l("Read the help sessions' outcomes"),
    "help.transcript.export": _l("Exported a help session's transcript"),
    # Caseload, tasks, tools, conversations, calls
    "caseload.view": _l("Opened the client's dossier"),
    "caseload.history": _l("Read the contact history"),
    "caseload.search": _l("Searched the caseload"),
    "caseload.search_outside": _l("Searched outside the caseload"),
    "caseload.open_outside": _l("Opened a client found outside the caseload"),
    "caseload.link": _l("Linked a professional"),
    "caseload.link_professional": _l("Linked a professional"),
    "caseload.link_self": _l("Linked themself to the client"),
    "caseload.self_link": _l("Linked themself to the client"),
    "caseload.unlink": _l("Unlinked a professional"),
    "caseload.unlink_professional": _l("Unlinked a professional"),
    "caseload.request_link": _l("Asked the client to accept a link"),
    "caseload.link_request_accept": _l("Accepted a link request"),
    "caseload.link_request_reject": _l("Rejected a link request"),
    "caseload.link_request_expire": _l("A link request expired"),
    "task.create": _l("Created a task"),
    "tasks.create": _l("Created a task"),
    "task.complete": _l("Completed a task"),
    "task.read": _l("Read the tasks"),
    "tool.create": _l("Added a tool to the catalogue"),
    "tool.assign": _l("Assigned a tool"),
    "tool.archive": _l("Archived a tool"),
    "tool.progress": _l("Worked in a tool"),
    "conversation.start": _l("Started a conversation"),
    "conversations.start": _l("Started a conversation"),
    "conversation.mark_read": _l("Marked a conversation as read"),
    "conversation.read": _l("Read a conversation"),
    "conversation.post": _l("Sent a message"),
    "conversation.edit_message": _l("Edited a message"),
    "conversation.change_subject": _l("Changed a conversation's subject"),
    "conversation.add_participant": _l("Added someone to a conversation"),
    "conversation.remove_participant": _l("Removed someone from a conversation"),
    "conversation.leave": _l("Left a conversation"),
    "conversation.hand_over": _l("Handed over a conversation"),
    "conversation.download": _l("Downloaded an attachment"),
    "conversation.leak_remove": _l("Removed a message because of a data leak"),
    "conversation.purge": _l("Purged a removed message permanently"),
    "conversation.deletion_log": _l("Read the deletion log"),
    "conversation.delete_empty": _l("Deleted a conversation without messages"),
    "call.start": _l("Started a video call"),
    "call.join": _l("Joined a video call"),
    "call.leave": _l("Left a video call"),
    "call.end": _l("A video call ended"),
    "call.invite": _l("Invited someone to a video call"),
    "call.view": _l("Looked up a video call"),
    "call.purge": _l("Deleted the records of old video calls"),
}


def describe_action(name: str) -> LazyText | str:
    """Return the action in plain words, or its raw name when none is known."""
    return ACTION_DESCRIPTIONS.get(name, name)


def event_type_label(event_type: str) -> str:
    """Return an audit event type in words, in the current language."""
    labels = {
        AuditType.CREATE.value: pgettext("audit event type", "Create"),
        AuditType.READ.value: pgettext("audit event type", "Read"),
        AuditType.UPDATE.value: pgettext("audit event type", "Update"),
        AuditType.DELETE.value: pgettext("audit event type", "Delete"),
        AuditType.SEARCH.value: pgettext("audit event type", "Search"),
        AuditType.EXPORT.value: pgettext("audit event type", "Export"),
        AuditType.IMPORT.value: pgettext("audit event type", "Import"),
        AuditType.EMERGENCY_ACCESS.value: pgettext("audit event type", "Emergency access"),
        AuditType.SIGN_IN.value: pgettext("audit event type", "Sign-in"),
        AuditType.SIGN_IN_FAILURE.value: pgettext("audit event type", "Failed sign-in"),
        AuditType.SIGN_OUT.value: pgettext("audit event type", "Sign-out"),
    }
    return labels.get(event_type, event_type)


def outcome_label(outcome: str) -> str:
    """Return an outcome in words, in the current language."""
    labels = {
        Outcome.SUCCESS.value: pgettext("audit outcome", "Success"),
        Outcome.REFUSED.value: pgettext("audit outcome", "Refused"),
        Outcome.FAILED.value: pgettext("audit outcome", "Failed"),
    }
    return labels.get(outcome, outcome)


@dataclass(frozen=True)
class AuditFilters:
    """What to show. ``organisation_id`` is not a filter but the scope: always set."""

    organisation_id: int
    date_from: date | None = None      # inclusive, a day in ``time_zone``
    date_to: date | None = None        # inclusive
    time_zone: str = i18n.DEFAULT_TIME_ZONE
    user: str = ""                     # an account id, or an e-mail address
    client: str = ""                   # a client's pseudonym, or their e-mail address
    event_type: AuditType | None = None
    outcome: Outcome | None = None

    def as_details(self) -> dict[str, Any]:
        """Return the filters that were set, as JSON-able data for the audit row."""
        details: dict[str, Any] = {}
        if self.date_from:
            details["date_from"] = self.date_from.isoformat()
        if self.date_to:
            details["date_to"] = self.date_to.isoformat()
        if self.user:
            details["user"] = self.user
        if self.client:
            details["client"] = self.client
        if self.event_type:
            details["event_type"] = self.event_type.value
        if self.outcome:
            details["outcome"] = self.outcome.value
        return details

    def audit_details(self) -> dict[str, Any]:
        """Return the filters for the reading's own audit row: an e-mail address is not kept there."""
        details = self.as_details()
        for key in ("user", "client"):
            if "@" in details.get(key, ""):
                details[key] = "e-mail address"
        return details

    def as_query(self) -> dict[str, str]:
        """Return the filters as query-string arguments (for links to other pages)."""
        return {key: str(value) for key, value in self.as_details().items()}


FILTER_FIELDS = ("date_from", "date_to", "user", "client", "event_type", "outcome")


def filters_from_args(args: Mapping[str, Any], organisation_id: int, time_zone: str | None = None) -> AuditFilters:
    """Build filters from form or query-string values; raise ``ValidationError`` naming bad fields."""
    problems: dict[str, LazyText] = {}

    def text(name: str, limit: int = 254) -> str:
        value = str(args.get(name) or "").strip()
        if len(value) > limit:
            problems[name] = _l("This is too long.")
            return ""
        return value

    def day(name: str) -> date | None:
        value = args.get(name)
        if isinstance(value, date):
            return value
        raw = str(value or "").strip()
        if not raw:
            return None
        try:
            return date.fromisoformat(raw)
        except ValueError:
            problems[name] = _l("Please enter a date as YYYY-MM-DD.")
            return None

    date_from, date_to = day("date_from"), day("date_to")
    if date_from and date_to and date_to < date_from:
        problems["date_to"] = _l("The end date must not be before the start date.")
    event_type: AuditType | None = None
    if raw_type := text("event_type", 40):
        try:
            event_type = AuditType(raw_type)
        except ValueError:
            problems["event_type"] = _l("Please choose an event type from the list.")
    outcome: Outcome | None = None
    if raw_outcome := text("outcome", 20):
        try:
            outcome = Outcome(raw_outcome)
        except ValueError:
            problems["outcome"] = _l("Please choose an outcome from the list.")
    user, client = text("user"), text("client")
    if problems:
        raise ValidationError(fields=problems)
    return AuditFilters(
        organisation_id=organisation_id, date_from=date_from, date_to=date_to,
        time_zone=_valid_zone(time_zone), user=user, client=client.lower() if "@" in client else client,
        event_type=event_type, outcome=outcome,
    )


def _valid_zone(name: str | None) -> str:
    try:
        ZoneInfo(name or "")
    except (ZoneInfoNotFoundError, ValueError):
        return i18n.DEFAULT_TIME_ZONE
    return name or i18n.DEFAULT_TIME_ZONE


@dataclass(frozen=True)
class AuditRow:
    """One audit event as people read it: ids resolved to names, codes to words."""

    id: int
    at: datetime
    event_type: str
    action: str
    action_text: LazyText | str
    outcome: str
    actor_id: int | None
    actor_role: str
    actor_name: LazyText | str          # a name, "deleted account #7", or the role's word
    on_behalf_of_id: int | None
    on_behalf_of_name: LazyText | str
    subject_id: int | None
    subject_name: LazyText | str        # professionals by name; clients only by pseudonym
    client_pseudonym: str | None
    source_address: str
    via: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """Return the row as JSON-able data, texts rendered in the current language."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "event_type": self.event_type,
            "action": self.action,
            "action_text": str(self.action_text),
            "outcome": self.outcome,
            "actor_id": self.actor_id,
            "actor_role": self.actor_role,
            "actor_name": str(self.actor_name),
            "on_behalf_of_id": self.on_behalf_of_id,
            "on_behalf_of_name": str(self.on_behalf_of_name),
            "subject_id": self.subject_id,
            "subject_name": str(self.subject_name),
            "client_pseudonym": self.client_pseudonym,
            "source_address": self.source_address,
            "via": self.via,
            "reason": self.reason,
            "details": self.details,
        }


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    next_after_id: int | None          # pass as ``after_id`` for the next (older) page
    filters: AuditFilters


def _day_start(day: date, zone: str) -> datetime:
    # In UTC: SQLite compares the stored timestamps as text, so offsets must match.
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC)


async def _filtered(filters: AuditFilters) -> Any:
    """Return the queryset for ``filters``, or None when a filter names nobody (so: no rows)."""
    query = AuditEvent.filter(organisation_id=filters.organisation_id)
    if filters.date_from:
        query = query.filter(at__gte=_day_start(filters.date_from, filters.time_zone))
    if filters.date_to:
        query = query.filter(at__lt=_day_start(filters.date_to + timedelta(days=1), filters.time_zone))
    if filters.event_type:
        query = query.filter(event_type=filters.event_type)
    if filters.outcome:
        query = query.filter(outcome=filters.outcome)
    if filters.user:
        if filters.user.isdigit():
            if int(filters.user) > MAX_INT32:  # no such account; PostgreSQL would refuse the number
                return None
            query = query.filter(actor_id=int(filters.user))
        else:
            # E-mail addresses are unique installation-wide; only this organisation's count.
            found = await Account.filter(
                email=filters.user.lower(), organisation_id=filters.organisation_id
            ).values_list("id", flat=True)
            if not found:
                return None
            query = query.filter(actor_id=found[0])
    if filters.client:
        pseudonym = filters.client
        if "@" in filters.client:
            found = await Account.filter(
                email=filters.client.lower(), organisation_id=filters.organisation_id, role=Role.CLIENT
            ).values_list("pseudonym", flat=True)
            if not found:
                return None
            pseudonym = str(found[0])
        query = query.filter(client_pseudonym=pseudonym)
    return query


async def list_events(filters: AuditFilters, after_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE) -> list[AuditRow]:
    """Return up to ``limit`` rows matching ``filters``, newest first, older than ``after_id``.

    No access check and no audit record: callers do both (see the module docstring).
    """
    query = await _filtered(filters)
    if query is None:
        return []
    if after_id is not None:
        query = query.filter(id__lt=min(after_id, MAX_ID))
    events: list[AuditEvent] = await query.order_by("-id").limit(max(1, limit))
    return await _to_rows(events)


async def _to_rows(events: list[AuditEvent]) -> list[AuditRow]:
    ids = {i for e in events for i in (e.actor_id, e.on_behalf_of_id, e.subject_id) if i is not None}
    people = {a.id: a for a in await Account.filter(id__in=ids)} if ids else {}

    def person(account_id: int | None, fallback: LazyText | str = "") -> LazyText | str:
        if account_id is None:
            return fallback
        account = people.get(account_id)
        if account is None:
            return _l("deleted account #%(id)s", id=account_id)
        if account.role is Role.CLIENT:
            # Application admins see no clinical content; the pseudonym identifies the client.
            return _l("client %(pseudonym)s", pseudonym=account.pseudonym)
        return account.name

    return [
        AuditRow(
            id=e.id, at=e.at, event_type=e.event_type.value, action=e.action,
            action_text=describe_action(e.action), outcome=e.outcome.value,
            actor_id=e.actor_id, actor_role=e.actor_role,
            actor_name=person(e.actor_id, role_label(e.actor_role)),
            on_behalf_of_id=e.on_behalf_of_id, on_behalf_of_name=person(e.on_behalf_of_id),
            subject_id=e.subject_id,
            subject_name=(_l("client %(pseudonym)s", pseudonym=e.client_pseudonym)
                          if e.client_pseudonym else person(e.subject_id)),
            client_pseudonym=e.client_pseudonym, source_address=e.source_address, via=e.via,
            reason=e.reason, details=dict(e.details or {}),
        )
        for e in events
    ]


async def require_audit_read(
    svc: Services, actor: Actor, action: str, event_type: AuditType, details: dict[str, Any]
) -> int:
    """Return the actor's organisation id, or audit the refusal and raise ``NotPermittedError``."""
    if actor.organisation_id is not None and await allowed(actor, Permission.AUDIT_READ):
        return actor.organisation_id
    await record(svc, actor, action, event_type, outcome=Outcome.REFUSED,
                 details={"permission": Permission.AUDIT_READ.value, **details})
    raise NotPermittedError()


async def read_audit_log(
    svc: Services, actor: Actor, filters: AuditFilters, after_id: int | None = None, limit: int = DEFAULT_PAGE_SIZE
) -> AuditPage:
    """Return one page of the actor's organisation's audit log, and record the reading."""
    details = {"filters": filters.audit_details(), "after_id": after_id}
    organisation_id = await require_audit_read(svc, actor, "audit.read", AuditType.READ, details)
    filters = _scoped(filters, organisation_id)
    limit = min(max(1, limit), MAX_PAGE_SIZE)
    rows = await list_events(filters, after_id, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    # Recorded after the query, so that a page shows the log as it was when it was asked for.
    await record(svc, actor, "audit.read", AuditType.READ, details={**details, "rows": len(rows)})
    return AuditPage(rows, rows[-1].id if more and rows else None, filters)


def _scoped(filters: AuditFilters, organisation_id: int) -> AuditFilters:
    """Force the scope to the reader's own organisation, whatever the caller passed."""
    from dataclasses import replace

    return replace(filters, organisation_id=organisation_id)


_CSV_DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting like a formula; defuse it.
    return "'" + text if text.startswith(_CSV_DANGEROUS) else text


async def export_audit_log(svc: Services, actor: Actor, filters: AuditFilters) -> tuple[str, int]:
    """Return the matching rows as CSV text (and their count), and record the export."""
    details = {"filters": filters.audit_details()}
    organisation_id = await require_audit_read(svc, actor, "audit.export", AuditType.EXPORT, details)
    filters = _scoped(filters, organisation_id)
    rows: list[AuditRow] = []
    after: int | None = None
    while len(rows) < MAX_EXPORT_ROWS:
        batch = await list_events(filters, after, min(1000, MAX_EXPORT_ROWS - len(rows)))
        if not batch:
            break
        rows.extend(batch)
        after = batch[-1].id
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([
        pgettext("audit", "Number"), pgettext("audit", "Time"), pgettext("audit", "Event type"),
        pgettext("audit", "Action"), pgettext("audit", "Description"), pgettext("audit", "Outcome"),
        pgettext("audit", "User ID"), pgettext("audit", "User"), pgettext("audit", "Role"),
        pgettext("audit", "On behalf of"), pgettext("audit", "Subject"), pgettext("audit", "Client pseudonym"),
        pgettext("audit", "Source address"), pgettext("audit", "Via"), pgettext("audit", "Reason"),
    ])
    zone = ZoneInfo(filters.time_zone)
    for row in rows:
        writer.writerow([_cell(v) for v in (
            row.id, row.at.astimezone(zone).isoformat(timespec="seconds"), event_type_label(row.event_type),
            row.action, row.action_text, outcome_label(row.outcome), row.actor_id, row.actor_name,
            role_label(row.actor_role), row.on_behalf_of_name, row.subject_name, row.client_pseudonym,
            row.source_address, row.via, row.reason,
        )])
    await record(svc, actor, "audit.export", AuditType.EXPORT, details={**details, "rows": len(rows)})
    return out.getvalue(), len(rows)
