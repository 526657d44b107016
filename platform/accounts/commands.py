"""``lotse users ...`` and ``lotse import-accounts``: accounts from the command line.

The command line acts as the system (``Actor.system(via="cli")``) through the
same actions as the web app, so everything it does is audited. Output is for
operators and stays in English.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from lotse.platform.actions import Services
from lotse.platform.errors import PlatformError

T = TypeVar("T")


def _run(svc: Services, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` with the database open (like ``lotse.platform.cli.run_with_db``, without importing
    the whole command tree, so these commands also run on their own)."""
    from lotse.platform.db import close_db, init_db

    async def main() -> T:
        await init_db(svc.settings.database_url)
        try:
            return await work()
        finally:
            await close_db()

    return asyncio.run(main())


def _services() -> Services:
    from lotse.platform.clock import SystemClock
    from lotse.platform.config import load_settings
    from lotse.platform.events import InProcessBus
    from lotse.platform.i18n import Translations

    settings = load_settings()
    return Services(settings=settings, clock=SystemClock(), bus=InProcessBus(),
                    translations=Translations(settings.locales_dir))


def _fail(error: PlatformError) -> click.ClickException:
    """The error in English (the catalogues' source language), for the operator."""
    details = "; ".join(f"{name}: {message.render('en')}" for name, message in error.fields.items())
    return click.ClickException(f"{error.code}: {error.message.render('en')}" + (f" ({details})" if details else ""))


@click.group()
def users() -> None:
    """Accounts: create application admins and service-desk accounts."""


@users.command("create-admin")
@click.option("--organisation", "slug", required=True, help="The organisation's short name (slug).")
@click.option("--email", required=True)
@click.option("--first-name", required=True)
@click.option("--last-name", required=True)
@click.option("--role", type=click.Choice(["app_admin", "servicedesk"]), default="app_admin", show_default=True,
              help="servicedesk: the platform operator's account, made only here.")
@click.option("--organisation-name", default=None, help="Create the organisation with this name when it does not exist.")
@click.option("--language", type=click.Choice(["nl", "de"]), default=None, help="Default language of a new organisation.")
@click.option("--print-link", is_flag=True, help="Print the set-password link instead of mailing it.")
def create_admin(slug: str, email: str, first_name: str, last_name: str, role: str, organisation_name: str | None,
                 language: str | None, print_link: bool) -> None:
    """Create an application admin (or service-desk account) and send the welcome mail (or print its link)."""
    from lotse.platform.accounts.actions import do_create_professional, do_issue_welcome_link
    from lotse.platform.organisations.actions import do_create_organisation
    from lotse.platform.organisations.models import Organisation
    from lotse.platform.permissions import Actor

    svc = _services()
    system = Actor.system(via="cli")

    async def work() -> str:
        organisation = await Organisation.get_or_none(slug=slug)
        if organisation is None:
            if not organisation_name:
                raise click.ClickException(f"No organisation {slug!r}; pass --organisation-name to create it.")
            settings = {"default_language": language} if language else {}
            organisation = await do_create_organisation(svc, system, slug=slug, name=organisation_name,
                                                        settings=settings)
            click.echo(f"Created organisation {organisation.name} ({slug}).")
        try:
            account = await do_create_professional(
                svc, system, organisation,
                {"role": role, "email": email, "first_name": first_name, "last_name": last_name},
                send_welcome=not print_link,
            )
            if print_link:
                return await do_issue_welcome_link(svc, system, account)
        except PlatformError as error:
            raise _fail(error) from error
        return ""

    link = _run(svc, work)
    if link:
        click.echo(f"Created {email}. Set-password link (valid 7 days, single use):\n{link}")
    else:
        click.echo(f"Created {email}; the welcome mail is in the outbox (deliver it with `lotse mail deliver`).")


@click.command("import-accounts")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--organisation", "slug", required=True, help="The organisation's short name (slug).")
def import_accounts(file: Path, slug: str) -> None:
    """Create and update externally managed accounts from a JSON file.

    FILE holds a list of records (or {"records": [...]}) keyed by external_ref.
    Each record is reported as created, updated, unchanged or error; the exit
    status is 1 when any record failed.
    """
    from lotse.platform.accounts.actions import do_import_accounts
    from lotse.platform.organisations.models import Organisation
    from lotse.platform.permissions import Actor

    try:
        data: Any = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise click.ClickException(f"{file} is not readable JSON: {error}") from error
    records = data.get("records") if isinstance(data, dict) else data
    if not isinstance(records, list):
        raise click.ClickException("The file must hold a list of records, or an object with \"records\".")
    svc = _services()

    async def work() -> Any:
        organisation = await Organisation.get_or_none(slug=slug)
        if organisation is None:
            raise click.ClickException(f"No organisation {slug!r}.")
        return await do_import_accounts(svc, Actor.system(via="cli"), organisation, records)

    report = _run(svc, work)
    for result in report.results:
        line = f"  #{result.index} {result.external_ref or '-'}: {result.outcome}"
        if result.outcome == "error":
            fields = ", ".join(f"{name}: {text.render('en')}" for name, text in result.fields.items())
            line += f" [{result.code}] {fields or (result.message.render('en') if result.message else '')}"
        click.echo(line)
    summary = report.summary()
    click.echo(", ".join(f"{count} {name}" for name, count in summary.items()))
    if summary["error"]:
        raise SystemExit(1)
