"""``lotse mail deliver`` and ``lotse mail list``: the outbox from the command line."""

from __future__ import annotations

import click

from lotse.platform.actions import Services


def _services() -> Services:
    from lotse.platform.clock import SystemClock
    from lotse.platform.config import load_settings
    from lotse.platform.events import InProcessBus
    from lotse.platform.i18n import Translations

    settings = load_settings()
    return Services(settings=settings, clock=SystemClock(), bus=InProcessBus(),
                    translations=Translations(settings.locales_dir))


@click.group()
def mail() -> None:
    """The outbox: outgoing mail and SMS."""


@mail.command("deliver")
def deliver() -> None:
    """Deliver what is due in the outbox, once, and say what happened."""
    from lotse.platform.cli import run_with_db
    from lotse.platform.mail.delivery import State, deliver_due, transport_for

    svc = _services()

    async def work() -> None:
        transport = transport_for(svc.settings)
        click.echo(f"Delivering through {transport.describe()}")
        report = await deliver_due(svc, transport)
        for item in report.deliveries:
            line = f"  #{item.id} {item.channel} {item.kind or '-'} to {item.recipient}: {item.state.value}"
            if item.state is State.RETRY and item.next_attempt_at:
                line += f" (attempt {item.attempts}, next at {item.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC)"
            if item.error:
                line += f" - {item.error}"
            click.echo(line)
        click.echo(f"{len(report.sent)} sent, {len(report.retried)} to retry, {len(report.failed)} failed.")

    run_with_db(work)


@mail.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include delivered messages.")
@click.option("--limit", default=50, show_default=True, type=int)
def list_outbox(show_all: bool, limit: int) -> None:
    """Show the outbox: waiting, failed (and with --all, delivered) messages, newest first."""
    from lotse.platform.cli import run_with_db
    from lotse.platform.mail.models import OutboxMessage

    async def work() -> None:
        query = OutboxMessage.all() if show_all else OutboxMessage.filter(sent_at=None)
        rows = await query.order_by("-id").limit(limit)
        if not rows:
            click.echo("The outbox is empty." if show_all else "Nothing is waiting in the outbox.")
            return
        for row in rows:
            if row.sent_at:
                state = f"sent {row.sent_at:%Y-%m-%d %H:%M}"
            elif row.failed_at:
                state = f"FAILED {row.failed_at:%Y-%m-%d %H:%M}"
            else:
                state = f"waiting, next try {row.next_attempt_at:%Y-%m-%d %H:%M}"
            click.echo(f"#{row.id} {row.channel.value} {row.kind or '-'} to {row.recipient} "
                       f"[{row.language}] attempts={row.attempts} {state}"
                       + (f" - {row.last_error.splitlines()[0][:120]}" if row.last_error and not row.sent_at else ""))

    run_with_db(work)
