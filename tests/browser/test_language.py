"""Switching the language on the sign-in page, starting from German and from Dutch."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Server, axe

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

LANGUAGE_LABEL = {"de": "Sprache", "nl": "Taal"}
SKIP_LINK = {"de": "Zum Inhalt springen", "nl": "Naar de inhoud"}


@pytest.mark.parametrize(("start", "target"), [("de", "nl"), ("nl", "de")])
async def test_switch_language_on_the_sign_in_page(server: Server, new_page, start: str, target: str) -> None:
    page = await new_page(start)
    await page.goto(server.at("/"))
    sign_in_path = page.url.removeprefix(server.url)
    assert await page.get_attribute("html", "lang") == start
    assert await page.inner_text("label[for=language-switch]") == LANGUAGE_LABEL[start]
    heading = await page.inner_text("h1")
    await axe(page)

    await page.select_option("#language-switch", target)
    async with page.expect_navigation():
        await page.click("form.language button[type=submit]")

    assert page.url.removeprefix(server.url) == sign_in_path
    assert await page.get_attribute("html", "lang") == target
    assert await page.inner_text("label[for=language-switch]") == LANGUAGE_LABEL[target]
    assert await page.text_content("a.skip") == SKIP_LINK[target]
    assert await page.inner_text("h1") != heading
    assert await page.input_value("#language-switch") == target
    await axe(page)

    # The choice outlives the page: a fresh visit comes back in the chosen language.
    await page.goto(server.at("/"))
    assert await page.get_attribute("html", "lang") == target
