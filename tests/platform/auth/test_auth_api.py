"""The sign-in API: shapes of answers and errors, JSON-only state changes, the second factor."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import AccountStatus, WebSession
from lotse.platform.audit.models import AuditEvent, AuditType
from lotse.platform.auth import totp
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import TwoFactorRule
from tests.factories import PASSWORD, make_account, make_org
from tests.platform.auth.support import code_now, cookie

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def test_sign_in_who_am_i_and_sign_out(svc, client):
    org = await make_org(svc)
    account = await make_account(svc, org, locale="de")
    response = await client.post("/api/v1/session", json={"email": account.email, "password": PASSWORD})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "signed_in"
    assert body["account"]["id"] == account.id
    assert body["account"]["language"] == "de"
    assert "password_hash" not in body["account"]
    assert cookie(client)
    row = await AuditEvent.get(event_type=AuditType.SIGN_IN)
    assert (row.via, row.subject_id) == ("api", account.id)

    me = await client.get("/api/v1/session")
    assert (await me.get_json())["account"]["email"] == account.email

    out = await client.delete("/api/v1/session", headers={"Content-Type": "application/json"})
    assert out.status_code == 204
    assert not await WebSession.filter(account_id=account.id).exists()
    gone = await client.get("/api/v1/session")
    assert gone.status_code == 401
    assert (await gone.get_json())["code"] == "not_signed_in"


async def test_failures_are_identical_for_unknown_wrong_blocked_and_deactivated(svc, app):
    org = await make_org(svc)
    active = await make_account(svc, org)
    blocked = await make_account(svc, org, blocked_at=svc.now())
    deactivated = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    answers = []
    for email, password in [("nobody@example.org", PASSWORD), (active.email, "wrong password #1"),
                            (blocked.email, PASSWORD), (deactivated.email, PASSWORD)]:
        response = await app.test_client().post("/api/v1/session", json={"email": email, "password": password})
        answers.append((response.status_code, await response.get_json()))
    assert answers[0] == (401, {"code": "sign_in_failed", "message": "We konden u niet aanmelden met dit e-mailadres en wachtwoord."})
    assert all(answer == answers[0] for answer in answers)


@pytest.mark.parametrize(
    ("kwargs", "status", "field"),
    [
        ({"json": {"email": "a@example.org"}}, 422, "password"),
        ({"json": {"email": 12, "password": PASSWORD}}, 422, "email"),
        ({"json": {"email": "a@example.org", "password": ["x"]}}, 422, "password"),
        ({"json": {"email": "x" * 300 + "@example.org", "password": PASSWORD}}, 422, "email"),
        ({"data": "{not json", "headers": {"Content-Type": "application/json"}}, 400, None),
    ],
)
async def test_bad_input_gets_a_field_error_never_a_500(client, kwargs, status, field):
    response = await client.post("/api/v1/session", **kwargs)
    assert response.status_code in (400, 422)
    if status == 422:
        assert response.status_code == 422
    body = await response.get_json()
    assert body["code"] in ("invalid", "bad_request")
    if field:
        assert field in body["fields"]
    assert not await AuditEvent.filter(event_type=AuditType.SIGN_IN).exists()


@pytest.mark.parametrize("path", ["/api/v1/session", "/api/v1/password/forgot", "/api/v1/session/two-factor"])
async def test_state_changes_must_be_json(svc, client, path):
    org = await make_org(svc)
    account = await make_account(svc, org)
    response = await client.post(path, form={"email": account.email, "password": PASSWORD, "code": "123456"})
    assert response.status_code == 415
    assert (await response.get_json())["code"] == "unsupported_media_type"
    assert not await WebSession.all().exists()
    assert not await OutboxMessage.all().exists()


async def test_sign_out_must_be_json_too(svc, client, sign_in_as):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    response = await browser.delete("/api/v1/session")
    assert response.status_code == 415
    assert await WebSession.filter(account_id=account.id).exists()


async def test_second_factor_over_the_api(svc, client):
    org = await make_org(svc)
    account = await make_account(svc, org, totp_secret=SECRET, totp_enabled_at=svc.now())
    first = await client.post("/api/v1/session", json={"email": account.email, "password": PASSWORD})
    assert (await first.get_json()) == {"status": "two_factor_required", "account": None}
    assert (await (await client.get("/api/v1/session")).get_json())["status"] == "two_factor_required"

    wrong = await client.post("/api/v1/session/two-factor", json={"code": "000000"})
    assert wrong.status_code == 401
    assert (await wrong.get_json())["code"] == "two_factor_failed"
    right = await client.post("/api/v1/session/two-factor", json={"code": code_now(svc, SECRET)})
    assert right.status_code == 200
    assert (await right.get_json())["account"]["two_factor_enabled"] is True
    await account.refresh_from_db()
    assert account.failed_logins == 0
    assert account.totp_last_step == totp.step_at(svc.now())


async def test_two_factor_without_a_pending_session_is_not_signed_in(client):
    response = await client.post("/api/v1/session/two-factor", json={"code": "123456"})
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "not_signed_in"


async def test_enrolment_required_is_reported(svc, client):
    org = await make_org(svc, two_factor=TwoFactorRule.REQUIRED)
    account = await make_account(svc, org)
    response = await client.post("/api/v1/session", json={"email": account.email, "password": PASSWORD})
    assert (await response.get_json())["status"] == "two_factor_enrolment_required"


async def test_forgot_password_is_accepted_either_way(svc, client):
    org = await make_org(svc)
    account = await make_account(svc, org)
    known = await client.post("/api/v1/password/forgot", json={"email": account.email})
    unknown = await client.post("/api/v1/password/forgot", json={"email": "nobody@example.org"})
    assert (known.status_code, await known.get_json()) == (unknown.status_code, await unknown.get_json()) == (
        202, {"status": "accepted"})
    assert await OutboxMessage.filter(kind="password_reset").count() == 1
    bad = await client.post("/api/v1/password/forgot", json={"email": "not an address"})
    assert bad.status_code == 422
    assert "email" in (await bad.get_json())["fields"]


async def test_openapi_documents_the_endpoints(client):
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    assert {"post", "get", "delete"} <= set(spec["paths"]["/api/v1/session"])
    assert "post" in spec["paths"]["/api/v1/session/two-factor"]
    assert "post" in spec["paths"]["/api/v1/password/forgot"]
    assert "same 401" in spec["paths"]["/api/v1/session"]["post"]["description"]
