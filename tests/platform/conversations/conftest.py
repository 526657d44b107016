"""Fixtures for the conversation tests: a small organisation, form posts with CSRF."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import pytest

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services
from lotse.platform.caseload.models import LinkKind
from lotse.platform.organisations.models import Organisation
from lotse.platform.web import CSRF_COOKIE
from tests.factories import link, make_account, make_client, make_org

CSRF_VALUE = "conversation-tests-csrf-cookie"
ORIGIN = "http://lotse.test"


def csrf_token(secret_key: str) -> str:
    return hmac.new(secret_key.encode(), CSRF_VALUE.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def post_form(settings: Any) -> Any:
    """``await post_form(client, path, **fields)``: a form POST with a valid CSRF token."""

    async def post(client: Any, path: str, files: Any = None, headers: Any = None, **fields: str) -> Any:
        client.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
        return await client.post(path, form={"csrf_token": csrf_token(settings.secret_key), **fields},
                                 files=files, headers=headers)

    return post


@dataclass
class People:
    org: Organisation
    therapist: Account
    colleague: Account      # another therapist, not linked
    supervisor: Account     # linked to the client read-only
    secretary: Account
    admin: Account
    client: Account
    other_client: Account   # linked to the colleague only


@pytest.fixture
async def people(svc: Services) -> People:
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST, locale="nl")
    colleague = await make_account(svc, org, Role.THERAPIST, locale="de")
    supervisor = await make_account(svc, org, Role.SUPERVISOR)
    secretary = await make_account(svc, org, Role.SECRETARY)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    client = await make_client(svc, org, locale="de")
    other_client = await make_client(svc, org)
    await link(svc, client, therapist)
    await link(svc, client, supervisor, LinkKind.SUPERVISING)
    await link(svc, other_client, colleague)
    return People(org, therapist, colleague, supervisor, secretary, admin, client, other_client)
