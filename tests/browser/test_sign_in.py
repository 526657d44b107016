"""Signing in with password and authenticator code, in German and in Dutch."""

from __future__ import annotations

import pyotp
import pytest

from lotse.platform.accounts.models import Account, Role
from lotse.platform.auth import totp
from tests.browser.conftest import Server, axe
from tests.factories import PASSWORD, make_account, make_org

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

WELCOME = {"de": "Willkommen, %s", "nl": "Welkom, %s"}


async def _therapist_with_two_factor(server: Server, language: str) -> tuple[Account, str]:
    svc = server.svc
    organisation = await make_org(svc, default_language=language)
    secret = totp.new_secret()
    account = await make_account(svc, organisation, Role.THERAPIST, locale=language,
                                 totp_secret=secret, totp_enabled_at=svc.now())
    return account, secret


@pytest.mark.parametrize("language", ["de", "nl"])
async def test_sign_in_with_two_factor(server: Server, new_page, language: str) -> None:
    account, secret = await _therapist_with_two_factor(server, language)
    page = await new_page(language)

    await page.goto(server.at("/"))
    assert "/sign-in" in page.url
    assert await page.get_attribute("html", "lang") == language
    await axe(page)
    await page.fill("#email", account.email)
    await page.fill("#password", PASSWORD)
    async with page.expect_navigation():
        await page.click("form.auth button[type=submit]")

    assert "/sign-in/two-factor" in page.url
    assert await page.get_attribute("html", "lang") == language
    await axe(page)

    # A wrong code first: the error is announced and linked to the field.
    await page.fill("#code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    async with page.expect_navigation():
        await page.click("form.auth button[type=submit]")
    assert await page.locator("[role=alert]").count() == 1
    assert "form-error" in (await page.get_attribute("#code", "aria-describedby") or "")
    await axe(page)

    await page.fill("#code", pyotp.TOTP(secret).now())
    async with page.expect_navigation():
        await page.click("form.auth button[type=submit]")

    assert page.url.rstrip("/") == server.url
    assert await page.get_attribute("html", "lang") == language
    assert await page.inner_text("h1") == WELCOME[language] % account.first_name
    await axe(page)
    fresh = await Account.get(id=account.id)
    assert fresh.last_login_at is not None
    assert fresh.totp_last_step is not None


@pytest.mark.parametrize("language", ["de", "nl"])
async def test_wrong_password_does_not_reach_the_second_factor(server: Server, new_page, language: str) -> None:
    account, _secret = await _therapist_with_two_factor(server, language)
    page = await new_page(language)
    await page.goto(server.at("/sign-in"))
    await page.fill("#email", account.email)
    await page.fill("#password", PASSWORD + "x")
    async with page.expect_navigation():
        await page.click("form.auth button[type=submit]")
    assert "/two-factor" not in page.url
    assert await page.locator("[role=alert]").count() == 1
    assert await page.get_attribute("html", "lang") == language
    await axe(page)
