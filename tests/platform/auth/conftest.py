"""Fixtures for the sign-in tests: CSRF-primed form posts."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from lotse.platform.web import CSRF_COOKIE

CSRF_VALUE = "auth-tests-csrf-cookie"


@pytest.fixture
def csrf(settings: Any) -> Any:
    """``csrf(client) -> token``: give the client a CSRF cookie and return the matching form token."""

    def prime(client: Any) -> str:
        client.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
        return hmac.new(settings.secret_key.encode(), CSRF_VALUE.encode(), hashlib.sha256).hexdigest()

    return prime


@pytest.fixture
def post_form(csrf: Any) -> Any:
    """``await post_form(client, path, **fields)``: a form POST with a valid CSRF token."""

    async def post(client: Any, path: str, **fields: str) -> Any:
        return await client.post(path, form={"csrf_token": csrf(client), **fields})

    return post
