"""The caseload in Chromium, in German and in Dutch.

A therapist searches outside the caseload with a motivation and sends a link
request; the client accepts it in another browser context, signed in as
themself; the therapist then opens the dossier. axe-core checks the search
pages, the link request pages and every page of the dossier.
"""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, AuditType
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.organisations.models import LinkPolicy
from lotse.platform.tasks.models import Task, TaskKind
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind
from tests.browser.conftest import Server, axe, signed_in_page
from tests.factories import link, make_account, make_client, make_org

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

MOTIVATION = {
    "de": "Vertretung während des Urlaubs der Kollegin",
    "nl": "Waarneming tijdens de vakantie van mijn collega",
}
WORDS = {  # what the pages say, to check they speak the language
    "de": {"consent": "Verknüpfungsanfrage", "accept": "Annehmen"},
    "nl": {"consent": "Koppelverzoek", "accept": "Accepteren"},
}
DOSSIER_PAGES = ["", "/details", "/history", "/tasks", "/professionals", "/tools"]


async def _world(svc, language: str):
    organisation = await make_org(svc, default_language=language, search_outside_caseload=True,
                                  link_policy=LinkPolicy.CLIENT_CONSENT)
    therapist = await make_account(svc, organisation, Role.THERAPIST, locale=language, first_name="Mara",
                                   last_name=f"Suchend-{language}")
    colleague = await make_account(svc, organisation, Role.THERAPIST, locale=language, first_name="Jens",
                                   last_name="Verknüpft")
    supervisor = await make_account(svc, organisation, Role.SUPERVISOR, locale=language)
    await make_account(svc, organisation, Role.SECRETARY, locale=language)
    client = await make_client(svc, organisation, locale=language, first_name="Zoë", last_name=f"Hendriks-{language}")
    await link(svc, client, colleague)
    await link(svc, client, supervisor, LinkKind.SUPERVISING)
    diary = await Tool.create(organisation=organisation, kind=ToolKind.DIARY, title="Schlaftagebuch / Slaapdagboek",
                              steps=14, created_at=svc.now())
    await Tool.create(organisation=organisation, kind=ToolKind.MODULE, title="Grübeln / Piekeren", steps=6,
                      created_at=svc.now())
    await ToolAssignment.create(tool=diary, client=client, supervisor=colleague, steps_done=5,
                                assigned_at=svc.now(), updated_at=svc.now())
    await Task.create(organisation_id=organisation.id, assignee=colleague, client=client, kind=TaskKind.FOLLOW_UP,
                      note="Termin / afspraak", created_at=svc.now())
    return therapist, client


@pytest.mark.parametrize("language", ["de", "nl"])
async def test_outside_search_link_request_accepted_then_dossier(server: Server, new_page, language: str) -> None:
    therapist, client = await _world(server.svc, language)
    page = await signed_in_page(server, new_page, therapist, language)

    # Inside the caseload: empty, and the way out is offered.
    await page.goto(server.at("/caseload"))
    assert await page.get_attribute("html", "lang") == language
    await page.fill("#q", "hendriks")
    async with page.expect_navigation():
        await page.click("form.search button[type=submit]")
    assert client.name not in await page.inner_text("main")
    await axe(page)
    async with page.expect_navigation():
        await page.click("a[href$='/caseload/outside']")
    await axe(page)

    # Outside, a motivation that is too short is refused, with the field marked.
    await page.fill("#outside-q", "hendriks")
    await page.fill("#outside-motivation", "kurz")
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    assert await page.locator("[role=alert]").count() == 1
    assert await page.get_attribute("#outside-motivation", "aria-invalid") == "true"
    assert "outside-motivation-error" in (await page.get_attribute("#outside-motivation", "aria-describedby") or "")
    await axe(page)

    await page.fill("#outside-motivation", MOTIVATION[language])
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    table = await page.inner_text("main table")
    assert client.name in table
    assert "Jens Verknüpft" in table
    assert "Termin" not in table   # no clinical content: neither tasks nor tools
    assert "Slaap" not in table
    await axe(page)
    search = await AuditEvent.filter(action="caseload.search_outside", actor_id=therapist.id).first()
    assert (search.event_type, search.reason) == (AuditType.EMERGENCY_ACCESS, MOTIVATION[language])

    async with page.expect_navigation():
        await page.click(f"main table a:has-text('{client.name}')")
    assert await page.inner_text("h1") == client.name
    assert WORDS[language]["consent"] in await page.inner_text("main")
    await axe(page)
    async with page.expect_navigation():
        await page.click("main form button[type=submit]")
    request = await LinkRequest.get(client_id=client.id, professional_id=therapist.id)
    assert request.status is LinkRequestStatus.PENDING
    assert await page.locator("main form button[type=submit]").count() == 0   # sent: no second button
    await axe(page)

    # The client, in another browser context, accepts.
    client_page = await signed_in_page(server, new_page, client, language)
    await client_page.goto(server.at("/me/requests"))
    assert therapist.name in await client_page.inner_text("main")
    await axe(client_page)
    async with client_page.expect_navigation():
        await client_page.click(f"main button:has-text('{WORDS[language]['accept']}')")
    await request.refresh_from_db()
    assert request.status is LinkRequestStatus.ACCEPTED
    assert await CaseloadLink.filter(client_id=client.id, professional_id=therapist.id,
                                     kind=LinkKind.TREATING).exists()
    assert therapist.name not in await client_page.inner_text("main")
    await axe(client_page)

    # The therapist opens the dossier, every page of it.
    for suffix in DOSSIER_PAGES:
        await page.goto(server.at(f"/clients/{client.id}{suffix}"))
        assert await page.get_attribute("html", "lang") == language
        assert client.name in await page.inner_text(".dossier-menu")
        assert await page.locator(".dossier-menu [aria-current=page]").count() == 1
        await axe(page)
    await page.goto(server.at("/tasks"))
    await axe(page)
