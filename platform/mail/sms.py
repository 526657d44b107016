"""SMS: queued like mail, delivered through a gateway.

An action queues an SMS with ``queue_sms(u, number, text)``; it becomes an
outbox row in the action's transaction, exactly like a mail, and the
delivery worker hands it to an ``SmsGateway``. The only gateway shipped is
the embedded default, which writes each SMS as a small mail to
``<number>@sms.invalid`` into the local maildir, so developers see what
would have been sent. A real provider implements the same one method.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from lotse.platform.errors import field_error
from lotse.platform.i18n import _l
from lotse.platform.mail.maildir import MaildirTransport

if TYPE_CHECKING:
    from lotse.platform.actions import Unit

# International format: a plus and 8 to 15 digits (E.164).
_NUMBER = re.compile(r"^\+[1-9]\d{7,14}$")
MAX_SMS_LENGTH = 612  # four concatenated GSM-7 parts


class SmsGateway(Protocol):
    async def send_sms(self, number: str, text: str, *, message_id: str) -> None:
        """Hand one SMS to the provider; raise on failure (the worker retries)."""
        ...


def normalise_number(number: str) -> str:
    """Return ``number`` without spaces, dashes and brackets; ``00`` becomes ``+``."""
    cleaned = re.sub(r"[\s\-().]", "", number)
    if cleaned.startswith("00"):
        cleaned = "+" + cleaned[2:]
    return cleaned


def queue_sms(u: Unit, number: str, text: str, account_id: int | None = None) -> None:
    """Queue an SMS in the running action (delivered after commit, with retries)."""
    cleaned = normalise_number(number)
    if not _NUMBER.match(cleaned):
        raise field_error("phone", _l("Please enter the phone number in international format, e.g. +31 6 12345678."))
    if not text or len(text) > MAX_SMS_LENGTH:
        raise field_error("text", _l("The text message is empty or too long."))
    u.sms.append((cleaned, text, account_id))


class MaildirSmsGateway:
    """The embedded default: each SMS becomes a plain-text mail in the local maildir."""

    def __init__(self, transport: MaildirTransport, sender: str) -> None:
        self.transport = transport
        self.sender = sender

    async def send_sms(self, number: str, text: str, *, message_id: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = f"{number.lstrip('+')}@sms.invalid"
        message["Subject"] = f"SMS {number}"
        message["Message-ID"] = message_id
        message["X-Lotse-Channel"] = "sms"
        message.set_content(text)
        await self.transport.send(message)
