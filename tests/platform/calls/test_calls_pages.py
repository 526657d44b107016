"""Call pages and the JSON API over HTTP: the button on the conversation page, start, check, call, refusals."""

from __future__ import annotations

import pytest

from lotse.platform.calls import actions
from lotse.platform.calls.models import Call
from lotse.platform.permissions import Actor
from tests.platform.calls.conftest import Party, make_party

pytestmark = pytest.mark.asyncio


async def test_the_conversation_page_offers_a_call_where_video_is_on(svc, party: Party, sign_in_as) -> None:
    browser = await sign_in_as(party.client)
    page = await (await browser.get(f"/conversations/{party.conversation.id}")).get_data(as_text=True)
    assert 'id="call-start"' in page
    assert "call.js" in page

    off = await make_party(svc, video_calls=False)
    browser = await sign_in_as(off.client)
    page = await (await browser.get(f"/conversations/{off.conversation.id}")).get_data(as_text=True)
    assert 'id="call-banner"' not in page
    assert "call-start" not in page


async def test_starting_from_the_page_leads_to_the_check_and_the_call(svc, party: Party, sign_in_as, post_form) -> None:
    browser = await sign_in_as(party.manager)
    response = await post_form(browser, f"/conversations/{party.conversation.id}/call")
    call = await Call.get(conversation_id=party.conversation.id)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/calls/{call.id}/check"
    check = await browser.get(f"/calls/{call.id}/check")
    assert check.status_code == 200
    text = await check.get_data(as_text=True)
    assert 'id="precall"' in text
    page = await browser.get(f"/calls/{call.id}")
    text = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'data-cap="{call.cap}"' in text
    assert 'id="invite"' in text  # the manager's part

    # Others now see "join call".
    other = await sign_in_as(party.colleague)
    text = await (await other.get(f"/conversations/{party.conversation.id}")).get_data(as_text=True)
    assert f"/calls/{call.id}/check" in text
    text = await (await other.get(f"/calls/{call.id}")).get_data(as_text=True)
    assert 'id="invite"' not in text


async def test_outsiders_get_no_call_page(svc, party: Party, sign_in_as) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    browser = await sign_in_as(party.outsider)
    assert (await browser.get(f"/calls/{call.id}")).status_code == 403
    assert (await browser.get(f"/calls/{call.id}/check")).status_code == 403


async def test_the_api_refuses_where_video_is_off(svc, sign_in_as) -> None:
    party = await make_party(svc, video_calls=False)
    browser = await sign_in_as(party.manager)
    response = await browser.post(f"/api/v1/conversations/{party.conversation.id}/call", json={})
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "video_calls_off"


async def test_the_api_starts_and_ends_a_call(svc, party: Party, sign_in_as) -> None:
    browser = await sign_in_as(party.manager)
    response = await browser.post(f"/api/v1/conversations/{party.conversation.id}/call", json={})
    assert response.status_code == 201
    body = await response.get_json()
    assert body["signalling"].endswith(f"/calls/{body['id']}/ws")
    assert body["cap"] == 12
    ended = await browser.post(f"/api/v1/calls/{body['id']}/end", json={})
    assert (await ended.get_json())["ended_at"] is not None


async def test_the_manager_invites_and_ends_from_the_call_page(svc, party: Party, sign_in_as, post_form) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    browser = await sign_in_as(party.manager)
    response = await post_form(browser, f"/calls/{call.id}/end")
    assert response.headers["Location"] == f"/conversations/{party.conversation.id}"
    await call.refresh_from_db()
    assert not call.running


async def test_the_unsupported_browser_page_speaks_the_language(client) -> None:
    response = await client.get("/calls/unsupported", headers={"Accept-Language": "nl"})
    text = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "videogesprek" in text.lower()
