"""The account pages: lists, forms with field errors in the user's language, confirmed buttons."""

from __future__ import annotations

import re

import pytest

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.organisations.models import ExternalAccounts, FieldRule
from tests.factories import link, make_account, make_org


async def csrf_of(client, path="/"):
    """Fetch a page and return its CSRF token (the cookie is kept by the client)."""
    page = await (await client.get(path)).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


CLIENT_FORM = {"gender": "male", "first_name": "Daan", "last_name": "Visser", "email": "daan@example.org",
               "date_of_birth": "1985-10-03"}


async def test_therapist_adds_client_through_the_form(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await sign_in_as(therapist, "nl")
    page = await (await client.get("/clients/new")).get_data(as_text=True)
    assert '<label for="email">' in page
    assert 'name="therapist_id"' not in page
    token = await csrf_of(client, "/clients/new")
    response = await client.post("/clients/new", form={**CLIENT_FORM, "csrf_token": token})
    assert response.status_code == 302
    created = await Account.get(email="daan@example.org")
    assert response.headers["Location"].endswith(f"/accounts/{created.id}")
    assert await CaseloadLink.filter(client_id=created.id, professional_id=therapist.id).exists()
    listing = await (await client.get("/clients")).get_data(as_text=True)
    assert "Visser, Daan" in listing
    assert await AuditEvent.filter(action="account.list_clients", event_type=AuditType.SEARCH).exists()


@pytest.mark.parametrize(
    ("language", "expected"),
    [("de", "Es gibt bereits ein Konto mit dieser E-Mail-Adresse."), ("nl", "Er bestaat al een gebruiker met dit e-mailadres.")],
)
async def test_email_taken_shown_in_user_language_with_code(svc, sign_in_as, language, expected):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST, locale=language)
    await make_account(svc, await make_org(svc), Role.THERAPIST, email="daan@example.org")
    client = await sign_in_as(therapist)
    token = await csrf_of(client, "/clients/new")
    response = await client.post("/clients/new", form={**CLIENT_FORM, "email": "DAAN@example.org", "csrf_token": token})
    page = await response.get_data(as_text=True)
    assert response.status_code == 409
    assert expected in page
    assert 'id="email-error"' in page
    assert 'data-code="email_taken"' in page
    assert 'aria-describedby="email-hint email-error" aria-invalid="true"' in page
    assert 'role="alert"' in page
    assert await Account.filter(role=Role.CLIENT).count() == 0


async def test_field_errors_name_each_field(svc, sign_in_as):
    org = await make_org(svc, phone_rule=FieldRule.REQUIRED)
    secretary = await make_account(svc, org, Role.SECRETARY, locale="de")
    client = await sign_in_as(secretary)
    token = await csrf_of(client, "/clients/new")
    response = await client.post("/clients/new", form={**CLIENT_FORM, "date_of_birth": "2030-01-01", "email": "x@", "csrf_token": token})
    page = await response.get_data(as_text=True)
    assert response.status_code == 422
    for name in ("date_of_birth", "email", "phone"):
        assert f'id="{name}-error"' in page
    assert "Das Geburtsdatum darf nicht in der Zukunft liegen." in page


async def test_secretary_picks_treating_therapist(svc, sign_in_as):
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    therapist = await make_account(svc, org, Role.THERAPIST, first_name="Sanne", last_name="Smit")
    client = await sign_in_as(secretary)
    page = await (await client.get("/clients/new")).get_data(as_text=True)
    assert "Sanne Smit" in page
    token = await csrf_of(client, "/clients/new")
    response = await client.post("/clients/new", form={**CLIENT_FORM, "therapist_id": str(therapist.id), "csrf_token": token})
    assert response.status_code == 302
    created = await Account.get(email="daan@example.org")
    assert await CaseloadLink.filter(client_id=created.id, professional_id=therapist.id).exists()


async def test_form_without_csrf_is_refused(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await sign_in_as(therapist)
    response = await client.post("/clients/new", form=CLIENT_FORM)
    assert response.status_code == 400
    assert not await Account.filter(email="daan@example.org").exists()


async def test_admin_lists_and_filters_professionals_and_creates_one(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    await make_account(svc, org, Role.THERAPIST, last_name="Therapeut")
    await make_account(svc, org, Role.SECRETARY, last_name="Sekretariat")
    await make_account(svc, org, Role.CLIENT, last_name="Klient")
    client = await sign_in_as(admin, "de")
    page = await (await client.get("/professionals?role=secretary")).get_data(as_text=True)
    assert "Sekretariat," in page
    assert "Therapeut," not in page
    assert "Klient" not in page
    page = await (await client.get("/professionals")).get_data(as_text=True)
    assert "Therapeut," in page
    assert "Klient," not in page
    token = await csrf_of(client, "/professionals/new")
    response = await client.post("/professionals/new", form={
        "role": "content_editor", "first_name": "Lea", "last_name": "Berg", "email": "lea@example.org", "csrf_token": token})
    assert response.status_code == 302
    assert (await Account.get(email="lea@example.org")).role is Role.CONTENT_EDITOR


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SECRETARY, Role.SUPERVISOR, Role.CLIENT])
async def test_professional_pages_refused_to_others(svc, sign_in_as, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    client = await sign_in_as(someone)
    assert (await client.get("/professionals")).status_code == 403
    assert (await client.get("/professionals/new")).status_code == 403


async def test_admin_cannot_open_client_account_page(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    patient = await make_account(svc, org, Role.CLIENT)
    client = await sign_in_as(admin)
    assert (await client.get(f"/accounts/{patient.id}")).status_code == 404
    assert (await client.get("/clients")).status_code == 403


async def test_account_of_other_organisation_is_not_found(svc, sign_in_as):
    org, other = await make_org(svc), await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    foreign = await make_account(svc, other, Role.THERAPIST)
    client = await sign_in_as(admin)
    assert (await client.get(f"/accounts/{foreign.id}")).status_code == 404
    assert (await client.get("/accounts/999999")).status_code == 404


async def test_deactivate_button_asks_then_acts(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    patient = await make_account(svc, org, Role.CLIENT)
    await link(svc, patient, therapist)
    client = await sign_in_as(therapist, "nl")
    page = await (await client.get(f"/accounts/{patient.id}")).get_data(as_text=True)
    assert f'action="/accounts/{patient.id}/deactivate"' in page
    assert await AuditEvent.filter(action="account.view", event_type=AuditType.READ, subject_id=patient.id).exists()
    token = await csrf_of(client, f"/accounts/{patient.id}")
    asked = await client.post(f"/accounts/{patient.id}/deactivate", form={"csrf_token": token})
    assert asked.status_code == 200
    assert 'name="confirmed" value="1"' in await asked.get_data(as_text=True)
    assert (await Account.get(id=patient.id)).is_active
    done = await client.post(f"/accounts/{patient.id}/deactivate", form={"csrf_token": token, "confirmed": "1"})
    assert done.status_code == 302
    assert (await Account.get(id=patient.id)).status is AccountStatus.DEACTIVATED
    page = await (await client.get(f"/accounts/{patient.id}")).get_data(as_text=True)
    assert "/reactivate" in page
    assert "/deactivate" not in page


async def test_externally_managed_client_has_no_edit(svc, sign_in_as):
    org = await make_org(svc, external_accounts=ExternalAccounts.PROTECT)
    secretary = await make_account(svc, org, Role.SECRETARY)
    patient = await make_account(svc, org, Role.CLIENT, externally_managed=True, external_ref="EPD-9")
    client = await sign_in_as(secretary)
    page = await (await client.get(f"/accounts/{patient.id}")).get_data(as_text=True)
    assert "/edit" not in page
    assert "/deactivate" in page
    response = await client.get(f"/accounts/{patient.id}/edit")
    assert response.status_code == 409


async def test_edit_client(svc, sign_in_as):
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    patient = await make_account(svc, org, Role.CLIENT)
    client = await sign_in_as(secretary)
    token = await csrf_of(client, f"/accounts/{patient.id}/edit")
    response = await client.post(f"/accounts/{patient.id}/edit", form={"last_name": "Mulder", "csrf_token": token})
    assert response.status_code == 302
    assert (await Account.get(id=patient.id)).last_name == "Mulder"
    rows = await AuditEvent.filter(action="account.update", outcome=Outcome.SUCCESS)
    assert [r.details["fields"] for r in rows] == [["last_name"]]


async def test_nav_is_role_aware(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST)
    admin_page = await (await (await sign_in_as(admin)).get("/professionals")).get_data(as_text=True)
    assert 'href="/organisation/settings"' in admin_page
    assert 'href="/clients"' not in admin_page
    therapist_page = await (await (await sign_in_as(therapist)).get("/clients")).get_data(as_text=True)
    assert 'href="/clients" aria-current="page"' in therapist_page
    assert 'href="/professionals"' not in therapist_page
