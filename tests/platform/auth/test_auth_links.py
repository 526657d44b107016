"""Welcome and reset links, and "forgot password": expiry, single use, the way forward."""

from __future__ import annotations

import re

import pytest

from lotse.platform.accounts.models import AccountStatus, Role, Token, TokenPurpose, WebSession
from lotse.platform.accounts.passwords import verify_password
from lotse.platform.accounts.sessions import start_session
from lotse.platform.accounts.tokens import issue_token
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.auth.actions import SOURCE_LIMIT, do_request_password_reset
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import TwoFactorRule
from lotse.platform.permissions import Actor
from tests.factories import make_account, make_org
from tests.platform.auth.support import cookie

NEW_PASSWORD = "a brand new one #42"


async def _welcome_account(svc):
    org = await make_org(svc)
    account = await make_account(svc, org, Role.CLIENT, password=None)
    secret = await issue_token(account, TokenPurpose.WELCOME, svc.now())
    return account, f"/welcome/{secret}"


async def _set(post_form, client, path, password=NEW_PASSWORD, repeat=None):
    return await post_form(client, path, password=password, repeat=password if repeat is None else repeat)


@pytest.mark.parametrize(("days", "usable"), [(6, True), (8, False)])
async def test_welcome_link_lives_seven_days(svc, clock, client, post_form, days, usable):
    account, path = await _welcome_account(svc)
    clock.advance(days=days)
    page = await client.get(path)
    html = await page.get_data(as_text=True)
    if not usable:
        assert page.status_code == 410
        assert "verlopen" in html
        assert "welkomstmail opnieuw" in html  # ask the organisation to resend it
        response = await _set(post_form, client, path)
        assert response.status_code == 410
        await account.refresh_from_db()
        assert account.password_hash is None
        return
    assert page.status_code == 200
    assert 'autocomplete="new-password"' in html
    response = await _set(post_form, client, path)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    await account.refresh_from_db()
    assert verify_password(account.password_hash, NEW_PASSWORD)
    assert account.password_changed_at == svc.now()
    session = await WebSession.get(account_id=account.id)
    assert session.pending_two_factor is False
    assert cookie(client) is not None
    rows = await AuditEvent.filter(subject_id=account.id, outcome=Outcome.SUCCESS).order_by("id")
    assert [(r.action, r.event_type) for r in rows] == [
        ("auth.password.welcome", AuditType.UPDATE),
        ("auth.sign_in", AuditType.SIGN_IN),
    ]


async def test_welcome_link_used_twice_shows_already_used(svc, app, client, post_form):
    account, path = await _welcome_account(svc)
    assert (await _set(post_form, client, path)).status_code == 302
    other_browser = app.test_client()
    page = await other_browser.get(path)
    assert page.status_code == 410
    html = await page.get_data(as_text=True)
    assert "al gebruikt" in html
    assert "/sign-in" in html
    again = await _set(post_form, other_browser, path, "another password #9")
    assert again.status_code == 410
    await account.refresh_from_db()
    assert verify_password(account.password_hash, NEW_PASSWORD)


async def test_resending_kills_the_old_link(svc, client):
    account, old_path = await _welcome_account(svc)
    new_secret = await issue_token(account, TokenPurpose.WELCOME, svc.now())
    assert (await client.get(old_path)).status_code == 410
    assert (await client.get(f"/welcome/{new_secret}")).status_code == 200


async def test_unknown_link_is_a_clear_page_not_an_error(client):
    response = await client.get("/password/reset/not-a-real-secret")
    assert response.status_code == 410
    html = await response.get_data(as_text=True)
    assert "niet geldig" in html
    assert "/password/forgot" in html


@pytest.mark.parametrize(
    ("password", "repeat", "field", "message"),
    [
        ("short #1", "short #1", "password", "mindestens 12 Zeichen"),
        ("twelve letters only", "twelve letters only", "password", "Sonderzeichen"),
        (NEW_PASSWORD, "something else #1", "repeat", "stimmen nicht überein"),
    ],
)
async def test_password_policy_is_explained_in_the_users_language(svc, client, post_form, password, repeat, field, message):
    org = await make_org(svc, default_language="de")
    account = await make_account(svc, org, password=None)
    secret = await issue_token(account, TokenPurpose.WELCOME, svc.now())
    response = await _set(post_form, client, f"/welcome/{secret}", password, repeat)
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert '<html lang="de">' in html
    assert message in html
    assert "oder %." in html  # the hint's literal percent sign
    assert "%%" not in html
    assert f'id="{field}-error"' in html
    assert re.search(rf'id="{field}"[^>]*aria-describedby="[^"]*{field}-error"[^>]*aria-invalid="true"', html)
    token = await Token.get(account_id=account.id)
    assert token.used_at is None
    await account.refresh_from_db()
    assert account.password_hash is None


async def test_forgot_password_answers_the_same_and_mails_only_real_accounts(svc, app, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    gone = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    pages = []
    for email in (account.email, "nobody@example.org", gone.email):
        response = await post_form(app.test_client(), "/password/forgot", email=email)
        pages.append((response.status_code, await response.get_data(as_text=True)))
    assert pages[0][0] == 200
    assert all(page == pages[0] for page in pages)
    assert "Als er een account met dit e-mailadres bestaat" in pages[0][1]
    mails = await OutboxMessage.all()
    assert [(m.kind, m.recipient) for m in mails] == [("password_reset", account.email)]
    rows = await AuditEvent.filter(action="auth.password_reset.request").order_by("id")
    assert [(r.subject_id, r.outcome) for r in rows] == [
        (account.id, Outcome.SUCCESS), (None, Outcome.REFUSED), (gone.id, Outcome.REFUSED),
    ]


async def test_forgot_password_checks_the_address_shape(client, post_form):
    response = await post_form(client, "/password/forgot", email="not an address")
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert not await OutboxMessage.all().exists()


@pytest.mark.parametrize(
    ("language", "subject", "greeting"),
    [("de", "Neues Passwort für Lotse festlegen", "Guten Tag"), ("nl", "Nieuw wachtwoord instellen voor Lotse", "Beste")],
)
async def test_reset_mail_lands_in_the_outbox_with_a_working_link(svc, app, post_form, language, subject, greeting):
    org = await make_org(svc, default_language="nl")
    account = await make_account(svc, org, locale=language, blocked_at=svc.now(), failed_logins=5)
    other_device = await start_session(account, svc.now(), pending_two_factor=False)
    await post_form(app.test_client(), "/password/forgot", email=account.email)
    mail = await OutboxMessage.get(kind="password_reset")
    assert (mail.recipient, mail.language, mail.subject) == (account.email, language, subject)
    assert mail.body_text.startswith(greeting)
    assert greeting in mail.body_html
    link = re.search(r"http://lotse\.test/password/reset/\S+", mail.body_text).group(0)
    assert f'href="{link}"' in mail.body_html

    browser = app.test_client()
    path = link.removeprefix("http://lotse.test")
    page = await browser.get(path)
    assert page.status_code == 200
    assert f'<html lang="{language}">' in await page.get_data(as_text=True)
    done = await _set(post_form, browser, path)
    assert done.status_code == 302
    await account.refresh_from_db()
    assert verify_password(account.password_hash, NEW_PASSWORD)
    # The reset also lifts the block, and ends the sessions elsewhere.
    assert (account.blocked_at, account.failed_logins) == (None, 0)
    sessions = await WebSession.filter(account_id=account.id)
    assert len(sessions) == 1
    assert cookie(browser) != other_device


@pytest.mark.parametrize(("minutes", "usable"), [(59, True), (61, False)])
async def test_reset_link_lives_one_hour(svc, clock, client, post_form, minutes, usable):
    org = await make_org(svc)
    account = await make_account(svc, org)
    secret = await issue_token(account, TokenPurpose.RESET, svc.now())
    clock.advance(minutes=minutes)
    response = await _set(post_form, client, f"/password/reset/{secret}")
    if usable:
        assert response.status_code == 302
        return
    assert response.status_code == 410
    html = await response.get_data(as_text=True)
    assert "verlopen" in html
    assert "/password/forgot" in html  # request a new link


async def test_a_new_reset_request_kills_the_earlier_link(svc, clock, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    await post_form(client, "/password/forgot", email=account.email)
    clock.advance(minutes=6)  # past the cooldown
    await post_form(client, "/password/forgot", email=account.email)
    first, second = await OutboxMessage.filter(kind="password_reset").order_by("id")
    first_path = re.search(r"/password/reset/\S+", first.body_text).group(0)
    second_path = re.search(r"/password/reset/\S+", second.body_text).group(0)
    assert (await client.get(first_path)).status_code == 410
    assert (await client.get(second_path)).status_code == 200


async def test_link_set_password_leads_to_the_second_factor_when_due(svc, client, post_form):
    org = await make_org(svc, two_factor=TwoFactorRule.REQUIRED)
    account = await make_account(svc, org, password=None)
    secret = await issue_token(account, TokenPurpose.WELCOME, svc.now())
    response = await _set(post_form, client, f"/welcome/{secret}")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/account/two-factor")
    session = await WebSession.get(account_id=account.id)
    assert session.pending_two_factor is True
    assert (await client.get("/account")).status_code == 302


async def test_deactivated_account_link_says_so(svc, client):
    org = await make_org(svc)
    account = await make_account(svc, org, password=None, status=AccountStatus.DEACTIVATED)
    secret = await issue_token(account, TokenPurpose.WELCOME, svc.now())
    response = await client.get(f"/welcome/{secret}")
    assert response.status_code == 410
    assert "gedeactiveerd" in await response.get_data(as_text=True)


async def test_set_password_needs_csrf(svc, client):
    account, path = await _welcome_account(svc)
    response = await client.post(path, form={"password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert response.status_code == 400
    await account.refresh_from_db()
    assert account.password_hash is None
    assert (await Token.get(account_id=account.id)).used_at is None


async def test_reset_mails_are_held_back_for_five_minutes_and_the_answer_stays_the_same(svc, clock, client, post_form):
    org = await make_org(svc)
    account = await make_account(svc, org)
    first = await post_form(client, "/password/forgot", email=account.email)
    clock.advance(minutes=4)
    second = await post_form(client, "/password/forgot", email=account.email)
    unknown = await post_form(client, "/password/forgot", email="nobody@example.org")

    assert first.status_code == second.status_code == unknown.status_code == 200
    assert await first.get_data() == await second.get_data() == await unknown.get_data()
    assert await OutboxMessage.filter(kind="password_reset").count() == 1
    held = await AuditEvent.get(action="auth.password_reset.request", outcome=Outcome.REFUSED, subject_id=account.id)
    assert held.details == {"reason": "cooldown"}

    clock.advance(minutes=1, seconds=1)
    await post_form(client, "/password/forgot", email=account.email)
    assert await OutboxMessage.filter(kind="password_reset").count() == 2


async def test_unblock_links_are_held_back_for_five_minutes(svc, clock):
    from lotse.platform.auth.actions import do_send_unblock_link
    from lotse.platform.help.actions import do_send_unblock_link as help_alias

    assert help_alias is do_send_unblock_link  # the help code keeps its import
    org = await make_org(svc)
    account = await make_account(svc, org, blocked_at=svc.now(), failed_logins=5)
    actor = Actor.anonymous("192.0.2.7")
    await do_send_unblock_link(svc, actor, account.email)
    await do_send_unblock_link(svc, actor, account.email.upper())
    assert await OutboxMessage.filter(kind="account_blocked", account_id=account.id).count() == 1
    clock.advance(minutes=6)
    await do_send_unblock_link(svc, actor, account.email)
    assert await OutboxMessage.filter(kind="account_blocked", account_id=account.id).count() == 2
    # A reset mail is another purpose: not held back by the unblock link.
    await do_request_password_reset(svc, actor, account.email)
    assert await OutboxMessage.filter(kind="password_reset", account_id=account.id).count() == 1


async def test_one_source_address_may_ask_only_so_often(svc, clock):
    org = await make_org(svc)
    account = await make_account(svc, org)
    others = [await make_account(svc, org) for _ in range(2)]
    noisy = Actor.anonymous("192.0.2.9")
    for n in range(SOURCE_LIMIT):
        await do_request_password_reset(svc, noisy, f"nobody{n}@example.org")

    await do_request_password_reset(svc, noisy, account.email)
    assert not await OutboxMessage.filter(account_id=account.id).exists()
    assert await AuditEvent.filter(action="auth.password_reset.request", details={"reason": "source_limit"}).exists()

    # Another address, and signed-in people, are not held back.
    await do_request_password_reset(svc, Actor.anonymous("192.0.2.10"), account.email)
    assert await OutboxMessage.filter(account_id=account.id).count() == 1
    secretary = await make_account(svc, org, Role.SECRETARY)
    await do_request_password_reset(svc, Actor.of(secretary, source_address="192.0.2.9"), others[0].email)
    assert await OutboxMessage.filter(account_id=others[0].id).count() == 1

    clock.advance(minutes=16)
    await do_request_password_reset(svc, noisy, others[1].email)
    assert await OutboxMessage.filter(account_id=others[1].id).count() == 1


async def test_sign_in_audit_rows_carry_no_addresses_or_names(svc, client, post_form):
    from lotse.platform.auth.actions import do_send_unblock_link

    org = await make_org(svc)
    account = await make_account(svc, org, first_name="Henrike", last_name="Vogelsang")
    await post_form(client, "/sign-in", email="nobody.here@example.org", password="wrong")
    await post_form(client, "/sign-in", email=account.email, password="wrong")
    await post_form(client, "/password/forgot", email="nobody.else@example.org")
    await post_form(client, "/password/forgot", email=account.email)
    await do_send_unblock_link(svc, Actor.anonymous("192.0.2.1"), account.email)

    rows = await AuditEvent.all()
    assert len(rows) >= 5
    text = " ".join(f"{row.details} {row.reason}" for row in rows)
    for personal in ("@", "nobody", "Henrike", "Vogelsang"):
        assert personal not in text
