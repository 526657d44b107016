"""Putting mail and SMS into the outbox, inside the caller's transaction.

Rendering happens here, at enqueue time, in the recipient's language, so
that what is delivered is exactly what the action decided to send even if
templates change later. Delivery is ``lotse.platform.mail.delivery``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from lotse.platform import i18n
from lotse.platform.mail.models import Channel, OutboxMessage
from lotse.platform.templating import mail_environment

if TYPE_CHECKING:
    from lotse.platform.actions import MailSpec, Services


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(kind: str, language: str, context: dict[str, Any]) -> RenderedMail:
    """Render ``templates/mail/<kind>.{subject,txt,html}`` in ``language``."""
    env = mail_environment()
    token = i18n.current_locale.set(language)
    try:
        subject = env.get_template(f"mail/{kind}.subject").render(context).strip()
        text = env.get_template(f"mail/{kind}.txt").render(context)
        html = env.get_template(f"mail/{kind}.html").render(context)
    finally:
        with contextlib.suppress(ValueError):
            i18n.current_locale.reset(token)
    return RenderedMail(" ".join(subject.split()), text, html)


async def enqueue(
    svc: Services, now: datetime, mails: Sequence[MailSpec], sms: Sequence[tuple[str, str, int | None]]
) -> list[OutboxMessage]:
    """Write outbox rows for the given mails and SMS texts (``(number, text, account_id)``)."""
    base = {"base_url": svc.settings.base_url}
    rows = []
    for spec in mails:
        rendered = render_mail(spec.kind, spec.language, {**base, **spec.context})
        rows.append(OutboxMessage(
            channel=Channel.EMAIL, organisation_id=spec.organisation_id, account_id=spec.account_id,
            recipient=spec.to, subject=rendered.subject, body_text=rendered.text, body_html=rendered.html,
            attachments=list(spec.attachments), kind=spec.kind, language=spec.language,
            created_at=now, next_attempt_at=now,
        ))
    for number, text, account_id in sms:
        rows.append(OutboxMessage(
            channel=Channel.SMS, account_id=account_id, recipient=number, body_text=text,
            kind="sms", created_at=now, next_attempt_at=now,
        ))
    for row in rows:
        await row.save()
    return rows
