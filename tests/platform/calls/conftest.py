"""Fixtures for the call tests: an organisation, a conversation of four, events on the bus."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services
from lotse.platform.conversations.actions import do_start_conversation
from lotse.platform.conversations.models import Conversation
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor
from lotse.platform.web import CSRF_COOKIE
from tests.factories import link, make_account, make_client, make_org

CSRF_VALUE = "call-tests-csrf-cookie"


@dataclass
class Party:
    org: Organisation
    manager: Account        # therapist who started the conversation
    colleague: Account      # therapist, in the conversation
    client: Account         # in the conversation
    outsider: Account       # therapist of the organisation, not in the conversation
    conversation: Conversation

    @property
    def members(self) -> list[Account]:
        return [self.manager, self.colleague, self.client]


async def make_party(svc: Services, **org_fields: Any) -> Party:
    org = await make_org(svc, **org_fields)
    manager = await make_account(svc, org, Role.THERAPIST, locale="de")
    colleague = await make_account(svc, org, Role.THERAPIST, locale="nl")
    client = await make_client(svc, org, locale="de")
    outsider = await make_account(svc, org, Role.THERAPIST)
    await link(svc, client, manager)
    await link(svc, client, colleague)
    conversation = await do_start_conversation(
        svc, Actor.of(manager), subject="Weekly session", participants=[colleague, client], first_message="Hello")
    return Party(org, manager, colleague, client, outsider, conversation)


@pytest.fixture
async def party(svc: Services) -> Party:
    return await make_party(svc)


@pytest.fixture
async def heard(svc: Services) -> AsyncIterator[list[dict[str, Any]]]:
    """Every event published on the bus while the test runs (payloads)."""
    seen: list[dict[str, Any]] = []
    ready = asyncio.Event()

    async def listen() -> None:
        async with svc.bus.subscribe("*") as events:
            ready.set()
            async for _topic, payload in events:
                seen.append(payload)

    task = asyncio.create_task(listen())
    await ready.wait()
    yield seen
    task.cancel()


def csrf_token(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), CSRF_VALUE.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def post_form(settings: Any) -> Any:
    """``await post_form(client, path, **fields)``: a form POST with a valid CSRF token."""

    async def post(client: Any, path: str, **fields: str) -> Any:
        client.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
        return await client.post(path, form={"csrf_token": csrf_token(settings.secret_key), **fields})

    return post
