"""Demo data (idempotent) and the account commands of the ``lotse`` command line."""

from __future__ import annotations

import json

import click
from click.testing import CliRunner

from lotse.platform.accounts.commands import import_accounts, users
from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.accounts.passwords import verify_password
from lotse.platform.audit.models import AuditEvent
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.demo import DEMO_PASSWORD, seed_demo
from lotse.platform.organisations.models import Organisation


@click.group()
def main() -> None:
    """The two commands as ``lotse`` mounts them (without importing every other domain's commands)."""


main.add_command(users)
main.add_command(import_accounts)


async def _snapshot():
    accounts = await Account.all().order_by("email").values_list("email", "role", "status", "organisation_id",
                                                                 "externally_managed")
    links = await CaseloadLink.all().order_by("id").values_list("client_id", "professional_id", "kind")
    orgs = await Organisation.all().order_by("slug").values_list("slug", "default_language")
    return accounts, links, orgs


async def test_demo_seeds_every_role_twice_the_same(svc):
    logins = await seed_demo(svc)
    first = await _snapshot()
    assert await seed_demo(svc) == logins
    assert await _snapshot() == first
    accounts, _links, orgs = first
    assert [lang for _slug, lang in orgs] == ["de", "nl", "nl"]
    names = list(logins)
    assert len(names) == 3
    for name in names[:2]:
        assert [role for role, _ in logins[name]] == ["client", "therapist", "supervisor", "secretary", "app_admin",
                                                      "content_editor"]
    assert logins[names[2]] == [("servicedesk", "servicedesk@lotse.example")]
    therapist = await Account.get(email=logins[names[0]][1][1])
    linked = await CaseloadLink.filter(professional_id=therapist.id, kind=LinkKind.TREATING).count()
    assert linked >= 5
    assert await Account.filter(role=Role.CLIENT, status=AccountStatus.DEACTIVATED).count() == 2
    assert await Account.filter(role=Role.CLIENT, externally_managed=True).count() == 2
    assert verify_password(therapist.password_hash, DEMO_PASSWORD)
    assert all(email.endswith(".example") for email, *_ in accounts)


def _env(tmp_path):
    return {"LOTSE_DATA_DIR": str(tmp_path / "var"), "LOTSE_BASE_URL": "http://lotse.test",
            "LOTSE_DATABASE_URL": f"sqlite://{tmp_path / 'cli.sqlite3'}"}


def test_create_admin_and_import_from_the_command_line(tmp_path):
    runner = CliRunner()
    env = _env(tmp_path)
    result = runner.invoke(main, ["users", "create-admin", "--organisation", "zorg", "--organisation-name", "Zorg",
                                  "--email", "Admin@Zorg.example", "--first-name", "Ada", "--last-name", "Admin",
                                  "--print-link"], env=env)
    assert result.exit_code == 0, result.output
    assert "http://lotse.test/welcome/" in result.output
    again = runner.invoke(main, ["users", "create-admin", "--organisation", "zorg", "--email", "admin@zorg.example",
                                 "--first-name", "Ada", "--last-name", "Admin"], env=env)
    assert again.exit_code == 1
    assert "email_taken" in again.output
    missing = runner.invoke(main, ["users", "create-admin", "--organisation", "nope", "--email", "x@zorg.example",
                                   "--first-name", "X", "--last-name", "Y"], env=env)
    assert missing.exit_code == 1

    records = tmp_path / "records.json"
    records.write_text(json.dumps({"records": [
        {"external_ref": "E1", "email": "e1@zorg.example", "first_name": "E", "last_name": "Een", "gender": "male",
         "date_of_birth": "1960-06-06"},
        {"external_ref": "E2", "email": "e2@zorg.example", "first_name": "", "last_name": "Twee", "gender": "male",
         "date_of_birth": "1960-06-06"},
    ]}))
    imported = runner.invoke(main, ["import-accounts", str(records), "--organisation", "zorg"], env=env)
    assert imported.exit_code == 1
    assert "#0 E1: created" in imported.output
    assert "#1 E2: error" in imported.output
    assert "first_name" in imported.output
    assert "1 created" in imported.output
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert runner.invoke(main, ["import-accounts", str(broken), "--organisation", "zorg"], env=env).exit_code == 1


def test_commands_have_help():
    runner = CliRunner()
    for args in (["users", "create-admin", "--help"], ["import-accounts", "--help"]):
        result = runner.invoke(main, args)
        assert result.exit_code == 0
        assert "--organisation" in result.output


async def test_demo_audits_as_system(svc):
    await seed_demo(svc)
    assert await AuditEvent.filter(actor_role="system", action="account.create").count() >= 12
