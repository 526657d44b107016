"""Delivering the outbox: SMTP (or the local maildir), with retries that never lose mail.

``deliver_due(svc, transport)`` makes one pass over what is due;
``run_delivery_worker`` repeats it whenever an action queued mail (``wake``)
or the next retry falls due, and at least every ``MAX_IDLE`` seconds. The
``lotse mail deliver`` command and the tests call ``deliver_due`` directly.

Rules:

- A row is *claimed* before it is sent: one atomic ``UPDATE ... WHERE
  sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= now`` moves
  its ``next_attempt_at`` forward by ``LEASE``; only the worker whose update
  changed the row sends it, so two workers (or a worker and the command)
  never send one row twice. A worker that dies mid-send leaves the lease to
  expire, after which the row is tried again: delivery is at least once,
  and the Message-ID stays the same across attempts so receivers can tell.
- A failure counts an attempt, keeps the error, and schedules the next try
  after 1, 2, 4, ... minutes (capped at an hour), shortened by a random
  jitter of up to a quarter so that many failed rows don't all retry in the
  same second. After ``settings.mail_retry_limit`` attempts, or at once on a
  permanent refusal (an SMTP 5xx), the row is marked ``failed_at`` and an
  audit row (``mail.give_up``) records it. Nothing is dropped silently.
- A sent row keeps only its metadata (recipient, subject, kind, times): the
  bodies and attachments are blanked at once, because they may carry a live
  set-password, reset or unblock link (the token table keeps only hashes).
  ``purge_sent_mail`` deletes sent rows, and rows given up on, after
  ``KEEP`` (the worker runs it every ``PURGE_EVERY``); a row given up on keeps
  its body until then, so that an operator can see what was not delivered.
- Logs and audit rows name the outbox row and the kind of failure, never the
  recipient's address or the far side's error text (which may echo it);
  ``last_error`` on the row has the whole text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from enum import StrEnum
from typing import Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from lotse.platform.accounts.models import Account
from lotse.platform.actions import Services, record
from lotse.platform.audit.models import AuditType, Outcome
from lotse.platform.config import Settings
from lotse.platform.mail.maildir import MaildirTransport
from lotse.platform.mail.models import Channel, OutboxMessage
from lotse.platform.mail.sms import MaildirSmsGateway, SmsGateway
from lotse.platform.permissions import Actor

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)        # longer than any SMTP conversation may take
FIRST_RETRY = timedelta(minutes=1)
MAX_RETRY = timedelta(hours=1)
MAX_IDLE = 30.0                      # seconds the worker sleeps at most
BATCH = 100
SMTP_TIMEOUT = 30.0
KEEP = timedelta(days=30)            # sent rows (and rows given up on) are deleted after this
PURGE_EVERY = timedelta(hours=1)     # how often the worker purges


class MailTransport(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver one message; raise on failure (``PermanentDeliveryError`` when retrying is pointless)."""
        ...

    def describe(self) -> str: ...


class PermanentDeliveryError(Exception):
    """The receiving side refused for good (e.g. an unknown mailbox): don't retry."""


class SmtpTransport:
    """Deliver over SMTP: ``smtp://[user:password@]host[:port][?starttls=1]`` or ``smtps://...``."""

    def __init__(self, url: str, timeout: float = SMTP_TIMEOUT) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"unsupported mail URL scheme: {parts.scheme!r}")
        query = parse_qs(parts.query)
        self.use_tls = parts.scheme == "smtps"
        self.start_tls = query.get("starttls", ["0"])[0] in ("1", "true", "yes")
        self.hostname = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.use_tls else 587 if self.start_tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        client = aiosmtplib.SMTP(
            hostname=self.hostname, port=self.port, username=self.username, password=self.password,
            use_tls=self.use_tls, start_tls=self.start_tls, timeout=self.timeout,
        )
        try:
            await client.connect()
            await client.send_message(message)
            with contextlib.suppress(aiosmtplib.SMTPException):
                await client.quit()
        except aiosmtplib.SMTPRecipientsRefused as error:
            if all(getattr(r, "code", 0) >= 500 for r in error.recipients):
                raise PermanentDeliveryError(str(error)) from error
            raise
        except aiosmtplib.SMTPResponseException as error:
            if 500 <= error.code < 600 and not isinstance(error, aiosmtplib.SMTPAuthenticationError):
                raise PermanentDeliveryError(f"{error.code} {error.message}") from error
            raise
        finally:
            # Not ``async with``: its exit says QUIT even when cancelled mid-conversation,
            # and then waits out the timeout; closing the socket lets shutdown be prompt.
            if client.is_connected:
                client.close()

    def describe(self) -> str:
        return f"smtp {self.hostname}:{self.port}"


def sender_address(settings: Settings) -> str:
    """Return the From address: ``settings.mail_from`` if set, else noreply at the base URL's host."""
    configured = settings.mail_from
    if configured:
        return str(configured)
    return f"Lotse <noreply@{mail_domain(settings)}>"


def mail_domain(settings: Settings) -> str:
    host = urlsplit(settings.base_url).hostname or "localhost"
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return "localhost"  # an IP address is no mail domain
    return host


def transport_for(settings: Settings) -> MailTransport:
    """Return SMTP when ``smtp_url`` is set, else the local maildir."""
    if settings.smtp_url:
        return SmtpTransport(settings.smtp_url)
    return MaildirTransport(settings.mail_dir)


def sms_gateway_for(settings: Settings) -> SmsGateway:
    return MaildirSmsGateway(MaildirTransport(settings.mail_dir), sender_address(settings))


def build_message(row: OutboxMessage, settings: Settings, now: datetime) -> EmailMessage:
    """Return the MIME message for an e-mail row: text and HTML alternatives, then attachments."""
    message = EmailMessage()
    message["From"] = sender_address(settings)
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at if row.created_at else now)
    message["Message-ID"] = row.message_id
    message["Auto-Submitted"] = "auto-generated"
    if row.kind:
        message["X-Lotse-Kind"] = row.kind
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    for attachment in row.attachments or []:
        content_type = attachment.get("content_type") or attachment.get("type") or "application/octet-stream"
        maintype, _, subtype = content_type.partition("/")
        message.add_attachment(
            base64.b64decode(attachment.get("data", "")),
            maintype=maintype or "application", subtype=subtype or "octet-stream",
            filename=attachment.get("filename") or attachment.get("name") or "attachment",
        )
    # Last: setting the content (or making it multipart) drops Content-* headers.
    message["Content-Language"] = row.language
    return message


def retry_delay(attempts: int, rng: random.Random | None = None) -> timedelta:
    """Return the wait after the ``attempts``-th failure: 1, 2, 4, ... minutes up to an hour, minus jitter."""
    base = min(FIRST_RETRY * (1 << max(0, attempts - 1)), MAX_RETRY)
    factor: float = (rng or random).uniform(0.75, 1.0)
    return base * factor


class State(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Delivery:
    id: int
    channel: str
    recipient: str
    kind: str
    state: State
    attempts: int
    error: str = ""
    next_attempt_at: datetime | None = None


@dataclass
class DeliveryReport:
    """What one pass did; rows another worker claimed first are not in it."""

    deliveries: list[Delivery] = field(default_factory=list)

    def _ids(self, state: State) -> list[int]:
        return [d.id for d in self.deliveries if d.state is state]

    @property
    def sent(self) -> list[int]:
        return self._ids(State.SENT)

    @property
    def retried(self) -> list[int]:
        return self._ids(State.RETRY)

    @property
    def failed(self) -> list[int]:
        return self._ids(State.FAILED)


async def _claim(row: OutboxMessage, now: datetime) -> bool:
    claimed = await OutboxMessage.filter(
        id=row.id, sent_at=None, failed_at=None, next_attempt_at__lte=now
    ).update(next_attempt_at=now + LEASE)
    return claimed == 1


async def deliver_due(
    svc: Services,
    transport: MailTransport | None = None,
    sms_gateway: SmsGateway | None = None,
    *,
    limit: int = BATCH,
) -> DeliveryReport:
    """Send every due outbox row once (oldest first, at most ``limit``) and report what happened."""
    transport = transport or transport_for(svc.settings)
    sms_gateway = sms_gateway or sms_gateway_for(svc.settings)
    now = svc.now()
    report = DeliveryReport()
    due: Sequence[OutboxMessage] = await OutboxMessage.filter(
        sent_at=None, failed_at=None, next_attempt_at__lte=now
    ).order_by("next_attempt_at", "id").limit(limit)
    for row in due:
        if not await _claim(row, now):
            continue
        report.deliveries.append(await _deliver_one(svc, row, transport, sms_gateway, now))
    return report


async def _deliver_one(
    svc: Services, row: OutboxMessage, transport: MailTransport, sms_gateway: SmsGateway, now: datetime
) -> Delivery:
    if not row.message_id:
        row.message_id = make_msgid("lotse", domain=mail_domain(svc.settings))
        await OutboxMessage.filter(id=row.id).update(message_id=row.message_id)
    attempts = row.attempts + 1
    permanent = False
    try:
        if row.channel is Channel.SMS:
            await sms_gateway.send_sms(row.recipient, row.body_text, message_id=row.message_id)
        else:
            await transport.send(build_message(row, svc.settings, now))
    except asyncio.CancelledError:
        raise
    except Exception as error:  # every failure of the far side is kept and retried
        permanent = isinstance(error, PermanentDeliveryError)
        message = f"{type(error).__name__}: {error}"[:2000]
        summary = failure_summary(error)
    else:
        # Sent: keep the metadata, blank what may hold a live link or personal data.
        await OutboxMessage.filter(id=row.id).update(
            sent_at=svc.now(), attempts=attempts, last_error="", body_text="", body_html="", attachments=[]
        )
        return Delivery(row.id, row.channel.value, row.recipient, row.kind, State.SENT, attempts)

    if permanent or attempts >= svc.settings.mail_retry_limit:
        failed_at = svc.now()
        await OutboxMessage.filter(id=row.id).update(
            attempts=attempts, last_error=message, failed_at=failed_at, next_attempt_at=failed_at
        )
        await _record_give_up(svc, row, attempts, summary)
        log.error("gave up delivering outbox row %s (%s): %s", row.id, row.kind or row.channel.value, summary)
        return Delivery(row.id, row.channel.value, row.recipient, row.kind, State.FAILED, attempts, message)

    next_attempt = now + retry_delay(attempts)
    await OutboxMessage.filter(id=row.id).update(attempts=attempts, last_error=message, next_attempt_at=next_attempt)
    log.warning("delivery of outbox row %s failed (attempt %s), retrying at %s: %s",
                row.id, attempts, next_attempt.isoformat(), summary)
    return Delivery(row.id, row.channel.value, row.recipient, row.kind, State.RETRY, attempts, message, next_attempt)


def failure_summary(error: BaseException) -> str:
    """Return the kind of a failure without the far side's text: the class name and any SMTP code."""
    code = getattr(error, "code", None) or getattr(error.__cause__, "code", None)
    name = type(error.__cause__ if isinstance(error, PermanentDeliveryError) and error.__cause__ else error).__name__
    return f"{name} {code}" if isinstance(code, int) else name


async def purge_sent_mail(svc: Services, older_than: timedelta = KEEP) -> int:
    """Delete rows sent, or given up on, more than ``older_than`` ago; return how many."""
    limit = svc.now() - older_than
    sent = await OutboxMessage.filter(sent_at__lt=limit).delete()
    failed = await OutboxMessage.filter(sent_at=None, failed_at__lt=limit).delete()
    return sent + failed


async def _record_give_up(svc: Services, row: OutboxMessage, attempts: int, error: str) -> None:
    subject = await Account.get_or_none(id=row.account_id) if row.account_id else None
    organisation_id = row.organisation_id
    if organisation_id is None and subject is not None:
        organisation_id = subject.organisation_id
    await record(
        svc, Actor.system(via="job").with_(organisation_id=organisation_id), "mail.give_up", AuditType.UPDATE,
        subject=subject, outcome=Outcome.FAILED, reason=error,
        details={"outbox_id": row.id, "channel": row.channel.value, "kind": row.kind, "attempts": attempts},
    )


async def seconds_until_due(svc: Services, cap: float = MAX_IDLE) -> float:
    """Return how long the worker may sleep before the next row falls due (at most ``cap``)."""
    upcoming = await OutboxMessage.filter(sent_at=None, failed_at=None).order_by("next_attempt_at").first()
    if upcoming is None:
        return cap
    wait = (upcoming.next_attempt_at - svc.now()).total_seconds()
    return min(cap, max(0.0, wait))


async def run_delivery_worker(svc: Services, wake: asyncio.Event) -> None:
    """Deliver what is due, then sleep until woken or until the next row falls due; forever."""
    transport = transport_for(svc.settings)
    sms_gateway = sms_gateway_for(svc.settings)
    log.info("mail delivery worker started (%s)", transport.describe())
    task = asyncio.current_task()
    last_purge: datetime | None = None
    while True:
        # Python 3.11's wait_for can swallow a cancellation that races with a reply (here:
        # aiosmtplib's); the request is still counted, so honour it before sleeping again.
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        wake.clear()
        try:
            if last_purge is None or svc.now() - last_purge >= PURGE_EVERY:
                last_purge = svc.now()
                purged = await purge_sent_mail(svc)
                if purged:
                    log.info("purged %s old outbox rows", purged)
            report = await deliver_due(svc, transport, sms_gateway)
            delay = 0.0 if len(report.deliveries) >= BATCH else await seconds_until_due(svc)
        except asyncio.CancelledError:
            raise
        except Exception:
            # The database may be restarting; never let the worker die of it.
            log.exception("mail delivery pass failed")
            delay = MAX_IDLE
            report = DeliveryReport()
        if delay <= 0:
            if report.deliveries:
                await asyncio.sleep(0)  # a full batch: go on, letting other tasks run first
                continue
            delay = 1.0  # due rows that another worker holds: don't spin
        if task is not None and task.cancelling():
            raise asyncio.CancelledError
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)
