"""``lotse mail list`` and ``lotse mail deliver`` on a real database and maildir."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from lotse.platform.cli import main
from lotse.platform.db import close_db, init_db
from lotse.platform.mail.models import Channel, OutboxMessage


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LOTSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LOTSE_DATABASE_URL", f"sqlite://{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("LOTSE_SECRET_KEY", "cli-test-secret")
    monkeypatch.delenv("LOTSE_SMTP_URL", raising=False)
    return tmp_path


def seed(data_dir: Path, **fields: object) -> None:
    async def work() -> None:
        await init_db(f"sqlite://{data_dir / 'cli.sqlite3'}")
        try:
            past = datetime(2026, 1, 1, tzinfo=UTC)
            await OutboxMessage.create(**{
                "channel": Channel.EMAIL, "recipient": "eva@example.org", "subject": "Welkom",
                "body_text": "Hallo Eva", "kind": "welcome", "language": "nl", "created_at": past,
                "next_attempt_at": past, **fields,
            })
        finally:
            await close_db()

    asyncio.run(work())


def test_list_and_deliver_into_the_maildir(data_dir: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["mail", "list"])
    assert empty.exit_code == 0, empty.output
    assert "Nothing is waiting" in empty.output

    seed(data_dir)
    waiting = runner.invoke(main, ["mail", "list"])
    assert "#1 email welcome to eva@example.org [nl] attempts=0 waiting" in waiting.output

    delivered = runner.invoke(main, ["mail", "deliver"])
    assert delivered.exit_code == 0, delivered.output
    assert "#1 email welcome to eva@example.org: sent" in delivered.output
    assert "1 sent, 0 to retry, 0 failed." in delivered.output
    assert len(list((data_dir / "mail" / "new").iterdir())) == 1

    assert "Nothing is waiting" in runner.invoke(main, ["mail", "list"]).output
    assert "sent 20" in runner.invoke(main, ["mail", "list", "--all"]).output


def test_deliver_reports_a_retry_when_smtp_is_down(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("LOTSE_SMTP_URL", f"smtp://127.0.0.1:{port}")
    seed(data_dir)
    result = CliRunner().invoke(main, ["mail", "deliver"])
    assert result.exit_code == 0, result.output
    assert "retry (attempt 1, next at" in result.output
    assert "0 sent, 1 to retry, 0 failed." in result.output
    listing = CliRunner().invoke(main, ["mail", "list"]).output
    assert "attempts=1 waiting" in listing
