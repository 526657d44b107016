"""Two-factor: enrolment, the code at sign-in, replay, recovery codes, the organisation's rule."""

from __future__ import annotations

import asyncio
import re

import pytest

from lotse.platform.accounts.models import Account, Role, WebSession
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.auth import actions, totp
from lotse.platform.errors import ConflictError, NotPermittedError
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import TwoFactorRule
from lotse.platform.permissions import Actor
from tests.factories import PASSWORD, make_account, make_org
from tests.platform.auth.support import code_now, cookie, hidden

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
RECOVERY = ["abcde-fghjk", "mnpqr-stuvw"]
_recovery_hashes: list[str] = []


def recovery_hashes() -> list[str]:
    # Hashing is slow (argon2): once per test run.
    if not _recovery_hashes:
        _recovery_hashes.extend(totp.hash_recovery_codes(RECOVERY))
    return list(_recovery_hashes)


async def _enrolled(svc, org, **fields):
    return await make_account(svc, org, totp_secret=SECRET, totp_enabled_at=svc.now(),
                              recovery_codes=recovery_hashes(), **fields)


async def _password_step(post_form, client, account):
    return await post_form(client, "/sign-in", email=account.email, password=PASSWORD, next="/account")


async def test_enrol_from_my_account(svc, client, sign_in_as, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    page = await browser.get("/account/two-factor")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'src="data:image/svg+xml' in html
    secret = hidden(html, "secret")
    assert secret.replace(" ", "")[:4] in html  # the key is shown as text too
    assert page.headers["Cache-Control"] == "no-store"

    wrong = await post_form(browser, "/account/two-factor", secret=secret, code="000000")
    assert wrong.status_code == 422
    assert hidden(await wrong.get_data(as_text=True), "secret") == secret  # the scanned key stays valid

    done = await post_form(browser, "/account/two-factor", secret=secret, code=code_now(svc, secret))
    assert done.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", await done.get_data(as_text=True))
    assert len(codes) == 6
    assert len(set(codes)) == 6
    await account.refresh_from_db()
    assert account.two_factor_enabled
    assert account.totp_secret == secret
    assert len(account.recovery_codes) == 6
    assert not any(code in str(account.recovery_codes) for code in codes)
    row = await AuditEvent.get(action="auth.two_factor.enable")
    assert (row.actor_id, row.subject_id, row.event_type) == (account.id, account.id, AuditType.UPDATE)


async def test_sign_in_asks_for_the_code_and_refuses_a_replay(svc, clock, app, post_form):
    org = await make_org(svc)
    account = await _enrolled(svc, org)
    client = app.test_client()
    response = await _password_step(post_form, client, account)
    assert response.headers["Location"] == "/sign-in/two-factor?next=/account"
    pending_cookie = cookie(client)
    assert (await WebSession.get(account_id=account.id)).pending_two_factor
    # Nothing else is reachable yet.
    assert (await client.get("/account")).status_code == 302
    assert (await client.get("/sign-in/two-factor")).status_code == 200

    code = code_now(svc, SECRET)
    done = await post_form(client, "/sign-in/two-factor", code=code, next="/account")
    assert done.status_code == 302
    assert done.headers["Location"] == "/account"
    assert cookie(client) != pending_cookie  # a new id once the second factor is given
    assert (await client.get("/account")).status_code == 200
    row = await AuditEvent.get(action="auth.sign_in", event_type=AuditType.SIGN_IN)
    assert row.details == {"second_factor": "totp"}

    # The same code, in the same window, from another browser: refused.
    other = app.test_client()
    await _password_step(post_form, other, account)
    replay = await post_form(other, "/sign-in/two-factor", code=code)
    assert replay.status_code == 401
    clock.advance(seconds=30)
    fresh = await post_form(other, "/sign-in/two-factor", code=code_now(svc, SECRET))
    assert fresh.status_code == 302


async def test_codes_of_the_neighbouring_steps_are_accepted(svc, clock, app, post_form):
    org = await make_org(svc)
    account = await _enrolled(svc, org)
    client = app.test_client()
    await _password_step(post_form, client, account)
    late = await post_form(client, "/sign-in/two-factor", code=code_now(svc, SECRET, -30))
    assert late.status_code == 302
    other = app.test_client()
    await _password_step(post_form, other, account)
    too_old = await post_form(other, "/sign-in/two-factor", code=code_now(svc, SECRET, -90))
    assert too_old.status_code == 401


async def test_a_recovery_code_works_once(svc, app, post_form):
    org = await make_org(svc)
    account = await _enrolled(svc, org)
    client = app.test_client()
    await _password_step(post_form, client, account)
    done = await post_form(client, "/sign-in/two-factor", code=RECOVERY[0].upper().replace("-", " "))
    assert done.status_code == 302
    await account.refresh_from_db()
    assert len(account.recovery_codes) == 1
    assert await AuditEvent.filter(action="auth.recovery_code.use", subject_id=account.id).exists()

    other = app.test_client()
    await _password_step(post_form, other, account)
    again = await post_form(other, "/sign-in/two-factor", code=RECOVERY[0])
    assert again.status_code == 401


async def test_a_recovery_code_used_by_two_requests_at_once_signs_in_only_one(svc):
    org = await make_org(svc)
    account = await _enrolled(svc, org)
    actor = Actor.anonymous()
    first = await actions.do_sign_in(svc, actor, account.email, PASSWORD)
    second = await actions.do_sign_in(svc, actor, account.email, PASSWORD)

    results = await asyncio.gather(
        actions.do_verify_two_factor(svc, actor, first.session_key, RECOVERY[0]),
        actions.do_verify_two_factor(svc, actor, second.session_key, RECOVERY[0]),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["SignInResult", "TwoFactorFailedError"]
    await account.refresh_from_db()
    assert len(account.recovery_codes) == 1
    assert await AuditEvent.filter(action="auth.recovery_code.use", subject_id=account.id).count() == 1


async def test_failed_codes_count_towards_the_lock_out(svc, app, post_form):
    org = await make_org(svc)
    account = await _enrolled(svc, org)
    client = app.test_client()
    await _password_step(post_form, client, account)
    for _ in range(4):
        response = await post_form(client, "/sign-in/two-factor", code="123456")
        assert response.status_code == 401
    # The right password does not reset the count while the code is still due.
    await _password_step(post_form, client, account)
    await post_form(client, "/sign-in/two-factor", code="123456")
    await account.refresh_from_db()
    assert account.is_blocked
    assert not await WebSession.filter(account_id=account.id).exists()
    assert await OutboxMessage.filter(kind="account_blocked", account_id=account.id).exists()
    failures = await AuditEvent.filter(action="auth.two_factor", event_type=AuditType.SIGN_IN_FAILURE).count()
    assert failures == 5
    # Even a correct code does not help now.
    late = await post_form(client, "/sign-in/two-factor", code=code_now(svc, SECRET))
    assert late.status_code == 302
    assert late.headers["Location"].startswith("/sign-in")


async def test_required_rule_forces_enrolment_right_after_the_password(svc, app, post_form):
    org = await make_org(svc, two_factor=TwoFactorRule.REQUIRED)
    account = await make_account(svc, org)
    client = app.test_client()
    response = await _password_step(post_form, client, account)
    assert response.headers["Location"] == "/account/two-factor?next=/account"
    for path in ("/account", "/", "/sign-in/two-factor"):
        assert (await client.get(path)).status_code == 302
    page = await client.get("/account/two-factor?next=/account")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    secret = hidden(html, "secret")
    assert 'name="next" value="/account"' in html
    done = await post_form(client, "/account/two-factor", secret=secret, code=code_now(svc, secret), next="/account")
    assert done.status_code == 200
    assert 'href="/account"' in await done.get_data(as_text=True)
    session = await WebSession.get(account_id=account.id)
    assert session.pending_two_factor is False
    assert (await client.get("/account")).status_code == 200
    await account.refresh_from_db()
    assert account.two_factor_enabled
    assert account.last_login_at == svc.now()


async def test_optional_rule_lets_people_in_without_a_second_factor(svc, app, post_form):
    org = await make_org(svc, two_factor=TwoFactorRule.OPTIONAL)
    account = await make_account(svc, org)
    client = app.test_client()
    response = await _password_step(post_form, client, account)
    assert response.headers["Location"] == "/account"
    html = await (await client.get("/account")).get_data(as_text=True)
    assert "/account/two-factor" in html


async def test_off_rule_does_not_ask_and_hides_enrolment(svc, app, post_form):
    org = await make_org(svc, two_factor=TwoFactorRule.OFF)
    account = await _enrolled(svc, org)
    client = app.test_client()
    response = await _password_step(post_form, client, account)
    assert response.headers["Location"] == "/account"
    html = await (await client.get("/account")).get_data(as_text=True)
    assert "/account/two-factor" not in html
    assert "recovery-codes" not in html
    assert (await client.get("/account/two-factor")).status_code == 404
    plain = await make_account(svc, org)
    with pytest.raises(ConflictError, match="two_factor_off"):
        await actions.do_enable_two_factor(svc, Actor.of(plain), plain, SECRET, code_now(svc, SECRET))


async def test_regenerating_recovery_codes_replaces_them(svc, sign_in_as, post_form):
    org = await make_org(svc)
    account = await _enrolled(svc, org)
    browser = await sign_in_as(account)
    response = await post_form(browser, "/account/recovery-codes")
    assert response.status_code == 200
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", await response.get_data(as_text=True))
    assert len(codes) == 6
    await account.refresh_from_db()
    assert totp.matching_recovery_code(account.recovery_codes, RECOVERY[0]) is None
    assert totp.matching_recovery_code(account.recovery_codes, codes[3]) == 3
    assert await AuditEvent.filter(action="auth.recovery_codes.regenerate", outcome=Outcome.SUCCESS).exists()


@pytest.mark.parametrize("role", list(Role))
async def test_nobody_else_may_enable_or_regenerate_for_an_account(svc, role):
    org = await make_org(svc)
    owner = await _enrolled(svc, org, role=Role.CLIENT)
    fresh = await make_account(svc, org, Role.CLIENT)
    other = await make_account(svc, org, role)
    with pytest.raises(NotPermittedError):
        await actions.do_regenerate_recovery_codes(svc, Actor.of(other), owner)
    with pytest.raises(NotPermittedError):
        await actions.do_enable_two_factor(svc, Actor.of(other), fresh, SECRET, code_now(svc, SECRET))
    refusals = await AuditEvent.filter(outcome=Outcome.REFUSED, actor_id=other.id).count()
    assert refusals == 2
    assert not (await Account.get(id=fresh.id)).two_factor_enabled
    assert (await Account.get(id=owner.id)).recovery_codes == recovery_hashes()


async def test_enrolment_needs_csrf(svc, sign_in_as):
    org = await make_org(svc)
    account = await make_account(svc, org)
    browser = await sign_in_as(account)
    response = await browser.post("/account/two-factor", form={"secret": SECRET, "code": code_now(svc, SECRET)})
    assert response.status_code == 400
    await account.refresh_from_db()
    assert not account.two_factor_enabled
