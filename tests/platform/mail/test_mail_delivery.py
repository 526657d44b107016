"""Outbox delivery against a real SMTP server: delivered when up, kept and
retried with backoff when down, given up (and audited) after the limit,
never sent twice by concurrent passes; the maildir default and SMS."""

from __future__ import annotations

import asyncio
import base64
import mailbox
from datetime import timedelta
from email import message_from_bytes, policy
from typing import Any

import pytest

from lotse.platform import i18n
from lotse.platform.accounts.models import Role
from lotse.platform.actions import unit
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.errors import ValidationError
from lotse.platform.mail.delivery import (
    MaildirTransport,
    SmtpTransport,
    deliver_due,
    retry_delay,
    run_delivery_worker,
    sender_address,
    transport_for,
)
from lotse.platform.mail.models import Channel, OutboxMessage
from lotse.platform.mail.sms import queue_sms
from lotse.platform.permissions import Actor
from lotse.platform.templating import mail_environment
from tests.factories import make_account, make_org

FOOTER = {
    "de": "Diese Nachricht wurde von Lotse gesendet.",
    "nl": "Dit bericht is verzonden door Lotse.",
}


def render_with_layout(language: str, body: str) -> tuple[str, str]:
    """Render text and HTML through the shared mail layout, as a mail kind would."""
    env = mail_environment()
    token = i18n.current_locale.set(language)
    try:
        text = env.from_string('{% extends "mail/_layout.txt" %}{% block body %}' + body + "{% endblock %}").render()
        html = env.from_string('{% extends "mail/_layout.html" %}{% block body %}<p>' + body + "</p>{% endblock %}").render()
    finally:
        i18n.current_locale.reset(token)
    return text, html


async def queue_mail(svc: Any, *, language: str = "de", to: str = "eva@example.org", subject: str = "Willkommen",
                     body: str = "Hallo Eva", **fields: Any) -> OutboxMessage:
    text, html = render_with_layout(language, body)
    now = svc.now()
    return await OutboxMessage.create(
        channel=Channel.EMAIL, recipient=to, subject=subject, body_text=text, body_html=html, kind="probe",
        language=language, created_at=now, next_attempt_at=now, **fields,
    )


async def test_delivered_when_the_server_is_up(svc, smtp):
    await smtp.start()
    row = await queue_mail(svc, language="de", subject="Ihr Zugang zu Lotse")

    report = await deliver_due(svc, SmtpTransport(smtp.url))

    assert report.sent == [row.id]
    [message] = smtp.sink.messages
    assert message["Subject"] == "Ihr Zugang zu Lotse"
    assert message["To"] == "eva@example.org"
    assert message["From"] == "Lotse <noreply@lotse.test>"
    assert message["Content-Language"] == "de"
    assert message["Message-ID"]
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert "Hallo Eva" in text
    assert FOOTER["de"] in text
    assert "<p>Hallo Eva</p>" in html
    assert FOOTER["de"] in html
    assert 'lang="de"' in html
    await row.refresh_from_db()
    assert row.sent_at == svc.now()
    assert row.attempts == 1
    assert row.failed_at is None
    assert row.message_id == message["Message-ID"]


async def test_dutch_mail_carries_the_dutch_layout(svc, smtp):
    await smtp.start()
    await queue_mail(svc, language="nl", subject="Welkom", body="Hallo Eva")
    await deliver_due(svc, SmtpTransport(smtp.url))
    [message] = smtp.sink.messages
    assert message["Content-Language"] == "nl"
    assert FOOTER["nl"] in message.get_body(("plain",)).get_content()


async def test_kept_and_retried_with_backoff_while_the_server_is_down(svc, smtp, clock):
    row = await queue_mail(svc)
    transport = SmtpTransport(smtp.url, timeout=5)

    report = await deliver_due(svc, transport)  # nothing listens on the port yet

    assert report.retried == [row.id]
    assert report.sent == []
    await row.refresh_from_db()
    assert row.sent_at is None
    assert row.failed_at is None
    assert row.attempts == 1
    assert row.last_error
    first_wait = row.next_attempt_at - clock.now()
    assert timedelta(seconds=45) <= first_wait <= timedelta(minutes=1)

    # Not due yet: a pass now leaves the row alone.
    assert (await deliver_due(svc, transport)).deliveries == []

    # Second failure: the wait doubles.
    clock.advance(minutes=1)
    await deliver_due(svc, transport)
    await row.refresh_from_db()
    assert row.attempts == 2
    assert timedelta(seconds=90) <= row.next_attempt_at - clock.now() <= timedelta(minutes=2)

    await smtp.start()
    clock.advance(minutes=2)
    report = await deliver_due(svc, transport)
    assert report.sent == [row.id]
    assert (await deliver_due(svc, transport)).deliveries == []
    clock.advance(hours=2)
    assert (await deliver_due(svc, transport)).deliveries == []
    assert len(smtp.sink.messages) == 1
    await row.refresh_from_db()
    assert row.attempts == 3
    assert row.sent_at is not None
    assert row.last_error == ""


def test_backoff_doubles_and_is_capped_at_an_hour():
    for attempts, minutes in [(1, 1), (2, 2), (3, 4), (4, 8), (6, 32), (7, 60), (12, 60)]:
        delay = retry_delay(attempts)
        assert timedelta(minutes=minutes) * 0.75 <= delay <= timedelta(minutes=minutes)


async def test_gives_up_after_the_retry_limit_and_audits_it(svc, smtp, clock):
    org = await make_org(svc)
    person = await make_account(svc, org, Role.THERAPIST, password=None)
    svc.settings = svc.settings.with_(mail_retry_limit=3)
    row = await queue_mail(svc, to=person.email, account_id=person.id, organisation_id=org.id)
    transport = SmtpTransport(smtp.url, timeout=5)

    states = []
    for _ in range(3):
        report = await deliver_due(svc, transport)
        states.append([d.state.value for d in report.deliveries])
        clock.advance(hours=1)

    assert states == [["retry"], ["retry"], ["failed"]]
    await row.refresh_from_db()
    assert row.failed_at is not None
    assert row.sent_at is None
    assert row.attempts == 3
    # Never again, not even when the server comes back.
    await smtp.start()
    clock.advance(days=1)
    assert (await deliver_due(svc, transport)).deliveries == []
    assert smtp.sink.messages == []
    audit = await AuditEvent.get(action="mail.give_up")
    assert (audit.outcome, audit.event_type, audit.subject_id, audit.organisation_id) == (
        Outcome.FAILED, AuditType.UPDATE, person.id, org.id
    )
    assert audit.actor_role == "system"
    assert audit.details["outbox_id"] == row.id
    assert audit.reason  # the last error


async def test_a_permanent_refusal_gives_up_at_once(svc, smtp):
    await smtp.start()
    smtp.sink.reply = "550 5.1.1 No such mailbox"
    row = await queue_mail(svc)
    report = await deliver_due(svc, SmtpTransport(smtp.url))
    assert report.failed == [row.id]
    await row.refresh_from_db()
    assert row.failed_at is not None
    assert "550" in row.last_error
    assert await AuditEvent.filter(action="mail.give_up", outcome=Outcome.FAILED).count() == 1


async def test_two_concurrent_passes_send_each_mail_once(svc, smtp):
    await smtp.start()
    rows = [await queue_mail(svc, to=f"person{n}@example.org") for n in range(6)]
    transport = SmtpTransport(smtp.url)

    first, second = await asyncio.gather(deliver_due(svc, transport), deliver_due(svc, transport))

    assert sorted(first.sent + second.sent) == sorted(r.id for r in rows)
    assert not set(first.sent) & set(second.sent)
    received = sorted(to for _sender, tos in smtp.sink.envelopes for to in tos)
    assert received == sorted(r.recipient for r in rows)


async def test_attachments_travel_base64_from_the_row(svc, smtp):
    await smtp.start()
    ics = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    await queue_mail(svc, attachments=[{"filename": "termin.ics", "content_type": "text/calendar",
                                        "data": base64.b64encode(ics).decode()}])
    await deliver_due(svc, SmtpTransport(smtp.url))
    [message] = smtp.sink.messages
    assert message.get_content_type() == "multipart/mixed"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "termin.ics"
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_payload(decode=True) == ics
    assert "Hallo Eva" in message.get_body(("plain",)).get_content()


async def test_the_default_delivers_into_a_readable_maildir(svc):
    assert svc.settings.smtp_url is None
    assert isinstance(transport_for(svc.settings), MaildirTransport)
    await queue_mail(svc, language="nl", subject="Welkom bij Lotse", body="Hallo Eva")

    report = await deliver_due(svc)

    assert len(report.sent) == 1
    files = list((svc.settings.mail_dir / "new").iterdir())
    assert len(files) == 1
    message = message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["Subject"] == "Welkom bij Lotse"
    assert FOOTER["nl"] in message.get_body(("plain",)).get_content()
    box = mailbox.Maildir(str(svc.settings.mail_dir), create=False)
    assert len(box) == 1


async def test_sms_goes_through_the_outbox_into_the_maildir(svc):
    org = await make_org(svc)
    person = await make_account(svc, org, Role.CLIENT, password=None)
    async with unit(svc, Actor.system(), "probe.sms", None) as u:
        queue_sms(u, "+31 6 1234-5678", "Ihr Termin beginnt um 10:00.", person.id)
    row = await OutboxMessage.get(channel=Channel.SMS)
    assert (row.recipient, row.account_id) == ("+31612345678", person.id)

    report = await deliver_due(svc)

    assert report.sent == [row.id]
    [path] = (svc.settings.mail_dir / "new").iterdir()
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["To"] == "31612345678@sms.invalid"
    assert message.get_content().strip() == "Ihr Termin beginnt um 10:00."
    await row.refresh_from_db()
    assert row.sent_at is not None


@pytest.mark.parametrize("number", ["0612345678", "+31 abc", "", "+0123456789"])
async def test_sms_refuses_numbers_it_cannot_deliver(svc, number):
    with pytest.raises(ValidationError) as caught:
        async with unit(svc, Actor.system(), "probe.sms", None) as u:
            queue_sms(u, number, "Hallo")
    assert "phone" in caught.value.fields
    assert not await OutboxMessage.exists()


async def test_worker_delivers_when_woken(svc, smtp):
    await smtp.start()
    svc.settings = svc.settings.with_(smtp_url=smtp.url)
    wake = asyncio.Event()
    worker = asyncio.create_task(run_delivery_worker(svc, wake))
    try:
        await queue_mail(svc)
        wake.set()
        await asyncio.wait_for(smtp.sink.received.wait(), timeout=10)
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
    assert len(smtp.sink.messages) == 1


def test_smtp_urls():
    plain = SmtpTransport("smtp://mail.example.org")
    assert (plain.hostname, plain.port, plain.use_tls, plain.start_tls, plain.username) == (
        "mail.example.org", 25, False, False, None
    )
    tls = SmtpTransport("smtps://user%40x:p%3Ass@mail.example.org")
    assert (tls.port, tls.use_tls, tls.username, tls.password) == (465, True, "user@x", "p:ss")
    starttls = SmtpTransport("smtp://mail.example.org:2525?starttls=1")
    assert (starttls.port, starttls.start_tls) == (2525, True)
    with pytest.raises(ValueError, match="scheme"):
        SmtpTransport("http://mail.example.org")


def test_sender_is_derived_from_the_base_url(settings):
    assert sender_address(settings) == "Lotse <noreply@lotse.test>"
    assert sender_address(settings.with_(base_url="http://127.0.0.1:5000")) == "Lotse <noreply@localhost>"


async def test_a_sent_row_keeps_its_metadata_but_not_its_body(svc, smtp):
    """A body may carry a live set-password or reset link: it does not stay in the database."""
    await smtp.start()
    row = await queue_mail(svc, subject="Passwort", body="https://lotse.test/password/reset/secret",
                           attachments=[{"filename": "a.ics", "content_type": "text/calendar", "data": "QQ=="}])

    await deliver_due(svc, SmtpTransport(smtp.url))

    assert "password/reset/secret" in smtp.sink.messages[0].get_body(("plain",)).get_content()
    await row.refresh_from_db()
    assert (row.body_text, row.body_html, row.attachments) == ("", "", [])
    assert (row.recipient, row.subject, row.kind, row.sent_at) == ("eva@example.org", "Passwort", "probe", svc.now())


async def test_a_row_that_will_be_retried_keeps_its_body(svc, smtp):
    row = await queue_mail(svc)
    await deliver_due(svc, SmtpTransport(smtp.url, timeout=5))  # the server is down
    await row.refresh_from_db()
    assert "Hallo Eva" in row.body_text


async def test_old_sent_and_given_up_rows_are_purged(svc, smtp, clock):
    from lotse.platform.mail.delivery import purge_sent_mail

    await smtp.start()
    sent = await queue_mail(svc, to="sent@example.org")
    await deliver_due(svc, SmtpTransport(smtp.url))
    smtp.sink.reply = "550 5.1.1 No such mailbox"
    failed = await queue_mail(svc, to="failed@example.org")
    await deliver_due(svc, SmtpTransport(smtp.url))
    await failed.refresh_from_db()
    assert failed.failed_at is not None
    assert "Hallo Eva" in failed.body_text  # kept for the operator
    waiting = await queue_mail(svc, to="waiting@example.org")
    await OutboxMessage.filter(id=waiting.id).update(next_attempt_at=clock.now() + timedelta(days=60))

    clock.advance(days=29)
    assert await purge_sent_mail(svc, timedelta(days=30)) == 0
    clock.advance(days=2)
    assert await purge_sent_mail(svc, timedelta(days=30)) == 2

    assert [r.id for r in await OutboxMessage.all()] == [waiting.id]
    assert not await OutboxMessage.filter(id__in=[sent.id, failed.id]).exists()


async def test_the_worker_purges_old_rows(svc, smtp, clock):
    await smtp.start()
    old = await queue_mail(svc)
    await deliver_due(svc, SmtpTransport(smtp.url))
    clock.advance(days=31)
    svc.settings = svc.settings.with_(smtp_url=smtp.url)
    smtp.sink.received.clear()
    wake = asyncio.Event()
    worker = asyncio.create_task(run_delivery_worker(svc, wake))
    try:
        fresh = await queue_mail(svc, to="fresh@example.org")
        wake.set()
        await asyncio.wait_for(smtp.sink.received.wait(), timeout=10)  # the purge runs before the pass
    finally:
        worker.cancel()
        with pytest.raises(asyncio.CancelledError):
            await worker
    assert not await OutboxMessage.filter(id=old.id).exists()
    assert await OutboxMessage.filter(id=fresh.id).exists()


async def test_failures_keep_the_address_out_of_logs_and_audit(svc, smtp, caplog):
    await smtp.start()
    smtp.sink.reply = "550 5.1.1 <secret.person@example.org>: no such mailbox"
    row = await queue_mail(svc, to="secret.person@example.org")
    caplog.set_level("DEBUG", logger="lotse.platform.mail.delivery")

    await deliver_due(svc, SmtpTransport(smtp.url))

    assert "secret.person" not in caplog.text
    assert str(row.id) in caplog.text
    audit = await AuditEvent.get(action="mail.give_up")
    assert "secret.person" not in f"{audit.reason} {audit.details}"
    assert "550" in audit.reason
    await row.refresh_from_db()
    assert "550" in row.last_error  # the row itself keeps the whole text
