"""Pages, uploads within the limits, downloads, and the WebSocket (state plus events equals state)."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
from werkzeug.datastructures import FileStorage

from lotse.platform.conversations import actions
from lotse.platform.conversations.events import apply_event
from lotse.platform.conversations.models import ChatAttachment, ChatMessage
from lotse.platform.conversations.uploads import safe_filename, sniff
from lotse.platform.files import file_store
from lotse.platform.permissions import Actor
from lotse.platform.web import CSRF_COOKIE
from tests.platform.conversations.conftest import CSRF_VALUE, ORIGIN, csrf_token

MB = 1024 * 1024


def _file(size: int, name: str = "scan.pdf", head: bytes = b"%PDF-1.4\n") -> FileStorage:
    data = head + b"x" * (size - len(head))
    return FileStorage(io.BytesIO(data), filename=name, content_type="text/html")


def _multipart(token: str, body: str, sizes: list[int]) -> tuple[bytes, str]:
    """Encode a message form as a browser does (the test client's encoder is quadratic in the parts)."""
    boundary = "----lotse-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'.encode(),
             f'--{boundary}\r\nContent-Disposition: form-data; name="body"\r\n\r\n{body}\r\n'.encode()]
    for n, size in enumerate(sizes):
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="scan{n}.pdf"\r\n'
                     f"Content-Type: application/pdf\r\n\r\n".encode())
        parts.append(b"%PDF-1.4\n" + b"x" * (size - 9) + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


async def _conversation(svc, people):
    return await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Intake",
                                               participants=[people.client])


async def test_list_and_page_in_dutch(svc, people, sign_in_as):
    conversation = await _conversation(svc, people)
    await actions.do_post_message(svc, Actor.of(people.client), conversation, "Goedemorgen")
    browser = await sign_in_as(people.therapist)
    listing = await (await browser.get("/conversations")).get_data(as_text=True)
    assert "Intake" in listing
    assert "1 ongelezen" in listing
    assert people.client.name in listing
    page = await browser.get(f"/conversations/{conversation.id}")
    html = await page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Goedemorgen" in html
    assert 'enctype="multipart/form-data"' in html
    listing = await (await browser.get("/conversations")).get_data(as_text=True)
    assert "ongelezen" not in listing  # opening the page marked it read


async def test_outsider_gets_no_page(svc, people, sign_in_as):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.colleague)
    assert (await browser.get(f"/conversations/{conversation.id}")).status_code == 403


async def test_post_without_javascript(svc, people, sign_in_as, post_form):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.client)
    response = await post_form(browser, f"/conversations/{conversation.id}/messages", body="Hallo")
    assert response.status_code == 302
    message = await ChatMessage.get(conversation=conversation)
    assert response.headers["Location"].endswith(f"/conversations/{conversation.id}#m-{message.id}")


@pytest.mark.parametrize(("sizes", "ok"), [
    ([10 * MB], True),
    ([10 * MB + 1], False),
    ([10 * MB] * 4, True),
    ([10 * MB] * 4 + [1], False),
])
async def test_attachment_limits(svc, people, settings, sign_in_as, sizes, ok):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.client, "de")
    browser.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
    data, content_type = _multipart(csrf_token(settings.secret_key), "Scans", sizes)
    response = await browser.post(f"/conversations/{conversation.id}/messages", data=data,
                                  headers={"Content-Type": content_type})
    store = file_store(svc)
    if ok:
        assert response.status_code == 302
        stored = await ChatAttachment.all()
        assert sorted(a.size for a in stored) == sorted(sizes)
        assert len(store.keys()) == len(sizes)
    else:
        assert response.status_code == 413
        html = await response.get_data(as_text=True)
        assert "MB" in html
        assert ("Anhang" in html or "Anhänge" in html)
        assert store.keys() == []  # nothing half-written, nothing orphaned
        assert not await ChatMessage.exists()


async def test_content_length_beyond_the_limit_is_refused_before_reading(svc, people, sign_in_as, post_form):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.client)
    response = await browser.post(f"/conversations/{conversation.id}/messages", data=b"x" * 10,
                                  headers={"Content-Length": str(41 * MB), "Content-Type": "multipart/form-data; boundary=b",
                                           "Accept": "application/json"})
    assert response.status_code == 413
    assert (await response.get_json())["code"] == "message_too_large"


async def test_download_headers_and_sniffed_type(svc, people, sign_in_as, post_form):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.therapist)
    evil = FileStorage(io.BytesIO(b"<svg onload=alert(1)></svg>"), filename="../../etc/x<y>.svg", content_type="image/svg+xml")
    await post_form(browser, f"/conversations/{conversation.id}/messages", files={"files": evil}, body="")
    attachment = await ChatAttachment.get()
    assert attachment.filename == "x_y_.svg"
    assert attachment.content_type == "application/octet-stream"
    response = await browser.get(f"/conversations/attachments/{attachment.id}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert await response.get_data() == b"<svg onload=alert(1)></svg>"
    outsider = await sign_in_as(people.colleague)
    assert (await outsider.get(f"/conversations/attachments/{attachment.id}")).status_code in (403, 404)


async def _next(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.receive(), 5))


def test_sniffing_and_names():
    assert sniff(b"%PDF-1.7 ...") == "application/pdf"
    assert sniff(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert sniff(b"<!DOCTYPE html><html>") == "application/octet-stream"
    assert sniff(b"  <svg xmlns='...'>") == "application/octet-stream"
    assert sniff("Grüße".encode()) == "text/plain"
    assert sniff(b"\x00\x01\x02") == "application/octet-stream"
    assert safe_filename("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert safe_filename("..\x00..") == "_"
    assert safe_filename("") == "attachment"


async def test_leak_removal_page_needs_the_tick(svc, people, sign_in_as, post_form):
    conversation = await _conversation(svc, people)
    message = await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Wrong client data")
    browser = await sign_in_as(people.therapist)
    path = f"/conversations/{conversation.id}/messages/{message.id}/remove"
    assert (await browser.get(path)).status_code == 200
    client_browser = await sign_in_as(people.client)
    assert (await client_browser.get(path)).status_code == 403
    assert (await post_form(client_browser, path, confirm="yes")).status_code == 403
    refused = await post_form(browser, path)
    assert refused.status_code == 422
    assert 'role="alert"' in await refused.get_data(as_text=True)
    done = await post_form(browser, path, confirm="yes")
    assert done.status_code == 302
    page = await (await browser.get(f"/conversations/{conversation.id}")).get_data(as_text=True)
    assert "Wrong client data" not in page
    assert (await browser.get(path)).status_code == 404  # removed: nothing left to remove


async def test_websocket_refuses_foreign_origins_and_strangers(svc, people, app, sign_in_as):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.client)
    from quart.testing.connections import WebsocketResponseError

    with pytest.raises(WebsocketResponseError) as refused:
        async with browser.websocket(f"/conversations/ws?conversation={conversation.id}",
                                     headers={"Origin": "https://evil.example"}) as ws:
            await ws.receive()
    assert refused.value.response.status_code == 403
    stranger = await sign_in_as(people.colleague)
    with pytest.raises(WebsocketResponseError) as hidden:
        async with stranger.websocket(f"/conversations/ws?conversation={conversation.id}",
                                      headers={"Origin": ORIGIN}) as ws:
            await ws.receive()
    assert hidden.value.response.status_code == 404
    anonymous = app.test_client()
    with pytest.raises(WebsocketResponseError) as nobody:
        async with anonymous.websocket("/conversations/ws", headers={"Origin": ORIGIN}) as ws:
            await ws.receive()
    assert nobody.value.response.status_code == 401


async def test_state_plus_events_equals_state(svc, people, sign_in_as):
    """A client applying the events it receives ends where a fresh fetch is, for a scripted sequence."""
    therapist, client, colleague = people.therapist, people.client, people.secretary
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(client)
    async with browser.websocket(f"/conversations/ws?conversation={conversation.id}",
                                 headers={"Origin": ORIGIN}) as ws:
        hello = await _next(ws)
        state = hello["state"]
        t = Actor.of(therapist)
        first = await actions.do_post_message(svc, t, conversation, "One")
        second = await actions.do_post_message(svc, Actor.of(client), conversation, "Two")
        await actions.do_edit_message(svc, t, first, "One, edited")
        await actions.do_change_subject(svc, t, conversation, "Intake and plan")
        await actions.do_remove_data_leak(svc, t, second, confirmed=True)
        third = await actions.do_post_message(svc, t, conversation, "Three")
        await actions.do_mark_read(svc, Actor.of(client), conversation, third.id)
        successor = people.therapist  # hand-over to a linked colleague
        from tests.factories import link, make_account

        other = await make_account(svc, people.org)
        await link(svc, client, other)
        await actions.do_hand_over(svc, Actor.of(successor), conversation, other)
        await actions.do_leave_conversation(svc, t, conversation)
        await actions.do_post_message(svc, Actor.of(other), conversation, "Four")
        # posted, posted, edited, subject, removed, posted, read, joined+manager, left, posted
        expected_events = 1 + 1 + 1 + 1 + 1 + 1 + 1 + 2 + 1 + 1
        received = [await _next(ws) for _ in range(expected_events)]
        for payload in received:
            state = apply_event(state, payload)
    fresh = await (await browser.get(f"/api/v1/conversations/{conversation.id}")).get_json()
    assert state == fresh
    assert [m["body"] for m in fresh["messages"].values()] == ["One, edited", "", "Three", "Four"]
    assert colleague.id not in [int(k) for k in fresh["participants"]]


async def test_a_participant_removed_hears_nothing_more(svc, people, sign_in_as):
    conversation = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Team",
                                                       participants=[people.colleague, people.secretary])
    browser = await sign_in_as(people.secretary)
    async with browser.websocket("/conversations/ws", headers={"Origin": ORIGIN}) as ws:
        hello = await _next(ws)
        assert hello["conversations"] == [conversation.id]
        await actions.do_remove_participant(svc, Actor.of(people.therapist), conversation, people.secretary)
        left = await _next(ws)
        assert (left["event"], left["account_id"]) == ("participant.left", people.secretary.id)
        await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Not for you")
        later = await actions.do_start_conversation(svc, Actor.of(people.colleague), subject="New",
                                                    participants=[people.secretary])
        events = [await _next(ws) for _ in range(1)]
        assert events[0] == {"event": "account.conversation_added", "account_id": people.secretary.id,
                             "conversation_id": later.id}
        await actions.do_post_message(svc, Actor.of(people.colleague), later, "For you")
        seen = [await _next(ws) for _ in range(1)]
        assert "Not for you" not in json.dumps(seen)
        assert any(e.get("body") == "For you" for e in seen)
