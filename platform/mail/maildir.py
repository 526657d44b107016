"""The embedded default transport: delivered mail lands in a local maildir.

A developer opens ``<data dir>/mail/new`` (each file is one complete
message, readable as text or with any mail client that reads maildirs);
SMS land there too, addressed to ``<number>@sms.invalid``. Writing happens
in a thread: ``mailbox`` does blocking file I/O.
"""

from __future__ import annotations

import asyncio
import mailbox
from email.message import EmailMessage
from pathlib import Path


class MaildirTransport:
    """Deliver each message as one file into a maildir (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _add(self, message: EmailMessage) -> str:
        box = mailbox.Maildir(str(self.path), create=True)
        try:
            return box.add(message)
        finally:
            box.close()

    async def send(self, message: EmailMessage) -> None:
        await asyncio.to_thread(self._add, message)

    def describe(self) -> str:
        return f"maildir {self.path}"
