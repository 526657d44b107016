"""Fixtures for the help tests: the test flows (copied, so a test may "publish" a change), form posts."""

from __future__ import annotations

import hashlib
import hmac
import shutil
from pathlib import Path
from typing import Any

import pytest

from lotse.platform.config import Settings
from lotse.platform.web import CSRF_COOKIE

FLOWS = Path(__file__).resolve().parent / "flows"
CSRF_VALUE = "help-tests-csrf-cookie"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    flows_dir = tmp_path / "flows"
    shutil.copytree(FLOWS, flows_dir)
    return settings.with_(flows_dir=flows_dir)


@pytest.fixture
def post_form(settings: Settings) -> Any:
    """``await post_form(client, path, **fields)``: a form POST with a valid CSRF token."""

    async def post(client: Any, path: str, **fields: str) -> Any:
        client.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
        token = hmac.new(settings.secret_key.encode(), CSRF_VALUE.encode(), hashlib.sha256).hexdigest()
        return await client.post(path, form={"csrf_token": token, **fields})

    return post

