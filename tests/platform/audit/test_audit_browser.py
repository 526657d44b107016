"""The audit page in a real browser, in German and Dutch: filter, page, no serious axe-core findings."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.actions import record
from lotse.platform.audit.models import AuditType, Outcome
from lotse.platform.permissions import Actor
from tests.browser.conftest import (  # noqa: F401 - fixtures used by name
    CHROMIUM,
    Server,
    axe,
    browser,
    new_page,
    server,
    signed_in_page,
)
from tests.factories import make_account, make_org

pytestmark = [
    pytest.mark.browser,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs /usr/bin/chromium"),
]

REFUSED = {"de": "Abgelehnt", "nl": "Geweigerd"}
DEACTIVATED = {"de": "Konto deaktiviert", "nl": "Account gedeactiveerd"}


@pytest.mark.parametrize("language", ["de", "nl"])
async def test_admin_filters_the_audit_log(server: Server, new_page, language: str) -> None:  # noqa: F811
    svc = server.svc
    organisation = await make_org(svc, default_language=language)
    admin = await make_account(svc, organisation, Role.APP_ADMIN, locale=language)
    therapist = await make_account(svc, organisation, Role.THERAPIST)
    client = await make_account(svc, organisation, Role.CLIENT)
    await record(svc, Actor.of(therapist), "auth.sign_in", AuditType.SIGN_IN, subject=therapist)
    await record(svc, Actor.of(therapist), "account.deactivate", AuditType.UPDATE, subject=client,
                 outcome=Outcome.REFUSED)
    page = await signed_in_page(server, new_page, admin, language)

    await page.goto(server.at("/audit"))
    assert await page.get_attribute("html", "lang") == language
    assert await page.locator("table.audit-log tbody tr").count() == 2
    await axe(page)

    await page.select_option("#audit-outcome", "refused")
    async with page.expect_navigation():
        await page.click("form.audit-filters button[type=submit]")
    rows = page.locator("table.audit-log tbody tr")
    assert await rows.count() == 1
    text = await rows.first.inner_text()
    assert DEACTIVATED[language] in text
    assert REFUSED[language] in text
    assert client.pseudonym in text

    await page.fill("#audit-date_from", "2026-03-05")
    await page.fill("#audit-date_to", "2026-03-01")
    async with page.expect_navigation():
        await page.click("form.audit-filters button[type=submit]")
    assert await page.get_attribute("#audit-date_to", "aria-invalid") == "true"
    assert await page.locator("[role=alert]").count() == 1
    await axe(page)
