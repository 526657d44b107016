"""The accounts JSON API: the same actions, error bodies with the field named, nothing written on bad input."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.audit.models import AuditEvent, Outcome
from lotse.platform.mail.models import OutboxMessage
from tests.factories import link, make_account, make_org

CLIENT = {"gender": "female", "first_name": "Lotte", "last_name": "Bos", "email": "Lotte.Bos@example.org",
          "date_of_birth": "1979-02-28"}


async def test_create_get_update_client(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    api = await sign_in_as(therapist)
    response = await api.post("/api/v1/clients", json=CLIENT)
    assert response.status_code == 201
    body = await response.get_json()
    assert (body["email"], body["role"], body["date_of_birth"], body["status"]) == (
        "lotte.bos@example.org", "client", "1979-02-28", "active")
    fetched = await (await api.get(f"/api/v1/accounts/{body['id']}")).get_json()
    assert fetched["last_name"] == "Bos"
    patched = await api.patch(f"/api/v1/accounts/{body['id']}", json={"label": "Gruppe A", "phone": None})
    assert patched.status_code == 200
    assert (await patched.get_json())["label"] == "Gruppe A"
    listing = await (await api.get("/api/v1/clients")).get_json()
    assert [item["id"] for item in listing["items"]] == [body["id"]]


async def test_operations(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    patient = await make_account(svc, org, Role.CLIENT, blocked_at=svc.now(), failed_logins=5,
                                 totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=svc.now())
    await link(svc, patient, therapist)
    api = await sign_in_as(therapist)
    for verb in ("unblock", "reset-two-factor", "resend-welcome", "deactivate"):
        response = await api.post(f"/api/v1/accounts/{patient.id}/{verb}", json={})
        assert response.status_code == 200, verb
    body = await (await api.post(f"/api/v1/accounts/{patient.id}/reactivate", json={})).get_json()
    assert (body["status"], body["blocked"], body["two_factor"]) == ("active", False, False)
    again = await api.post(f"/api/v1/accounts/{patient.id}/reactivate", json={})
    assert again.status_code == 409
    assert (await again.get_json())["code"] == "already_active"


async def test_operation_needs_json_body(svc, sign_in_as):
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    patient = await make_account(svc, org, Role.CLIENT)
    api = await sign_in_as(secretary)
    response = await api.post(f"/api/v1/accounts/{patient.id}/deactivate", form={"x": "1"})
    assert response.status_code == 415
    assert (await Account.get(id=patient.id)).status is AccountStatus.ACTIVE


async def test_email_taken_is_409_with_field_in_user_language(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST, locale="de")
    await make_account(svc, org, Role.APP_ADMIN, email="lotte.bos@example.org")
    api = await sign_in_as(therapist)
    response = await api.post("/api/v1/clients", json=CLIENT)
    assert response.status_code == 409
    body = await response.get_json()
    assert body["code"] == "email_taken"
    assert body["fields"]["email"] == "Es gibt bereits ein Konto mit dieser E-Mail-Adresse."


@pytest.mark.parametrize(
    ("payload", "field", "status"),
    [
        ({**CLIENT, "first_name": 42}, "first_name", 422),
        ({**CLIENT, "date_of_birth": 19790228}, "date_of_birth", 422),
        ({**CLIENT, "therapist_id": "7"}, "therapist_id", 422),
        ({**CLIENT, "last_name": "x" * 101}, "last_name", 422),
        ({**CLIENT, "email": "a" * 250 + "@example.org"}, "email", 422),
        ({**CLIENT, "email": "not an email"}, "email", 422),
        ({**CLIENT, "email": "lotte@@example.org"}, "email", 422),
        ({**CLIENT, "date_of_birth": "2026-03-03"}, "date_of_birth", 422),
        ({**CLIENT, "date_of_birth": "1979-02-30"}, "date_of_birth", 422),
        ({**CLIENT, "gender": "robot"}, "gender", 422),
        ({**CLIENT, "surprise": "field"}, "surprise", 422),
        ({k: v for k, v in CLIENT.items() if k != "email"}, "email", 422),
        ([1, 2, 3], "body", 422),
    ],
)
async def test_bad_input_names_the_field_and_writes_nothing(svc, sign_in_as, payload, field, status):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    api = await sign_in_as(therapist)
    response = await api.post("/api/v1/clients", json=payload)
    assert response.status_code == status
    body = await response.get_json()
    assert field in body["fields"]
    assert {"code", "message", "fields"} <= set(body)
    assert not await Account.filter(role=Role.CLIENT).exists()
    assert not await OutboxMessage.exists()


async def test_malformed_json_is_400_naming_the_body(svc, sign_in_as):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    api = await sign_in_as(therapist)
    response = await api.post("/api/v1/clients", data=b'{"first_name": "Lotte",',
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = await response.get_json()
    assert (body["code"], list(body["fields"])) == ("malformed", ["body"])
    assert not await Account.filter(role=Role.CLIENT).exists()


async def test_not_signed_in_is_401_json(client):
    response = await client.get("/api/v1/clients")
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "not_signed_in"


async def test_professionals_api_for_admins_only(svc, sign_in_as):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST)
    api = await sign_in_as(admin)
    created = await api.post("/api/v1/professionals", json={"role": "supervisor", "email": "sup@example.org",
                                                              "first_name": "Sam", "last_name": "Peters"})
    assert created.status_code == 201
    listing = await (await api.get("/api/v1/professionals?role=supervisor")).get_json()
    assert [item["email"] for item in listing["items"]] == ["sup@example.org"]
    bad_role = await api.get("/api/v1/professionals?role=client")
    assert bad_role.status_code == 422
    servicedesk = await api.post("/api/v1/professionals", json={"role": "servicedesk", "email": "d@example.org",
                                                                  "first_name": "D", "last_name": "E"})
    assert servicedesk.status_code == 422
    assert "role" in (await servicedesk.get_json())["fields"]
    refused = await (await sign_in_as(therapist)).get("/api/v1/professionals")
    assert refused.status_code == 403
    assert await AuditEvent.filter(outcome=Outcome.REFUSED, actor_id=therapist.id).exists()


async def test_other_organisation_account_is_404(svc, sign_in_as):
    org, other = await make_org(svc), await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    foreign = await make_account(svc, other, Role.THERAPIST)
    api = await sign_in_as(admin)
    assert (await api.get(f"/api/v1/accounts/{foreign.id}")).status_code == 404
    assert (await api.post(f"/api/v1/accounts/{foreign.id}/deactivate", json={})).status_code == 404
    assert (await Account.get(id=foreign.id)).is_active


async def test_openapi_documents_the_account_endpoints(client):
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    paths = spec["paths"]
    for path in ("/api/v1/clients", "/api/v1/professionals", "/api/v1/accounts/{account_id}",
                 "/api/v1/accounts/{account_id}/deactivate", "/api/v1/organisations/{slug}/settings",
                 "/api/v1/organisations/{slug}/import"):
        assert path in paths, path
    assert "welcome mail" in paths["/api/v1/clients"]["post"]["description"] + paths["/api/v1/clients"]["post"].get("summary", "")
