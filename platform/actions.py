"""The one door for every state change.

Every domain's ``actions.py`` is built from ``unit``: an action checks the
actor's permission for its subject, opens one transaction, writes, writes its
audit records and outbox rows, commits, and only then publishes its events
and wakes the mail worker. Views, the JSON API, the flow engine, background
jobs and the CLI all call those same functions, so a flow cannot do anything
a click could not, and nothing changes without an audit record.

A refusal is audited too (outcome ``refused``, in a transaction of its own)
before ``NotPermittedError`` is raised.

    async def do_reactivate_account(svc, actor, account):
        async with unit(svc, actor, "account.reactivate", Permission.CLIENT_MANAGE, account) as u:
            account.status = AccountStatus.ACTIVE
            await account.save()
            u.audit(AuditType.UPDATE, subject=account)
            u.event(AccountReactivated(account.id))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from lotse.platform.accounts.models import Account, Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.clock import Clock
from lotse.platform.config import Settings
from lotse.platform.errors import NotPermittedError
from lotse.platform.events import Event, EventBus
from lotse.platform.i18n import Translations
from lotse.platform.permissions import Actor, Permission, allowed


@dataclass
class Services:
    """What actions need from the running app; the app object holds one."""

    settings: Settings
    clock: Clock
    bus: EventBus
    translations: Translations
    # Called after a commit that queued mail; the delivery worker listens.
    mail_queued: Callable[[], None] = field(default=lambda: None)
    extras: dict[str, Any] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.clock.now()


@dataclass(frozen=True)
class MailSpec:
    """A mail to render in the recipient's language and put into the outbox."""

    kind: str                       # template name under templates/mail/
    to: str
    language: str
    context: dict[str, Any]
    account_id: int | None = None
    organisation_id: int | None = None
    attachments: tuple[dict[str, str], ...] = ()


@dataclass
class Unit:
    """The state of one running action; see the module docstring."""

    svc: Services
    actor: Actor
    action: str
    now: datetime
    audits: list[AuditEvent] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    mails: list[MailSpec] = field(default_factory=list)
    sms: list[tuple[str, str, int | None]] = field(default_factory=list)

    def audit(
        self,
        event_type: AuditType,
        *,
        subject: Account | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        action: str | None = None,
    ) -> None:
        self.audits.append(
            audit_row(self.actor, action or self.action, event_type, self.now, subject=subject,
                      outcome=outcome, reason=reason, details=details)
        )

    def event(self, event: Event) -> None:
        self.events.append(event)

    def mail(self, spec: MailSpec) -> None:
        self.mails.append(spec)


def audit_row(
    actor: Actor,
    action: str,
    event_type: AuditType,
    now: datetime,
    *,
    subject: Account | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Build (not save) one audit row about ``subject`` by ``actor``."""
    is_client = subject is not None and subject.role is Role.CLIENT
    organisation_id = actor.organisation_id
    if organisation_id is None and subject is not None:
        organisation_id = subject.organisation_id
    return AuditEvent(
        at=now,
        event_type=event_type,
        action=action,
        outcome=outcome,
        organisation_id=organisation_id,
        actor_id=actor.account_id,
        actor_role=actor.role.value if actor.role else ("system" if actor.is_system else "anonymous"),
        on_behalf_of_id=actor.on_behalf_of_id,
        subject_id=subject.id if subject is not None else None,
        client_pseudonym=subject.pseudonym if (subject is not None and is_client) else None,
        source_address=actor.source_address[:64],
        via=actor.via,
        reason=(reason if reason is not None else actor.reason)[:2000],
        details=details or {},
    )


async def record(
    svc: Services,
    actor: Actor,
    action: str,
    event_type: AuditType,
    *,
    subject: Account | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Write one audit row on its own: reads, searches, refusals, failed sign-ins."""
    row = audit_row(actor, action, event_type, svc.now(), subject=subject, outcome=outcome,
                    reason=reason, details=details)
    await row.save()


async def require(svc: Services, actor: Actor, permission: Permission, subject: Any, action: str) -> None:
    """Raise ``NotPermittedError`` (after auditing the refusal) unless permitted."""
    if actor.is_system or await allowed(actor, permission, subject):
        return
    await record(
        svc, actor, action, _refusal_type(action), subject=subject if isinstance(subject, Account) else None,
        outcome=Outcome.REFUSED, details={"permission": permission.value},
    )
    raise NotPermittedError()


def _refusal_type(action: str) -> AuditType:
    verb = action.rsplit(".", 1)[-1]
    if verb.startswith(("create", "import")):
        return AuditType.CREATE
    if verb.startswith(("view", "read", "open")):
        return AuditType.READ
    if verb.startswith("search"):
        return AuditType.SEARCH
    if verb.startswith(("delete", "erase", "purge")):
        return AuditType.DELETE
    return AuditType.UPDATE


@asynccontextmanager
async def unit(
    svc: Services, actor: Actor, action: str, permission: Permission | None, subject: Any = None
) -> AsyncIterator[Unit]:
    """Run one action: permission, transaction, audit, outbox; events after commit."""
    if permission is not None:
        await require(svc, actor, permission, subject, action)
    work = Unit(svc, actor, action, svc.now())
    async with in_transaction():
        yield work
        if work.audits:
            await AuditEvent.bulk_create(work.audits)
        if work.mails or work.sms:
            from lotse.platform.mail.outbox import enqueue

            await enqueue(svc, work.now, work.mails, work.sms)
    for event in work.events:
        await svc.bus.publish(event.topic, event.payload())
    if work.mails or work.sms:
        svc.mail_queued()
