"""Fixtures for the caseload tests: CSRF-primed form posts and a populated organisation."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from lotse.platform.web import CSRF_COOKIE

CSRF_VALUE = "caseload-tests-csrf-cookie"


@pytest.fixture
def post_form(settings: Any) -> Any:
    """``await post_form(client, path, **fields)``: a form POST with a valid CSRF token."""

    async def post(client: Any, path: str, **fields: str) -> Any:
        client.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
        token = hmac.new(settings.secret_key.encode(), CSRF_VALUE.encode(), hashlib.sha256).hexdigest()
        return await client.post(path, form={"csrf_token": token, **fields})

    return post
