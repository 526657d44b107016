"""My account: details, language, password change; nobody else may change them."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Account, Role, WebSession
from lotse.platform.accounts.passwords import verify_password
from lotse.platform.accounts.sessions import start_session
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.auth import actions
from lotse.platform.errors import NotPermittedError, ValidationError
from lotse.platform.permissions import Actor
from tests.factories import PASSWORD, make_account, make_org
from tests.platform.auth.support import cookie

NEW_PASSWORD = "another good one #7"


async def test_account_page_shows_details_and_forms(svc, sign_in_as):
    org = await make_org(svc, name="Praxis Nord", default_language="de")
    account = await make_account(svc, org, first_name="Mia", last_name="Berg")
    browser = await sign_in_as(account)
    response = await browser.get("/account")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<html lang="de">' in html
    assert "Mia Berg" in html
    assert account.email in html
    assert "Praxis Nord" in html
    assert "Standard der Organisation (Deutsch)" in html
    assert html.count('name="csrf_token"') >= 4
    assert '<label for="current">' in html


@pytest.mark.parametrize(("choice", "stored"), [("de", "de"), ("nl", "nl"), ("", None)])
async def test_set_language(svc, sign_in_as, post_form, choice, stored):
    org = await make_org(svc)
    account = await make_account(svc, org, locale="de" if choice != "de" else "nl")
    browser = await sign_in_as(account, language="de")
    response = await post_form(browser, "/account/language", language=choice)
    assert response.status_code == 302
    await account.refresh_from_db()
    assert account.locale == stored
    row = await AuditEvent.get(action="account.set_language")
    assert (row.subject_id, row.event_type, row.outcome) == (account.id, AuditType.UPDATE, Outcome.SUCCESS)
    if choice == "":
        # The browser's earlier choice must not keep overriding the organisation's default.
        assert any(h.startswith("lotse_lang=;") for h in response.headers.get_all("Set-Cookie"))


async def test_set_language_refuses_unknown_languages(svc, sign_in_as, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    response = await post_form(browser, "/account/language", language="fr")
    assert response.status_code == 422
    await account.refresh_from_db()
    assert account.locale is None


async def test_language_switch_in_the_header_saves_the_profile(svc, sign_in_as, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    await post_form(browser, "/language", language="de", next="/account")
    await account.refresh_from_db()
    assert account.locale == "de"


async def test_change_password_ends_other_sessions_only(svc, app, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    elsewhere = await start_session(account, svc.now(), pending_two_factor=False)
    browser = app.test_client()
    await post_form(browser, "/sign-in", email=account.email, password=PASSWORD)
    mine = cookie(browser)
    response = await post_form(browser, "/account/password", current=PASSWORD, password=NEW_PASSWORD, repeat=NEW_PASSWORD)
    assert response.status_code == 302
    await account.refresh_from_db()
    assert verify_password(account.password_hash, NEW_PASSWORD)
    assert account.password_changed_at == svc.now()
    assert await WebSession.filter(account_id=account.id).count() == 1
    assert cookie(browser) == mine
    assert (await browser.get("/account")).status_code == 200
    other = app.test_client()
    other.set_cookie("localhost", "lotse_session", elsewhere)
    assert (await other.get("/account")).status_code == 302
    assert await AuditEvent.filter(action="auth.password.change", outcome=Outcome.SUCCESS).exists()


@pytest.mark.parametrize(
    ("current", "password", "repeat", "field"),
    [
        ("wrong password #1", NEW_PASSWORD, NEW_PASSWORD, "current"),
        (PASSWORD, "short #1", "short #1", "password"),
        (PASSWORD, NEW_PASSWORD, "different #1 one", "repeat"),
    ],
)
async def test_change_password_explains_what_is_wrong(svc, sign_in_as, post_form, current, password, repeat, field):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    response = await post_form(browser, "/account/password", current=current, password=password, repeat=repeat)
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert f'id="{field}-error"' in html
    assert 'role="alert"' in html
    await account.refresh_from_db()
    assert verify_password(account.password_hash, PASSWORD)
    assert account.failed_logins == (1 if field == "current" else 0)


async def test_change_password_needs_csrf(svc, sign_in_as):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    response = await browser.post("/account/password", form={"current": PASSWORD, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert response.status_code == 400
    await account.refresh_from_db()
    assert verify_password(account.password_hash, PASSWORD)


@pytest.mark.parametrize("role", list(Role))
async def test_nobody_else_may_change_language_or_password(svc, role):
    org = await make_org(svc)
    owner = await make_account(svc, org, Role.CLIENT)
    other = await make_account(svc, org, role)
    with pytest.raises(NotPermittedError):
        await actions.do_set_language(svc, Actor.of(other), owner, "de")
    with pytest.raises(NotPermittedError):
        # Even knowing the current password does not let another account change it.
        await actions.do_change_password(svc, Actor.of(other), owner, PASSWORD, NEW_PASSWORD, NEW_PASSWORD)
    fresh = await Account.get(id=owner.id)
    assert fresh.locale is None
    assert verify_password(fresh.password_hash, PASSWORD)
    assert await AuditEvent.filter(actor_id=other.id, outcome=Outcome.REFUSED).count() == 2


async def test_language_must_be_offered(svc):
    org = await make_org(svc)
    account = await make_account(svc, org)
    with pytest.raises(ValidationError):
        await actions.do_set_language(svc, Actor.of(account), account, "en")
