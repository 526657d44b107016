"""A therapist creates a client account in the browser, in German and in Dutch."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Account, Role
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.mail.models import OutboxMessage
from tests.browser.conftest import Server, axe, signed_in_page
from tests.factories import make_account, make_org

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


@pytest.mark.parametrize("language", ["de", "nl"])
async def test_therapist_creates_a_client(server: Server, new_page, language: str) -> None:
    svc = server.svc
    organisation = await make_org(svc, default_language=language)
    therapist = await make_account(svc, organisation, Role.THERAPIST, locale=language)
    email = f"new.client.{language}@example.org"
    page = await signed_in_page(server, new_page, therapist, language)

    await page.goto(server.at("/clients/new"))
    assert await page.get_attribute("html", "lang") == language
    await axe(page)

    await page.select_option("#gender", "female")
    await page.fill("#first_name", "Mila")
    await page.fill("#last_name", "Visser")
    await page.fill("#email", "not-an-address")
    await page.fill("#date_of_birth", "1991-03-04")
    async with page.expect_navigation():
        await page.click("form.client-form button[type=submit]")

    # Refused with the field marked, in the page's language, and nothing written.
    assert page.url.endswith("/clients/new")
    assert await page.locator("[role=alert]").count() == 1
    assert await page.get_attribute("#email", "aria-invalid") == "true"
    assert "email-error" in (await page.get_attribute("#email", "aria-describedby") or "")
    assert await page.input_value("#first_name") == "Mila"
    assert not await Account.filter(last_name="Visser", organisation=organisation).exists()
    await axe(page)

    await page.fill("#email", email)
    async with page.expect_navigation():
        await page.click("form.client-form button[type=submit]")

    client = await Account.get(email=email)
    assert page.url.endswith(f"/accounts/{client.id}")
    assert (client.role, client.first_name, client.last_name) == (Role.CLIENT, "Mila", "Visser")
    assert str(client.date_of_birth) == "1991-03-04"
    assert await CaseloadLink.filter(client=client, professional=therapist).exists()
    welcome = await OutboxMessage.get(account_id=client.id, kind="welcome")
    assert welcome.language == language
    assert await page.get_attribute("html", "lang") == language
    assert "Mila" in await page.inner_text("main")
    await axe(page)
