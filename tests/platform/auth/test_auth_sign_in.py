"""Sign-in with e-mail and password: one answer for every failure, lock-out, sessions."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from lotse.platform.accounts.models import (
    Account,
    AccountStatus,
    Role,
    Token,
    TokenPurpose,
    WebSession,
)
from lotse.platform.accounts.passwords import verify_password
from lotse.platform.accounts.sessions import start_session
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.web import SESSION_COOKIE
from tests.factories import PASSWORD, make_account, make_org
from tests.platform.auth.support import cookie


async def _sign_in(post_form, client, email, password, next_path=None):
    fields = {"email": email, "password": password}
    if next_path is not None:
        fields["next"] = next_path
    return await post_form(client, "/sign-in", **fields)


async def test_sign_in_page_has_labelled_fields_and_csrf(client):
    response = await client.get("/sign-in")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'name="csrf_token"' in html
    assert '<label for="email">' in html
    assert 'id="email"' in html
    assert '<label for="password">' in html
    assert 'autocomplete="current-password"' in html
    assert "/password/forgot" in html


async def test_sign_in_succeeds_sets_a_safe_cookie_and_audits(svc, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org, Role.THERAPIST, failed_logins=3)
    response = await _sign_in(post_form, client, account.email.upper(), PASSWORD, "/account")
    assert response.status_code == 302
    assert response.headers["Location"] == "/account"
    set_cookie = next(h for h in response.headers.get_all("Set-Cookie") if h.startswith(SESSION_COOKIE))
    assert "HttpOnly" in set_cookie
    assert "SameSite=Lax" in set_cookie
    assert "Secure" not in set_cookie
    await account.refresh_from_db()
    assert account.failed_logins == 0
    assert account.last_login_at == svc.now()
    session = await WebSession.get(account_id=account.id)
    assert session.pending_two_factor is False
    row = await AuditEvent.get(event_type=AuditType.SIGN_IN)
    assert (row.actor_id, row.subject_id, row.outcome, row.action) == (account.id, account.id, Outcome.SUCCESS, "auth.sign_in")
    page = await client.get("/account")
    assert page.status_code == 200


async def test_cookie_is_secure_when_configured(app, svc, post_form):
    from dataclasses import replace

    svc.settings = replace(svc.settings, secure_cookies=True)
    org = await make_org(svc)
    account = await make_account(svc, org)
    response = await _sign_in(post_form, app.test_client(), account.email, PASSWORD)
    set_cookie = next(h for h in response.headers.get_all("Set-Cookie") if h.startswith(SESSION_COOKIE))
    assert "Secure" in set_cookie


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"])
async def test_next_is_honoured_only_for_same_site_paths(svc, client, post_form, target):
    org = await make_org(svc)
    account = await make_account(svc, org)
    response = await _sign_in(post_form, client, account.email, PASSWORD, target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


async def test_failures_look_the_same_whatever_the_reason(app, svc, post_form):
    org = await make_org(svc)
    active = await make_account(svc, org)
    deactivated = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    blocked = await make_account(svc, org, blocked_at=svc.now())
    answers = []
    for email, password in [
        ("nobody@example.org", PASSWORD),       # unknown e-mail
        (active.email, "wrong password #1"),    # wrong password
        (deactivated.email, PASSWORD),          # deactivated, right password
        (blocked.email, PASSWORD),              # blocked, right password
    ]:
        response = await _sign_in(post_form, app.test_client(), email, password)
        html = (await response.get_data(as_text=True)).replace(email, "EMAIL")
        answers.append((response.status_code, html))
    assert answers[0][0] == 401
    assert all(answer == answers[0] for answer in answers)
    assert "We konden u niet aanmelden" in answers[0][1]
    assert 'role="alert"' in answers[0][1]
    assert "/password/forgot" in answers[0][1]
    assert not await WebSession.all().exists()

    rows = await AuditEvent.filter(event_type=AuditType.SIGN_IN_FAILURE).order_by("id")
    assert [(r.subject_id, r.details["reason"], r.outcome) for r in rows] == [
        (None, "unknown_account", Outcome.FAILED),
        (active.id, "wrong_password", Outcome.FAILED),
        (deactivated.id, "deactivated", Outcome.FAILED),
        (blocked.id, "blocked", Outcome.FAILED),
    ]


async def test_five_failures_block_and_mail_an_unblock_link(svc, client, post_form):
    org = await make_org(svc, default_language="de")
    account = await make_account(svc, org)
    for _ in range(4):
        await _sign_in(post_form, client, account.email, "wrong password #1")
    await account.refresh_from_db()
    assert (account.failed_logins, account.blocked_at) == (4, None)
    assert not await OutboxMessage.all().exists()

    await _sign_in(post_form, client, account.email, "wrong password #1")
    await account.refresh_from_db()
    assert account.blocked_at == svc.now()
    block = await AuditEvent.get(action="auth.block")
    assert (block.subject_id, block.event_type) == (account.id, AuditType.UPDATE)
    mail = await OutboxMessage.get(kind="account_blocked")
    assert (mail.recipient, mail.language, mail.account_id) == (account.email, "de", account.id)
    assert "gesperrt" in mail.subject
    link = next(word for word in mail.body_text.split() if "/unblock/" in word)
    assert link.startswith("http://lotse.test/unblock/")
    assert link in mail.body_html

    # Even the right password does not get in now.
    refused = await _sign_in(post_form, client, account.email, PASSWORD)
    assert refused.status_code == 401
    assert not await WebSession.filter(account_id=account.id).exists()

    # The link shows a button first (a mail scanner's GET changes nothing) ...
    path = link.removeprefix("http://lotse.test")
    page = await client.get(path)
    assert page.status_code == 200
    await account.refresh_from_db()
    assert account.is_blocked
    # ... and the POST unblocks, once.
    done = await post_form(client, path)
    assert done.status_code == 302
    assert done.headers["Location"] == "/sign-in"
    await account.refresh_from_db()
    assert (account.blocked_at, account.failed_logins) == (None, 0)
    assert await AuditEvent.filter(action="auth.unblock", subject_id=account.id).exists()
    again = await post_form(client, path)
    assert again.status_code == 410
    assert "al gebruikt" in await again.get_data(as_text=True)

    signed_in = await _sign_in(post_form, client, account.email, PASSWORD)
    assert signed_in.status_code == 302


async def test_unblock_link_expires_after_a_day(svc, clock, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    for _ in range(5):
        await _sign_in(post_form, client, account.email, "wrong password #1")
    mail = await OutboxMessage.get(kind="account_blocked")
    path = next(w for w in mail.body_text.split() if "/unblock/" in w).removeprefix("http://lotse.test")
    clock.advance(hours=24, seconds=1)
    response = await client.get(path)
    assert response.status_code == 410
    html = await response.get_data(as_text=True)
    assert "verlopen" in html
    assert "/password/forgot" in html


async def test_success_resets_the_count(svc, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    for _ in range(4):
        await _sign_in(post_form, client, account.email, "wrong password #1")
    await _sign_in(post_form, client, account.email, PASSWORD)
    for _ in range(4):
        await _sign_in(post_form, client, account.email, "wrong password #1")
    await account.refresh_from_db()
    assert (account.failed_logins, account.blocked_at) == (4, None)


async def test_sign_in_replaces_the_session_the_browser_had(svc, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    other = await make_account(svc, org)
    planted = await start_session(other, svc.now(), pending_two_factor=False)
    client.set_cookie("localhost", SESSION_COOKIE, planted)
    await _sign_in(post_form, client, account.email, PASSWORD)
    fresh = cookie(client)
    assert fresh
    assert fresh != planted
    assert not await WebSession.filter(account_id=other.id).exists()
    # Signing in again gives yet another id.
    await _sign_in(post_form, client, account.email, PASSWORD)
    assert cookie(client) not in (fresh, planted)
    assert await WebSession.filter(account_id=account.id).count() == 1


async def test_outdated_hash_is_upgraded_on_sign_in(svc, client, post_form):
    org = await make_org(svc)
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    account = await make_account(svc, org, password_hash=weak)
    await _sign_in(post_form, client, account.email, PASSWORD)
    await account.refresh_from_db()
    assert account.password_hash != weak
    assert verify_password(account.password_hash, PASSWORD)


async def test_account_without_password_cannot_sign_in_and_is_not_counted(svc, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org, password=None)
    response = await _sign_in(post_form, client, account.email, "")
    assert response.status_code == 401
    await account.refresh_from_db()
    assert account.failed_logins == 0


@pytest.mark.parametrize("token", [None, "", "forged"])
async def test_sign_in_without_valid_csrf_is_refused_and_changes_nothing(svc, client, csrf, token):
    org = await make_org(svc)
    account = await make_account(svc, org)
    csrf(client)
    form = {"email": account.email, "password": PASSWORD}
    if token is not None:
        form["csrf_token"] = token
    response = await client.post("/sign-in", form=form)
    assert response.status_code == 400
    assert "formulier is verlopen" in await response.get_data(as_text=True)
    assert not await WebSession.all().exists()
    assert not await AuditEvent.filter(event_type=AuditType.SIGN_IN).exists()


async def test_csrf_round_trip_through_the_page(svc, client):
    from tests.platform.auth.support import hidden

    org = await make_org(svc)
    account = await make_account(svc, org)
    page = await client.get("/sign-in")
    token = hidden(await page.get_data(as_text=True), "csrf_token")
    response = await client.post("/sign-in", form={"csrf_token": token, "email": account.email, "password": PASSWORD})
    assert response.status_code == 302


async def test_sign_out_ends_the_session(svc, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    await _sign_in(post_form, client, account.email, PASSWORD)
    assert await WebSession.filter(account_id=account.id).exists()
    response = await post_form(client, "/sign-out")
    assert response.status_code == 302
    assert not await WebSession.filter(account_id=account.id).exists()
    assert await AuditEvent.filter(event_type=AuditType.SIGN_OUT, subject_id=account.id).exists()
    assert (await client.get("/account")).status_code == 302


async def test_sign_out_needs_csrf(svc, client, sign_in_as):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    response = await browser.post("/sign-out", form={})
    assert response.status_code == 400
    assert await WebSession.filter(account_id=account.id).exists()


async def test_not_signed_in_pages_redirect_to_sign_in_with_next(client):
    response = await client.get("/account")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/sign-in?next=/account")


async def test_the_block_is_only_lifted_by_its_own_token_kind(svc, client):
    org = await make_org(svc)
    account = await make_account(svc, org, blocked_at=svc.now())
    from lotse.platform.accounts.tokens import issue_token

    secret = await issue_token(account, TokenPurpose.RESET, svc.now())
    response = await client.get(f"/unblock/{secret}")
    assert response.status_code == 410
    assert await Token.filter(account_id=account.id, used_at=None).count() == 1
    assert (await Account.get(id=account.id)).is_blocked


async def test_events_follow_the_commit(svc):
    from lotse.platform.auth import actions
    from lotse.platform.auth.errors import SignInFailedError
    from lotse.platform.permissions import Actor

    org = await make_org(svc)
    account = await make_account(svc, org, failed_logins=4)
    async with svc.bus.subscribe(f"account.{account.id}") as events:
        with pytest.raises(SignInFailedError):
            await actions.do_sign_in(svc, Actor.anonymous("127.0.0.1"), account.email, "wrong password #1")
        _topic, blocked = await anext(events)
        await actions.do_unblock_with_link(svc, Actor.anonymous(), await _unblock_secret(svc, account))
        _topic, unblocked = await anext(events)
        await actions.do_sign_in(svc, Actor.anonymous(), account.email, PASSWORD)
        _topic, signed_in = await anext(events)
    assert [blocked["event"], unblocked["event"], signed_in["event"]] == [
        "auth.account_blocked", "auth.account_unblocked", "auth.signed_in"]
    assert signed_in["account_id"] == account.id


async def _unblock_secret(svc, account):
    # The secret itself is only in the mail; take it from there, as the owner would.
    mail = await OutboxMessage.get(kind="account_blocked", account_id=account.id)
    return next(w for w in mail.body_text.split() if "/unblock/" in w).rsplit("/", 1)[1]
