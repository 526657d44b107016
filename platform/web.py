"""What every view shares: the signed-in account, the actor, CSRF, rendering.

Views are thin: parse and validate input, call one action or query, render.
This module holds the few pieces they all need, so that none of them decides
access or writes on its own.

CSRF: every HTML form carries ``csrf_token``, a value bound to a random
per-browser cookie by an HMAC with the secret key (double-submit, signed).
JSON API calls that change state must be sent as ``application/json``, which
a cross-site form cannot do without a CORS pre-flight that Lotse never
grants; the session cookie is ``SameSite=Lax`` besides.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable, Iterable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from quart import current_app, g, render_template, request

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services
from lotse.platform.errors import NotPermittedError, NotSignedInError, PlatformError
from lotse.platform.permissions import Actor
from lotse.platform.templating import sync_environment

SESSION_COOKIE = "lotse_session"
CSRF_COOKIE = "lotse_csrf"

P = ParamSpec("P")
R = TypeVar("R")


def services() -> Services:
    svc: Services = current_app.extensions["lotse"]
    return svc


def current_account() -> Account | None:
    account: Account | None = g.get("account")
    return account


def client_address() -> str:
    return (request.remote_addr or "")[:64]


def actor(via: str = "web") -> Actor:
    """Return the actor for this request (anonymous when nobody is signed in)."""
    account = current_account()
    if account is None:
        return Actor.anonymous(client_address()).with_(via=via)
    return Actor.of(account, source_address=client_address(), via=via)


def signed_in(roles: Iterable[Role] | None = None) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Demand a fully signed-in account (second factor done), optionally of given roles."""
    allowed_roles = frozenset(roles) if roles else None

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            account = current_account()
            if account is None:
                raise NotSignedInError()
            if allowed_roles is not None and account.role not in allowed_roles:
                raise NotPermittedError()
            return await view(*args, **kwargs)

        return wrapper

    return decorate


def safe_next(value: str | None) -> str:
    """Return ``value`` when it is a path on this site, else the start page (no open redirect)."""
    from quart import url_for

    if (
        value
        and value.startswith("/")
        and not value.startswith("//")
        and "\\" not in value
        and not any(ch.isspace() or ord(ch) < 32 for ch in value)
    ):
        return value
    return url_for("home.index")


def csrf_secret() -> str:
    """Return this browser's CSRF cookie value, minting one when absent."""
    value = request.cookies.get(CSRF_COOKIE) or g.get("new_csrf_cookie")
    if not value:
        value = secrets.token_urlsafe(24)
        g.new_csrf_cookie = value
    return value


def csrf_token() -> str:
    key = services().settings.secret_key.encode()
    return hmac.new(key, csrf_secret().encode(), hashlib.sha256).hexdigest()


def check_csrf(submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted:
        raise PlatformError("csrf_failed", _csrf_message())
    key = services().settings.secret_key.encode()
    expected = hmac.new(key, cookie.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, submitted):
        raise PlatformError("csrf_failed", _csrf_message())


def _csrf_message() -> Any:
    from lotse.platform.i18n import _l

    return _l("This form has expired. Please reload the page and try again.")


async def form_data() -> dict[str, str]:
    """Return the submitted form after checking its CSRF token."""
    form = await request.form
    check_csrf(form.get("csrf_token"))
    return {key: value for key, value in form.items() if key != "csrf_token"}


async def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return await render_template(template, **context), status


async def render_sync(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    """Like ``render``, drawn synchronously (``templating.sync_environment``): for pages drawn on every click.

    The template (and what it includes) must call no coroutine function. Quart's
    before/after-render signals are not sent (nothing in Lotse listens to them).
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    await app.update_template_context(context)
    return sync_environment(app).get_template(template).render(context), status
