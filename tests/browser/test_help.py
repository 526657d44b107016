"""The help centre and the runner pages in Chromium: three flows that act, axe-core, and the keyboard.

- An application admin walks ``video-call-readiness`` in German (checklist
  view) for a deactivated therapist, reactivates the account from the flow
  and sees it active on the account page.
- A therapist in Dutch meets the duplicate-address error while creating a
  client, follows "resolve this" into ``duplicate-email`` (conversation view)
  and sends a link request, which the client then sees and accepts.
- A signed-out person follows "can't sign in?" on the sign-in page into
  ``login-help`` using the keyboard only (Tab and Enter) and gets a reset
  mail, delivered into the maildir.

Every help page on the way is checked with axe-core (no serious or critical
violation).
"""

from __future__ import annotations

import mailbox
from typing import Any

import pytest

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.caseload.models import CaseloadLink, LinkRequest, LinkRequestStatus
from lotse.platform.help.models import HelpSession
from lotse.platform.mail.delivery import deliver_due
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy
from lotse.platform.tasks.models import Task, TaskKind
from tests.browser.conftest import Server, axe, signed_in_page
from tests.factories import link, make_account, make_client, make_org

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

MAX_TABS = 60


async def _click(page: Any, selector: str) -> None:
    """Click a button that sends a form, and wait for the page it leads to."""
    async with page.expect_navigation():
        await page.click(selector)


async def _session_row(page: Any) -> HelpSession:
    public_id = page.url.split("/help/sessions/")[1].split("#")[0].split("?")[0]
    return await HelpSession.get(public_id=public_id)


async def _tab_to(page: Any, selector: str) -> None:
    """Press Tab until the element matching ``selector`` has the focus (fail if it never gets it)."""
    for _ in range(MAX_TABS):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement !== null && document.activeElement.matches(s)",
                               selector):
            # Whoever uses the keyboard must see where they are.
            outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
            assert outline not in ("none", ""), f"{selector} on {page.url} shows no focus outline"
            return
    pytest.fail(f"{selector} on {page.url} is not reachable with Tab")


async def _press_enter_on(page: Any, selector: str) -> None:
    """Tab to ``selector`` and press Enter, waiting for the page it leads to."""
    await _tab_to(page, selector)
    async with page.expect_navigation():
        await page.keyboard.press("Enter")


async def test_admin_reactivates_a_therapist_with_the_german_checklist(server: Server, new_page) -> None:
    svc = server.svc
    organisation = await make_org(svc, default_language="de")
    admin = await make_account(svc, organisation, Role.APP_ADMIN, locale="de")
    therapist = await make_account(svc, organisation, Role.THERAPIST, locale="de", first_name="Greta",
                                   last_name="Vogel", status=AccountStatus.DEACTIVATED, last_login_at=svc.now())
    page = await signed_in_page(server, new_page, admin, "de")

    await page.goto(server.at("/help"))
    assert await page.get_attribute("html", "lang") == "de"
    assert await page.inner_text("h1") == "Hilfe-Center"
    await axe(page)
    await page.fill("#help-q", "Videogespräch")
    await _click(page, "form.filter button[type=submit]")
    await axe(page)
    async with page.expect_navigation():
        await page.click("a[href='/help/start/video-call-readiness']")

    assert await page.get_attribute("html", "lang") == "de"
    await axe(page)
    await page.select_option("#in_therapist", str(therapist.id))
    await _click(page, "form.help-start button[type=submit]")

    # The account's state comes from platform data: straight to the reactivation, confirmed first.
    assert "/help/sessions/" in page.url
    assert await page.locator(".help-checklist").count() == 1
    checklist = await page.inner_text(".help-checklist")
    assert "Greta Vogel" in checklist
    assert "deaktiviert" in checklist
    assert "aus Plattformdaten beantwortet" in checklist
    step = await page.inner_text("#step")
    assert "Greta Vogel" in step
    assert "Das Konto wieder aktivieren" in step
    await axe(page)
    assert (await Account.get(id=therapist.id)).status is AccountStatus.DEACTIVATED

    await _click(page, "#step button[name=input][value=confirm]")
    assert (await Account.get(id=therapist.id)).status is AccountStatus.ACTIVE
    assert "erledigt" in await page.inner_text("#step [role=status]")
    assert await page.locator("#step button[name=option][value=yes]").count() == 1  # can the therapist sign in?
    await axe(page)
    row = await _session_row(page)
    assert row.step == "therapist-login"
    assert row.account_id == admin.id

    await page.goto(server.at(f"/accounts/{therapist.id}"))
    assert await page.locator(".status-deactivated").count() == 0
    assert await page.locator(f"form[action='/accounts/{therapist.id}/deactivate'] button").count() == 1
    assert await page.locator(f"form[action='/accounts/{therapist.id}/reactivate'] button").count() == 0

    # The transcript names the steps and answers in German, not by their ids.
    await page.goto(server.at(f"/help/sessions/{row.public_id}/transcript"))
    transcript = await page.inner_text("main")
    assert "Das Konto wieder aktivieren: erledigt" in transcript
    assert "Hat Greta Vogel ein Konto, und in welchem Zustand ist es?" in transcript
    assert "aus Plattformdaten beantwortet: Ja, aber es ist deaktiviert" in transcript
    assert "therapist-account" not in transcript
    assert "account.reactivate" not in transcript
    await axe(page)


async def test_dutch_therapist_resolves_a_taken_address_with_a_link_request(server: Server, new_page) -> None:
    svc = server.svc
    organisation = await make_org(svc, default_language="nl", search_outside_caseload=True,
                                  link_policy=LinkPolicy.CLIENT_CONSENT)
    therapist = await make_account(svc, organisation, Role.THERAPIST, locale="nl", first_name="Daan",
                                   last_name="Smit")
    colleague = await make_account(svc, organisation, Role.THERAPIST, locale="nl")
    client = await make_client(svc, organisation, locale="nl", first_name="Mila", last_name="Visser",
                               email="mila.visser@example.org")
    await link(svc, client, colleague)
    page = await signed_in_page(server, new_page, therapist, "nl")

    await page.goto(server.at("/clients/new"))
    await page.select_option("#gender", "female")
    await page.fill("#first_name", "Mila")
    await page.fill("#last_name", "Visser")
    await page.fill("#email", client.email)
    await page.fill("#date_of_birth", "1990-05-17")
    await _click(page, "form.client-form button[type=submit]")
    assert await page.locator("[role=alert]").count() == 1
    assert await Account.filter(last_name="Visser", organisation=organisation).count() == 1

    async with page.expect_navigation():
        await page.click(".help-context a")
    assert "/help/start/duplicate-email" in page.url
    assert await page.input_value("#in_email") == client.email
    await axe(page)
    await _click(page, "form.help-start button[type=submit]")

    # Conversation view: first a search of the own caseload, confirmed.
    assert await page.locator(".help-conversation, .help-checklist").count() == 0
    assert "/help/sessions/" in page.url
    assert "Ja, uitvoeren" in await page.inner_text("#step")
    await axe(page)
    await _click(page, "#step button[name=input][value=confirm]")

    # Not in the own caseload: a reason for the search outside it, checked in Dutch first.
    assert await page.locator(".help-conversation").count() == 1
    await page.fill("#f_motivation", "kort")
    await _click(page, "#step button[type=submit]")
    assert await page.locator("#step [role=alert]").count() == 1
    assert await page.get_attribute("#f_motivation", "aria-invalid") == "true"
    assert "f_motivation-error" in (await page.get_attribute("#f_motivation", "aria-describedby") or "")
    await axe(page)
    await page.fill("#f_motivation", "Nieuwe aanmelding, eerste afspraak volgende week.")
    await _click(page, "#step button[type=submit]")

    await axe(page)
    await _click(page, "#step button[name=input][value=confirm]")   # search outside the caseload
    assert "Mila Visser" in await page.inner_text("#step")
    await axe(page)
    await _click(page, "#step button[name=input][value=confirm]")   # send the link request
    assert "Het verzoek is onderweg" in await page.inner_text("#step")
    assert "opgelost" in await page.inner_text("#step")
    await axe(page)

    request = await LinkRequest.get(client_id=client.id, professional_id=therapist.id)
    assert request.status is LinkRequestStatus.PENDING
    assert await Task.filter(assignee_id=client.id, kind=TaskKind.LINK_REQUEST).exists()
    assert await OutboxMessage.filter(recipient=client.email, kind="link_request").exists()

    # The request really reaches the client: it is on their page, and accepting it links the therapist.
    client_page = await signed_in_page(server, new_page, client, "nl")
    await client_page.goto(server.at("/me/requests"))
    assert "Daan Smit" in await client_page.inner_text("main")
    await _click(client_page, f"form[action='/me/requests/{request.id}'] button[type=submit]:not(.secondary)")
    assert await CaseloadLink.filter(client_id=client.id, professional_id=therapist.id).exists()


async def test_signed_out_person_gets_a_reset_mail_by_keyboard_only(server: Server, new_page) -> None:
    svc = server.svc
    organisation = await make_org(svc, default_language="de")
    account = await make_account(svc, organisation, Role.THERAPIST, locale="de", email="hanna.berg@example.org")
    page = await new_page("de")

    await page.goto(server.at("/sign-in"))
    await _press_enter_on(page, "a[href='/help/start/login-help']")
    assert await page.get_attribute("html", "lang") == "de"
    await axe(page)
    await _tab_to(page, "#in_email")
    await page.keyboard.type(account.email)
    await _press_enter_on(page, "form.help-start button[type=submit]")

    assert "/help/sessions/" in page.url
    await axe(page)
    await _press_enter_on(page, "#step button[name=option][value=forgot-password]")
    await axe(page)
    await _press_enter_on(page, "#step button[type=submit]")              # continue after the explanation
    assert account.email in await page.inner_text("#step")
    await axe(page)
    # Back by keyboard, both ways: the step's own "Back" and a step of the path so far.
    await _press_enter_on(page, ".help-back button[type=submit]")
    assert await page.locator("#step button[name=input][value=confirm]").count() == 0
    await _press_enter_on(page, "#step button[type=submit]")
    await _press_enter_on(page, ".help-past button[name=visit]")
    assert await page.locator("#step button[name=option][value=forgot-password]").count() == 1
    await _press_enter_on(page, "#step button[name=option][value=forgot-password]")
    await _press_enter_on(page, "#step button[type=submit]")
    await _press_enter_on(page, "#step button[name=input][value=confirm]")
    await axe(page)

    outbox = await OutboxMessage.get(recipient=account.email, kind="password_reset")
    assert outbox.account_id == account.id
    assert outbox.language == "de"
    report = await deliver_due(svc)
    assert outbox.id in {d.id for d in report.deliveries}
    box = mailbox.Maildir(str(svc.settings.mail_dir), create=False)
    delivered = [m for m in box if account.email in str(m["To"])]
    box.close()
    assert len(delivered) == 1
    body = delivered[0].get_payload(decode=True) if not delivered[0].is_multipart() else \
        delivered[0].get_payload(0).get_payload(decode=True)
    assert f"{server.url}/password/reset/" in body.decode()

    # Going on by keyboard: the sign-in works again, and the session ends resolved.
    await _press_enter_on(page, "#step button[type=submit]")
    await _press_enter_on(page, "#step button[name=option][value=yes]")
    row = await _session_row(page)
    assert row.outcome == "resolved"
    await axe(page)
