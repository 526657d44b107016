"""Reads of a conversation are audited however they load it; live sockets end with their session."""

from __future__ import annotations

import asyncio
import json

import pytest
from quart.testing.connections import WebsocketDisconnectError

from lotse.platform.accounts import actions as account_actions
from lotse.platform.accounts.models import Account, Role, WebSession
from lotse.platform.accounts.sessions import start_session
from lotse.platform.audit.models import AuditEvent, AuditType
from lotse.platform.auth import actions as auth_actions
from lotse.platform.auth.errors import SignInFailedError
from lotse.platform.conversations import actions
from lotse.platform.conversations.live_sessions import session_guard
from lotse.platform.permissions import Actor
from lotse.platform.web import SESSION_COOKIE
from tests.factories import make_account
from tests.platform.conversations.conftest import ORIGIN


async def _conversation(svc, people):
    return await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Intake",
                                               participants=[people.client])


async def _reads(account):
    return await AuditEvent.filter(action="conversation.read", event_type=AuditType.READ, actor_id=account.id).count()


async def test_state_fetch_is_audited_as_a_read(svc, people, sign_in_as):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.client)
    before = await _reads(people.client)
    response = await browser.get(f"/conversations/{conversation.id}/state")
    assert response.status_code == 200
    assert await _reads(people.client) == before + 1
    row = await AuditEvent.filter(action="conversation.read", actor_id=people.client.id).order_by("-id").first()
    assert row.details["conversation_id"] == conversation.id
    assert row.subject_id == people.client.id


async def test_websocket_first_state_is_audited_once_not_every_event(svc, people, sign_in_as):
    conversation = await _conversation(svc, people)
    browser = await sign_in_as(people.client)
    before = await _reads(people.client)
    async with browser.websocket(f"/conversations/ws?conversation={conversation.id}",
                                 headers={"Origin": ORIGIN}) as ws:
        hello = await _next(ws)
        assert hello["event"] == "hello"
        assert await _reads(people.client) == before + 1
        await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Live")
        assert (await _next(ws))["event"] == "message.posted"
    assert await _reads(people.client) == before + 1


async def _socket(app, svc, account, path):
    key = await start_session(account, svc.now(), pending_two_factor=False)
    client = app.test_client()
    client.set_cookie("localhost", SESSION_COOKIE, key)
    return key, client.websocket(path, headers={"Origin": ORIGIN})


async def _ends(ws) -> dict:
    """The last thing a socket says before it closes because its session ended."""
    ended = await _next(ws)
    with pytest.raises(WebsocketDisconnectError) as closed:
        await asyncio.wait_for(ws.receive(), 5)
    assert closed.value.args == (4401,)  # the page does not reconnect
    return ended


async def test_signing_out_closes_that_sessions_sockets_only(app, svc, people):
    conversation = await _conversation(svc, people)
    key, first = await _socket(app, svc, people.client, f"/conversations/ws?conversation={conversation.id}")
    _, second = await _socket(app, svc, people.client, "/conversations/ws")
    async with first as ws, second as other:
        await _next(ws)
        await _next(other)
        await auth_actions.do_sign_out(svc, Actor.of(people.client), key)
        assert await _ends(ws) == {"event": "session.ended"}
        # The other browser's session is still signed in: it keeps hearing the conversation.
        await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Still here")
        assert (await _next(other))["body"] == "Still here"


async def test_deactivation_closes_the_accounts_sockets(app, svc, people):
    conversation = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Team",
                                                       participants=[people.secretary])
    _, socket = await _socket(app, svc, people.secretary, f"/conversations/ws?conversation={conversation.id}")
    async with socket as ws:
        await _next(ws)
        await account_actions.do_deactivate_account(svc, Actor.of(people.admin), people.secretary)
        assert await _ends(ws) == {"event": "session.ended"}


async def test_blocking_closes_the_accounts_sockets(app, svc, people):
    account = await make_account(svc, people.org, Role.SECRETARY, failed_logins=4)
    conversation = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Team",
                                                       participants=[account])
    _, socket = await _socket(app, svc, account, f"/conversations/ws?conversation={conversation.id}")
    async with socket as ws:
        await _next(ws)
        with pytest.raises(SignInFailedError):
            await auth_actions.do_sign_in(svc, Actor.anonymous("127.0.0.1"), account.email, "wrong password")
        assert (await Account.get(id=account.id)).blocked_at is not None
        assert await _ends(ws) == {"event": "session.ended"}


async def test_the_periodic_check_closes_sockets_whose_session_is_gone_without_an_event(app, svc, people):
    conversation = await _conversation(svc, people)
    _, socket = await _socket(app, svc, people.client, f"/conversations/ws?conversation={conversation.id}")
    async with socket as ws:
        await _next(ws)
        await session_guard(svc).check()  # what the timer does every minute
        await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Still live")
        assert (await _next(ws))["body"] == "Still live"
        await WebSession.filter(account_id=people.client.id).delete()  # no event says so
        await session_guard(svc).check()
        assert await _ends(ws) == {"event": "session.ended"}


async def _next(ws) -> dict:
    return json.loads(await asyncio.wait_for(ws.receive(), 5))
