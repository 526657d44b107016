"""Small helpers for the sign-in tests."""

from __future__ import annotations

import re
from typing import Any

from lotse.platform.auth import totp
from lotse.platform.web import SESSION_COOKIE


def cookie(client: Any, name: str = SESSION_COOKIE) -> str | None:
    """Return the value of a cookie the test client holds."""
    for item in client.cookie_jar:
        if item.name == name:
            return str(item.value)
    return None


def hidden(html: str, name: str) -> str:
    """Return the value of a hidden input in a page."""
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found, f"no hidden input {name}"
    return found.group(1)


def code_now(svc: Any, secret: str, seconds: int = 0) -> str:
    """The code an authenticator app shows at the frozen clock's time (plus ``seconds``)."""
    from datetime import timedelta

    return totp.code_at(secret, svc.now() + timedelta(seconds=seconds))
