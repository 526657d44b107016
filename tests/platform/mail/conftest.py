"""A real SMTP server (aiosmtpd) in the test's own event loop, on a free 127.0.0.1 port.

The port is chosen before the server runs, so a test can deliver to it while
nothing listens ("the mail server is down") and start the server later.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP


class Sink:
    """Collects what the SMTP server receives; ``reply`` lets a test make it refuse."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.reply = "250 OK"
        self.received = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if not self.reply.startswith("250"):
            return self.reply
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        self.received.set()
        return "250 OK"


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sink = Sink()
        self._server: asyncio.AbstractServer | None = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self.sink, hostname="mx.lotse.test"), "127.0.0.1", self.port, reuse_address=True
        )

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def smtp() -> AsyncIterator[SmtpServer]:
    """A server that is *not* started yet: ``await smtp.start()``."""
    server = SmtpServer(free_port())
    try:
        yield server
    finally:
        await server.stop()
