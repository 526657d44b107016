"""login-help over HTTP, signed out, in Dutch: the runner pages send a real reset mail."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from lotse.platform.actions import Services
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.web import CSRF_COOKIE
from tests.factories import make_client, make_org

CSRF_VALUE = "flows-e2e-csrf-cookie"


async def _post(svc: Services, client: Any, path: str, **fields: str) -> Any:
    client.set_cookie("localhost", CSRF_COOKIE, CSRF_VALUE)
    token = hmac.new(svc.settings.secret_key.encode(), CSRF_VALUE.encode(), hashlib.sha256).hexdigest()
    return await client.post(path, form={"csrf_token": token, **fields})


async def test_signed_out_person_asks_for_a_reset_mail_through_the_runner_pages(
    svc: Services, app: Any
) -> None:
    org = await make_org(svc)
    account = await make_client(svc, org)
    browser = app.test_client()
    browser.set_cookie("localhost", "lotse_lang", "nl")
    started = await _post(svc, browser, "/help/start/login-help", in_person="", in_email="")
    assert started.status_code == 303, await started.get_data(as_text=True)
    match = re.search(r"(/help/sessions/[A-Za-z0-9_-]+)", started.headers["Location"])
    assert match is not None
    page = match.group(1)

    first = await browser.get(page)
    assert "Wat gebeurt er als u probeert in te loggen?" in await first.get_data(as_text=True)
    for fields in (
        {"input": "choose", "step": "what-happens", "option": "forgot-password"},
        {"input": "continue", "step": "forgot-password"},
        {"input": "submit", "step": "reset-ask-email", "f_email": account.email},
        {"input": "confirm", "step": "reset-typed-email"},
        {"input": "continue", "step": "reset-sent"},
        {"input": "choose", "step": "try-again", "option": "yes"},
    ):
        response = await _post(svc, browser, page, **fields)
        assert response.status_code == 200, (fields, await response.get_data(as_text=True))
    assert "Fijn dat inloggen weer lukt." in await response.get_data(as_text=True)
    mail = await OutboxMessage.get(recipient=account.email, kind="password_reset")
    assert mail.account_id == account.id
