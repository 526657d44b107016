"""Organisations: creation, settings (action, page, API) and the import of externally managed accounts."""

from __future__ import annotations

import re

import pytest

from lotse.platform.accounts.actions import do_import_accounts, do_update_account
from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.actions import do_create_organisation, do_update_settings
from lotse.platform.organisations.models import (
    ExternalAccounts,
    LinkPolicy,
    Organisation,
    TwoFactorRule,
)
from lotse.platform.permissions import Actor
from tests.factories import make_account, make_org

NOT_ADMINS = [Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.CONTENT_EDITOR, Role.SERVICEDESK, Role.CLIENT]


async def test_create_organisation_has_every_default(svc):
    org = await do_create_organisation(svc, Actor.system(via="cli"), slug="zorg", name="Zorg")
    assert org.settings_dict() == {
        "video_calls": True, "participant_cap": 12, "search_outside_caseload": False, "link_policy": "read_only",
        "external_accounts": "protect", "phone_rule": "optional", "client_id_rule": "optional",
        "two_factor": "optional", "sms_invitations": False, "data_leak_deletion": True, "default_language": "nl",
    }
    assert await AuditEvent.filter(action="organisation.create", event_type=AuditType.CREATE).exists()
    admin = await make_account(svc, org, Role.APP_ADMIN)
    with pytest.raises(NotPermittedError):
        await do_create_organisation(svc, Actor.of(admin), slug="other", name="Other")


async def test_update_settings_audits_old_and_new(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    seen = []
    async with svc.bus.subscribe("organisation.settings_updated") as events:
        changes = await do_update_settings(svc, Actor.of(admin), org, {
            "participant_cap": 9, "two_factor": "required", "video_calls": True, "default_language": "de"})
        seen.append((await anext(events))[1])
    assert changes == {"participant_cap": [12, 9], "two_factor": ["optional", "required"], "default_language": ["nl", "de"]}
    fresh = await Organisation.get(id=org.id)
    assert (fresh.participant_cap, fresh.two_factor, fresh.default_language) == (9, TwoFactorRule.REQUIRED, "de")
    row = await AuditEvent.get(action="organisation.update_settings", outcome=Outcome.SUCCESS)
    assert row.details["changes"]["participant_cap"] == [12, 9]
    assert seen[0]["changes"]["two_factor"] == ["optional", "required"]


@pytest.mark.parametrize(
    "bad", [{"participant_cap": 1}, {"participant_cap": 13}, {"participant_cap": True}, {"link_policy": "anyone"},
            {"default_language": "en"}, {"video_calls": "maybe"}, {"colour": "blue"}],
)
async def test_update_settings_refuses_bad_values(svc, bad):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    with pytest.raises(ValidationError) as caught:
        await do_update_settings(svc, Actor.of(admin), org, bad)
    assert set(caught.value.fields) == set(bad)
    assert (await Organisation.get(id=org.id)).settings_dict() == org.settings_dict()


@pytest.mark.parametrize("role", NOT_ADMINS)
async def test_update_settings_refused(svc, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    with pytest.raises(NotPermittedError):
        await do_update_settings(svc, Actor.of(someone), org, {"sms_invitations": True})
    assert not (await Organisation.get(id=org.id)).sms_invitations


async def test_foreign_admin_cannot_change_settings(svc):
    org, other = await make_org(svc), await make_org(svc)
    admin = await make_account(svc, other, Role.APP_ADMIN)
    with pytest.raises(NotPermittedError):
        await do_update_settings(svc, Actor.of(admin), org, {"sms_invitations": True})


async def test_settings_page(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    client = await sign_in_as(admin, "de")
    page = await (await client.get("/organisation/settings")).get_data(as_text=True)
    assert '<label for="participant_cap">' in page
    assert "Höchstzahl der Teilnehmenden" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    form = {"csrf_token": token, "participant_cap": "9", "link_policy": "self_link", "video_calls": "off"}
    response = await client.post("/organisation/settings", form=form)
    assert response.status_code == 302
    fresh = await Organisation.get(id=org.id)
    assert (fresh.participant_cap, fresh.link_policy, fresh.video_calls) == (9, LinkPolicy.SELF_LINK, False)
    bad = await client.post("/organisation/settings", form={**form, "participant_cap": "20"})
    assert bad.status_code == 422
    assert 'id="participant_cap-error"' in await bad.get_data(as_text=True)


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SECRETARY])
async def test_settings_page_refused(svc, sign_in_as, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    assert (await (await sign_in_as(someone)).get("/organisation/settings")).status_code == 403


async def test_settings_api(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    api = await sign_in_as(admin)
    body = await (await api.get(f"/api/v1/organisations/{org.slug}/settings")).get_json()
    assert body["participant_cap"] == 12
    response = await api.patch(f"/api/v1/organisations/{org.slug}/settings", json={"participant_cap": 9, "sms_invitations": True})
    assert response.status_code == 200
    assert (await response.get_json())["participant_cap"] == 9
    for bad, field in (({"participant_cap": "9"}, "participant_cap"), ({"participant_cap": 20}, "participant_cap"),
                       ({"video_calls": "yes"}, "video_calls"), ({"nonsense": 1}, "nonsense")):
        response = await api.patch(f"/api/v1/organisations/{org.slug}/settings", json=bad)
        assert response.status_code == 422
        assert field in (await response.get_json())["fields"]
    other = await make_org(svc)
    assert (await api.get(f"/api/v1/organisations/{other.slug}/settings")).status_code == 404
    assert (await Organisation.get(id=org.id)).participant_cap == 9


# --- import ---------------------------------------------------------------------


async def test_import_creates_updates_and_reports_per_record(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST, email="t@example.org")
    await make_account(svc, org, Role.CLIENT, email="taken@example.org")
    records = [
        {"external_ref": "EPD-1", "email": "Anna@Example.org", "first_name": "Anna", "last_name": "Kok", "gender": "female",
         "date_of_birth": "1970-01-01", "therapist_email": "t@example.org"},
        {"external_ref": "EPD-2", "email": "taken@example.org", "first_name": "B", "last_name": "C", "gender": "male",
         "date_of_birth": "1980-01-01"},
        {"external_ref": "EPD-3", "email": "c@example.org", "first_name": "C", "last_name": "D", "gender": "male",
         "date_of_birth": "2999-01-01"},
        "not an object",
        {"external_ref": "HR-1", "role": "therapist", "email": "hr1@example.org", "first_name": "Ida", "last_name": "Rot"},
    ]
    report = await do_import_accounts(svc, Actor.of(admin, via="api"), org, records)
    assert [r.outcome for r in report.results] == ["created", "error", "error", "error", "created"]
    assert report.results[1].code == "email_taken"
    assert "email" in report.results[1].fields
    assert "date_of_birth" in report.results[2].fields
    anna = await Account.get(external_ref="EPD-1")
    assert (anna.externally_managed, anna.email) == (True, "anna@example.org")
    assert await CaseloadLink.filter(client_id=anna.id, professional_id=therapist.id).exists()
    assert await OutboxMessage.filter(account_id=anna.id, kind="welcome").exists()
    assert (await Account.get(external_ref="HR-1")).role is Role.THERAPIST
    summary = await AuditEvent.filter(action="accounts.import", subject_id=None, event_type=AuditType.IMPORT).get()
    assert (summary.details["created"], summary.details["error"]) == (2, 3)
    assert await AuditEvent.filter(action="accounts.import", subject_id=anna.id, event_type=AuditType.IMPORT).exists()

    # Second run: unchanged, then an update (name, deactivation) of the same record.
    again = await do_import_accounts(svc, Actor.of(admin), org, records[:1])
    assert again.results[0].outcome == "unchanged"
    changed = await do_import_accounts(svc, Actor.of(admin), org, [{**records[0], "last_name": "Kok-de Wit", "active": False}])
    assert changed.results[0].outcome == "updated"
    fresh = await Account.get(id=anna.id)
    assert (fresh.last_name, fresh.status) == ("Kok-de Wit", AccountStatus.DEACTIVATED)
    assert await Account.filter(external_ref="EPD-1").count() == 1


async def test_imported_accounts_are_protected_from_edits(svc):
    org = await make_org(svc, external_accounts=ExternalAccounts.PROTECT)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    await do_import_accounts(svc, Actor.of(admin), org, [
        {"external_ref": "X1", "email": "x1@example.org", "first_name": "X", "last_name": "Y", "gender": "other",
         "date_of_birth": "2000-02-29"}])
    secretary = await make_account(svc, org, Role.SECRETARY)
    with pytest.raises(ConflictError) as caught:
        await do_update_account(svc, Actor.of(secretary), await Account.get(external_ref="X1"), {"last_name": "Z"})
    assert caught.value.code == "externally_managed"


@pytest.mark.parametrize("role", NOT_ADMINS)
async def test_import_refused(svc, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    with pytest.raises(NotPermittedError):
        await do_import_accounts(svc, Actor.of(someone), org, [
            {"external_ref": "X1", "email": "x1@example.org", "first_name": "X", "last_name": "Y", "gender": "other",
             "date_of_birth": "2000-02-29"}])
    assert not await Account.filter(external_ref="X1").exists()
    assert await AuditEvent.filter(action="accounts.import", outcome=Outcome.REFUSED).exists()


async def test_import_api(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN, locale="nl")
    api = await sign_in_as(admin)
    response = await api.post(f"/api/v1/organisations/{org.slug}/import", json={"records": [
        {"external_ref": "A", "email": "a@example.org", "first_name": "A", "last_name": "B", "gender": "female",
         "date_of_birth": "1990-01-01"},
        {"external_ref": "B", "email": "bad", "first_name": "A", "last_name": "B", "gender": "female",
         "date_of_birth": "1990-01-01"},
    ]})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["summary"] == {"created": 1, "updated": 0, "unchanged": 0, "error": 1}
    assert body["results"][1]["fields"]["email"].startswith("Vul een geldig e-mailadres in")
    bad = await api.post(f"/api/v1/organisations/{org.slug}/import", json={"records": "nope"})
    assert bad.status_code == 422
    assert "records" in (await bad.get_json())["fields"]
