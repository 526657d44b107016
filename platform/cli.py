"""The ``lotse`` command.

    lotse serve | demo              run the web app (demo seeds demo data first)
    lotse db migrate                create or update the database schema
    lotse users create-admin        an application admin for an organisation
    lotse import-accounts FILE      externally managed accounts from JSON records
    lotse mail deliver              deliver what waits in the outbox, once
    lotse flows ...                 author and test flows (the engine's commands)
    lotse actions list              the actions and facts flows may use
    lotse media serve               the media forwarding unit for calls as its own process

Every command that changes something calls the same actions as the web app.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import click

from lotse.platform.config import load_settings

T = TypeVar("T")


def run_with_db(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the database open, and close it afterwards (SQLite hangs otherwise)."""
    from lotse.platform.db import close_db, init_db

    async def main() -> T:
        settings = load_settings()
        await init_db(settings.database_url)
        try:
            return await work()
        finally:
            await close_db()

    return asyncio.run(main())


@click.group()
@click.version_option(package_name="lotse")
def main() -> None:
    """Lotse: guided support flows that act on a care platform."""


def _serve(host: str, port: int, banner: Callable[[str], None] | None = None) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from lotse.platform.app import create_app

    app = create_app()
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    _without_websocket_compression()
    url = f"http://{host}:{port}/"
    if banner:
        banner(url)
    else:
        click.echo(f"Lotse is running at {url}")
    gc.collect()
    gc.freeze()  # start-up objects are never freed: keep later collections from scanning them
    asyncio.run(serve(app, config))


def _without_websocket_compression() -> None:
    """Decline permessage-deflate: its zlib state costs 100+ KB per open socket, and our frames
    are small JSON. Hypercorn 0.18 has no setting for it, so its offer is replaced by one
    that accepts nothing."""
    from hypercorn.protocol import ws_stream
    from wsproto.extensions import PerMessageDeflate

    class Declined(PerMessageDeflate):
        def accept(self, offer: str) -> None:
            return None

    ws_stream.PerMessageDeflate = Declined  # type: ignore[attr-defined]


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
def serve(host: str, port: int) -> None:
    """Serve Lotse."""
    _serve(host, port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Only seed the demo data.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Seed the demo organisations (idempotently) and serve them."""
    from lotse.platform.demo import DEMO_PASSWORD, seed_demo

    logins = run_with_db(seed_demo)

    def banner(url: str) -> None:
        click.echo(f"\nLotse demo is running at {url}\n")
        click.echo(f"Every demo account has the password: {DEMO_PASSWORD}\n")
        for organisation, rows in logins.items():
            click.echo(organisation)
            for role, email in rows:
                click.echo(f"  {role:<16} {email}")
            click.echo("")
        click.echo(f"Mail sent by the demo lands in {load_settings().mail_dir}/new")

    if no_serve:
        banner(f"http://{host}:{port}/ (not started)")
        return
    _serve(host, port, banner)


@main.group()
def db() -> None:
    """The database."""


@db.command("migrate")
def db_migrate() -> None:
    """Apply pending schema migrations (the app also does this when it starts)."""
    from lotse.platform.db import close_db, init_db, migrate

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            click.echo(f"applied {app_label}.{name}")

    async def main() -> None:
        settings = load_settings()
        await migrate(settings.database_url, progress=progress)
        await init_db(settings.database_url)  # and the SQL extras (triggers, search indexes)
        await close_db()
        click.echo("Database schema is up to date.")

    asyncio.run(main())


@db.command("makemigrations")
@click.option("--name", default=None, help="A word or two for the file name.")
@click.option("--check", is_flag=True, help="Only say whether a migration is missing (exit 1 if so).")
def db_makemigrations(name: str | None, check: bool) -> None:
    """Write a migration for model changes (developers; commit the file)."""
    from lotse.platform.db import make_migrations, pending_model_changes

    if check:
        changes = asyncio.run(pending_model_changes())
        for change in changes:
            click.echo(change)
        if changes:
            raise SystemExit(1)
        click.echo("No model changes without a migration.")
        return
    paths = asyncio.run(make_migrations(name))
    click.echo("\n".join(paths) if paths else "No model changes.")


def _mount_optional(group: click.Group, module_name: str, attribute: str) -> None:
    """Add commands that live in domain modules; absent while the platform grows."""
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        # Only a missing domain is skipped; a missing import inside it is a bug.
        if not error.name or not module_name.startswith(error.name):
            raise
        return
    command: Any = getattr(module, attribute)
    if callable(command) and not isinstance(command, click.Command):
        command = command()
    group.add_command(command)


_mount_optional(main, "lotse.platform.accounts.commands", "users")
_mount_optional(main, "lotse.platform.accounts.commands", "import_accounts")
_mount_optional(main, "lotse.platform.mail.commands", "mail")
_mount_optional(main, "lotse.platform.help.commands", "flows")
_mount_optional(main, "lotse.platform.help.commands", "actions")
_mount_optional(main, "lotse.platform.calls.commands", "media")
