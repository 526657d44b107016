"""A video call in Chromium: three people (German, Dutch, German) with fake cameras and microphones.

Started from the conversation page; each page decodes the others' video
(``getStats``), a microphone toggle shows in the others' participant lists,
a canvas capture stream stands in for screen sharing (``getDisplayMedia``
needs a picker), axe-core finds nothing serious, and the controls are
reachable by keyboard.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from lotse.platform.accounts.models import Role
from lotse.platform.calls.models import Call
from lotse.platform.conversations.actions import do_start_conversation
from lotse.platform.permissions import Actor
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, LOCALES, Server, axe, signed_in_page
from tests.factories import link, make_account, make_client, make_org

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CALL_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

# getDisplayMedia needs a picker: a moving canvas stands in for the screen.
FAKE_SCREEN = """
navigator.mediaDevices.getDisplayMedia = async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 320; canvas.height = 240;
  const ctx = canvas.getContext("2d");
  let n = 0;
  setInterval(() => { ctx.fillStyle = `hsl(${n++ % 360},80%,50%)`; ctx.fillRect(0, 0, 320, 240); }, 50);
  return canvas.captureStream(15);
};
"""

DECODED = """async () => {
  const stats = await window.lotseCall.pc.getStats();
  const counts = [];
  stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0) counts.push(s.framesDecoded); });
  return counts.length;
}"""

MIC_OFF = {"de": "Mikrofon aus", "nl": "microfoon uit"}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def call_browser(server: Server) -> AsyncIterator[Any]:
    """Chromium with a fake camera and microphone (the harness's flags plus the call flags)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                    args=CHROMIUM_ARGS + CALL_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def call_page(call_browser: Any) -> AsyncIterator[Any]:
    contexts: list[Any] = []

    async def make(language: str) -> Any:
        context = await call_browser.new_context(locale=LOCALES[language], bypass_csp=True)
        context.set_default_timeout(15_000)
        await context.add_init_script(FAKE_SCREEN)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            await context.close()


async def test_three_people_in_a_call_started_from_a_conversation(server: Server, call_page) -> None:
    svc = server.svc
    org = await make_org(svc, default_language="de")
    manager = await make_account(svc, org, Role.THERAPIST, locale="de")
    colleague = await make_account(svc, org, Role.THERAPIST, locale="de")
    client = await make_client(svc, org, locale="nl")
    await link(svc, client, manager)
    await link(svc, client, colleague)
    conversation = await do_start_conversation(svc, Actor.of(manager), subject="Sitzung",
                                               participants=[client, colleague], first_message="Hallo")
    people = [(manager, "de"), (client, "nl"), (colleague, "de")]
    pages = [await signed_in_page(server, call_page, person, language) for person, language in people]

    # Everybody opens the conversation; the manager starts the call, the others see "join call" live.
    for page in pages:
        await page.goto(server.at(f"/conversations/{conversation.id}"))
    assert await pages[1].locator("#call-join").is_hidden()
    async with pages[0].expect_popup() as popup:
        await pages[0].click("#call-start button")
    check = await popup.value
    await check.wait_for_selector("#check-camera.ok")
    call = await Call.get(conversation_id=conversation.id)
    for page in pages[1:]:
        await page.wait_for_selector("#call-join:not([hidden])")
    calls = [check]
    await check.click("#precall-join")
    for page in pages[1:]:
        calls.append(page)
        await page.goto(server.at(f"/calls/{call.id}"))
    await check.wait_for_url(f"**/calls/{call.id}")

    # Each decodes the other two's video.
    for page in calls:
        await page.wait_for_function(f"({DECODED})().then((n) => n >= 2)", polling=200, timeout=30_000)

    # A microphone toggle shows in the others' lists, in their language.
    await calls[1].click("#toggle-mic")
    assert await calls[1].get_attribute("#toggle-mic", "aria-pressed") == "true"
    for page, (_person, language) in ((calls[0], people[0]), (calls[2], people[2])):
        await page.wait_for_selector(
            f"#people li[data-participant='{client.id}'] .mic-state:text-is('{MIC_OFF[language]}')")

    # Screen sharing (a canvas here) shows large for the others.
    await calls[2].click("#toggle-screen")
    for page in calls[:2]:
        await page.wait_for_selector("#screen-share:not([hidden])")
        await page.wait_for_function(
            "() => document.getElementById('screen-video').srcObject !== null", polling=200)

    # Accessibility and keyboard: no serious problem, every control reachable with Tab.
    await axe(calls[1])
    reached: set[str] = set()
    for _ in range(40):
        await calls[1].keyboard.press("Tab")
        reached.add(await calls[1].evaluate("document.activeElement && document.activeElement.id"))
    assert {"toggle-mic", "toggle-camera", "toggle-screen", "toggle-fullscreen", "leave"} <= reached

    # Leaving frees the slot: the others see two people.
    await calls[2].click("#leave")
    for page in calls[:2]:
        await page.wait_for_function(
            f"() => !document.querySelector(\"#people li[data-participant='{colleague.id}']\")", polling=200)
