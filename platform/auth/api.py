"""Signing in over the JSON API (``/api/v1``): the same actions as the pages.

The API uses the same ``lotse_session`` cookie as the pages. Every request
that changes state must be sent as ``application/json`` (else 415; the app
enforces this for all of ``/api/``, see ``lotse.platform.app``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, field_validator
from quart import Blueprint, Response, after_this_request, g, request
from quart_schema import tag, validate_request, validate_response

from lotse.platform.accounts.models import Account
from lotse.platform.auth import actions
from lotse.platform.auth.actions import SignInResult, SignInStage
from lotse.platform.auth.views import looks_like_email, set_session_cookie
from lotse.platform.errors import NotSignedInError
from lotse.platform.permissions import Actor
from lotse.platform.web import SESSION_COOKIE, actor, current_account, services

blueprint = Blueprint("auth_api", __name__, url_prefix="/api/v1")

class SignInRequest(BaseModel):
    email: str = Field(min_length=1, max_length=254, description="The e-mail address the account signs in with.")
    password: str = Field(min_length=1, max_length=1024)


class TwoFactorRequest(BaseModel):
    code: str = Field(min_length=6, max_length=64, description="Six digits from the app, or a recovery code.")


class ForgotPasswordRequest(BaseModel):
    email: str = Field(min_length=3, max_length=254)

    @field_validator("email")
    @classmethod
    def _email_shape(cls, value: str) -> str:
        if not looks_like_email(value.strip()):
            raise ValueError("not an e-mail address")
        return value.strip()


class AccountOut(BaseModel):
    id: int
    email: str
    first_name: str
    last_name: str
    role: str
    organisation_id: int
    language: str | None
    two_factor_enabled: bool


class SessionOut(BaseModel):
    status: SignInStage = Field(description="signed_in, or the step still due: two_factor_required, "
                                            "two_factor_enrolment_required (enrol in the browser).")
    account: AccountOut | None = None


class Accepted(BaseModel):
    status: str = "accepted"


def _account_out(account: Account) -> AccountOut:
    return AccountOut(
        id=account.id, email=account.email, first_name=account.first_name, last_name=account.last_name,
        role=account.role.value, organisation_id=account.organisation_id,
        language=account.locale, two_factor_enabled=account.two_factor_enabled,
    )


def _session_out(result: SignInResult) -> SessionOut:
    signed_in = result.stage is SignInStage.SIGNED_IN
    return SessionOut(status=result.stage, account=_account_out(result.account) if signed_in else None)


def _actor() -> Actor:
    # ``web.actor`` leaves an anonymous actor's channel at "web".
    return actor("api").with_(via="api")


def _set_cookie_after(key: str) -> None:
    """Set the session cookie on the response (the view returns a model, for validation)."""

    async def add_cookie(response: Any) -> Any:
        return set_session_cookie(response, key)

    after_this_request(add_cookie)


@blueprint.post("/session")
@tag(["session"])
@validate_request(SignInRequest)
@validate_response(SessionOut, 200)
async def create_session(data: SignInRequest) -> Any:
    """Sign in with e-mail and password.

    Wrong e-mail, wrong password, a blocked or a deactivated account all get
    the same 401 ``sign_in_failed``. Five failures in a row block the account
    and mail its owner an unblock link. When a second factor is due, the
    answer's ``status`` says so and the session cookie is only good for
    ``POST /api/v1/session/two-factor``.
    """
    result = await actions.do_sign_in(
        services(), _actor(), data.email, data.password, replaces=request.cookies.get(SESSION_COOKIE)
    )
    _set_cookie_after(result.session_key)
    return _session_out(result)


@blueprint.post("/session/two-factor")
@tag(["session"])
@validate_request(TwoFactorRequest)
@validate_response(SessionOut, 200)
async def confirm_two_factor(data: TwoFactorRequest) -> Any:
    """Complete a sign-in with a code from the authenticator app, or a recovery code (each works once).

    A wrong code is 401 ``two_factor_failed`` and counts towards the same
    five-attempt lock-out as wrong passwords. Enrolment is done in the browser.
    """
    result = await actions.do_verify_two_factor(
        services(), _actor(), request.cookies.get(SESSION_COOKIE), data.code
    )
    _set_cookie_after(result.session_key)
    return _session_out(result)


@blueprint.get("/session")
@tag(["session"])
@validate_response(SessionOut, 200)
async def who_am_i() -> Any:
    """Return the signed-in account, or 401 ``not_signed_in``."""
    account = current_account()
    if account is not None:
        return SessionOut(status=SignInStage.SIGNED_IN, account=_account_out(account))
    session = g.get("web_session")
    if session is not None and session.pending_two_factor:
        pending: Account = session.account
        stage = SignInStage.TWO_FACTOR if pending.two_factor_enabled else SignInStage.ENROL
        return SessionOut(status=stage)
    raise NotSignedInError()


@blueprint.delete("/session")
@tag(["session"])
async def delete_session() -> Any:
    """Sign out: end this session (send ``Content-Type: application/json``, body optional)."""
    await actions.do_sign_out(services(), _actor(), request.cookies.get(SESSION_COOKIE))
    response = Response("", status=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@blueprint.post("/password/forgot")
@tag(["session"])
@validate_request(ForgotPasswordRequest)
@validate_response(Accepted, 202)
async def forgot_password(data: ForgotPasswordRequest) -> Any:
    """Mail a single-use link to set a new password (valid one hour).

    The answer is 202 whether or not an account has this address, so that
    the API does not tell which addresses exist.
    """
    await actions.do_request_password_reset(services(), _actor(), data.email)
    return Accepted(), 202
