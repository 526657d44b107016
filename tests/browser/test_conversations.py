"""A therapist and a client chat live in two browsers, in Dutch and in German; the therapist
removes a message as a data leak and the client's page shows the removal without a reload."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.conversations.actions import do_start_conversation
from lotse.platform.conversations.models import ChatMessage, DataLeakDeletion
from lotse.platform.permissions import Actor
from tests.browser.conftest import Server, axe, signed_in_page
from tests.factories import link, make_account, make_client, make_org

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

REMOVED = {"nl": "Er is een bericht verwijderd.", "de": "Eine Nachricht wurde entfernt."}
SEND = {"nl": "Versturen", "de": "Senden"}


@pytest.mark.parametrize("language", ["nl", "de"])
async def test_live_chat_and_data_leak_removal(server: Server, new_page, language: str) -> None:
    svc = server.svc
    organisation = await make_org(svc, default_language=language)
    therapist = await make_account(svc, organisation, Role.THERAPIST, locale=language)
    client = await make_client(svc, organisation, locale=language)
    await link(svc, client, therapist)
    conversation = await do_start_conversation(svc, Actor.of(therapist), subject="Intake",
                                               participants=[client], first_message="Welkom / Willkommen")
    path = f"/conversations/{conversation.id}"

    therapist_page = await signed_in_page(server, new_page, therapist, language)
    client_page = await signed_in_page(server, new_page, client, language)
    for page in (therapist_page, client_page):
        await page.goto(server.at(path))
        await page.wait_for_selector("#conversation[data-live-ready='1']")
        assert await page.get_attribute("html", "lang") == language
    await axe(client_page)
    await client_page.evaluate("window.__notReloaded = true")
    await therapist_page.evaluate("window.__notReloaded = true")

    # The client writes; the therapist's page shows it live.
    await client_page.fill("#body", "Mijn BSN is 123456782 / Meine Versicherungsnummer")
    await client_page.get_by_role("button", name=SEND[language]).click()
    await therapist_page.wait_for_selector("#messages li:has-text('123456782')")
    # The therapist answers; the client's page shows it live.
    await therapist_page.fill("#body", "Dank u / Danke")
    await therapist_page.get_by_role("button", name=SEND[language]).click()
    await client_page.wait_for_selector("#messages li:has-text('Dank u / Danke')")
    assert await client_page.evaluate("window.__notReloaded === true")
    assert await therapist_page.evaluate("window.__notReloaded === true")
    await axe(therapist_page)

    # The therapist removes the client's message as a data leak (a page of its own, confirmed).
    leak = await ChatMessage.get(conversation_id=conversation.id, body__contains="123456782")
    await therapist_page.click(f"#m-{leak.id} a.remove")
    await axe(therapist_page)
    await therapist_page.check("#confirm")
    async with therapist_page.expect_navigation():
        await therapist_page.click("form.leak-form button[type=submit]")
    assert await DataLeakDeletion.filter(message_id=leak.id).exists()

    # The client's page shows the removal without a reload.
    await client_page.wait_for_selector(f"#m-{leak.id}.removed")
    assert REMOVED[language] in await client_page.inner_text(f"#m-{leak.id}")
    assert "123456782" not in await client_page.inner_text("#messages")
    assert await client_page.evaluate("window.__notReloaded === true")
    await axe(client_page)
