"""Sign-in pages: password, second factor, enrolment, links from mails, "my account".

Thin views: read the form (CSRF-checked), call one action, render or
redirect. Pages reached from a mail (welcome, reset, unblock) show a button
on GET and act only on POST, so that a mail scanner fetching the link does
not use it up; an expired or used link gets a page that says what to do next.
"""

from __future__ import annotations

from typing import Any, TypeVar

from quart import Blueprint, current_app, flash, g, redirect, request, url_for
from werkzeug.sansio.response import Response as SansioResponse

from lotse.platform import i18n
from lotse.platform.accounts.models import Account, TokenPurpose
from lotse.platform.accounts.validation import email_problem, normalise_email
from lotse.platform.auth import actions, totp
from lotse.platform.auth.actions import SignInResult, SignInStage
from lotse.platform.auth.errors import LinkUnusableError, SignInFailedError, TwoFactorFailedError
from lotse.platform.errors import NotFoundError, NotSignedInError, ValidationError
from lotse.platform.i18n import _
from lotse.platform.organisations.models import TwoFactorRule
from lotse.platform.permissions import Actor
from lotse.platform.web import (
    SESSION_COOKIE,
    actor,
    client_address,
    current_account,
    form_data,
    render,
    safe_next,
    services,
    signed_in,
)

blueprint = Blueprint("auth", __name__)

LANGUAGE_COOKIE = "lotse_lang"


def _session_key() -> str | None:
    return request.cookies.get(SESSION_COOKIE)


R = TypeVar("R", bound=SansioResponse)


def set_session_cookie(response: R, key: str) -> R:
    response.set_cookie(SESSION_COOKIE, key, httponly=True, samesite="Lax",
                        secure=services().settings.secure_cookies, path="/")
    return response


def _no_store(response: Any) -> Any:
    response.headers["Cache-Control"] = "no-store"
    return response


def _after_sign_in(result: SignInResult, next_path: str) -> Any:
    if result.stage is SignInStage.TWO_FACTOR:
        target = url_for("auth.two_factor", next=next_path)
    elif result.stage is SignInStage.ENROL:
        target = url_for("auth.enrol", next=next_path)
    else:
        target = next_path
    return set_session_cookie(redirect(target), result.session_key)


def _pending_account() -> Account | None:
    session = g.get("web_session")
    if session is None or not session.pending_two_factor:
        return None
    account: Account = session.account
    return account


def _adopt_language(account: Account, organisation_language: str | None = None) -> None:
    """Show a page opened from a mail in its recipient's language, unless the browser chose one."""
    if request.cookies.get(LANGUAGE_COOKIE):
        return
    language = account.locale if account.locale in i18n.LANGUAGES else organisation_language
    if language in i18n.LANGUAGES:
        g.language = language
        i18n.current_locale.set(language)


# ---- password ---------------------------------------------------------------------------------


@blueprint.route("/sign-in", methods=["GET", "POST"])
async def sign_in() -> Any:
    next_path = safe_next(request.args.get("next"))
    if request.method == "GET":
        if current_account() is not None:
            return redirect(next_path)
        return _no_store(await current_app.make_response(
            await render("auth/sign_in.html", next=next_path, email="")))
    form = await form_data()
    next_path = safe_next(form.get("next"))
    try:
        result = await actions.do_sign_in(
            services(), actor(), form.get("email", ""), form.get("password", ""), replaces=_session_key()
        )
    except SignInFailedError as error:
        return await render("auth/sign_in.html", error.status, error=error, next=next_path,
                            email=form.get("email", "")[:254])
    return _after_sign_in(result, next_path)


@blueprint.post("/sign-out")
async def sign_out() -> Any:
    await form_data()
    await actions.do_sign_out(services(), actor(), _session_key())
    await flash(_("You are signed out."), "info")
    response = redirect(url_for("auth.sign_in"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# ---- second factor ----------------------------------------------------------------------------


@blueprint.route("/sign-in/two-factor", methods=["GET", "POST"])
async def two_factor() -> Any:
    account = _pending_account()
    next_path = safe_next(request.args.get("next"))
    if account is None:
        return redirect(url_for("auth.sign_in", next=next_path))
    if not account.two_factor_enabled:
        return redirect(url_for("auth.enrol", next=next_path))
    if request.method == "GET":
        return await render("auth/two_factor.html", next=next_path)
    form = await form_data()
    next_path = safe_next(form.get("next"))
    try:
        result = await actions.do_verify_two_factor(services(), actor(), _session_key(), form.get("code", ""))
    except TwoFactorFailedError as error:
        return await render("auth/two_factor.html", error.status, error=error, next=next_path)
    except NotSignedInError:
        return redirect(url_for("auth.sign_in", next=next_path))
    return _after_sign_in(result, next_path)


@blueprint.route("/account/two-factor", methods=["GET", "POST"])
async def enrol() -> Any:
    """Enrolment from "my account", or demanded by the organisation right after the password."""
    account = current_account()
    pending_key = None
    act: Actor
    if account is not None:
        act = actor()
    else:
        account = _pending_account()
        if account is None or account.two_factor_enabled:
            raise NotSignedInError()
        act = Actor.of(account, source_address=client_address(), via="web")
        pending_key = _session_key()
    if await actions.two_factor_rule(account) is TwoFactorRule.OFF:
        raise NotFoundError()
    forced = pending_key is not None
    next_path = safe_next(request.args.get("next")) if forced else url_for("auth.account")
    if account.two_factor_enabled:
        await flash(_("Two-factor authentication is already on."), "info")
        return redirect(url_for("auth.account"))
    error: ValidationError | None = None
    if request.method == "POST":
        form = await form_data()
        secret = form.get("secret", "")
        next_path = safe_next(form.get("next")) if forced else next_path
        try:
            enrolment = await actions.do_enable_two_factor(
                services(), act, account, secret, form.get("code", ""), pending_session_key=pending_key
            )
        except ValidationError as problem:
            error = problem
        else:
            response = await current_app.make_response(await render(
                "auth/recovery_codes.html", codes=enrolment.recovery_codes, next=next_path, first_time=True))
            if enrolment.session_key:
                set_session_cookie(response, enrolment.session_key)
            return _no_store(response)
    else:
        secret = totp.new_secret()
    if not totp.is_secret(secret.strip().upper()):
        secret = totp.new_secret()
    uri = totp.provisioning_uri(secret, account.email)
    page = await render("auth/enrol.html", 422 if error else 200, error=error, secret=secret,
                        qr=totp.qr_data_uri(uri), forced=forced, next=next_path, account=account)
    return _no_store(await current_app.make_response(page))


# ---- links from mails -------------------------------------------------------------------------


async def _link_problem(error: LinkUnusableError, purpose: TokenPurpose) -> Any:
    return await render("auth/link_problem.html", error.status, error=error, purpose=purpose.value)


async def _set_password_page(purpose: TokenPurpose, secret: str) -> Any:
    svc = services()
    try:
        token = await actions.usable_link(svc, purpose, secret)
    except LinkUnusableError as unusable:
        return await _link_problem(unusable, purpose)
    account: Account = token.account
    organisation = await account.organisation
    _adopt_language(account, organisation.default_language)
    error: ValidationError | None = None
    if request.method == "POST":
        form = await form_data()
        try:
            result = await actions.do_set_password_with_link(
                svc, actor(), purpose, secret, form.get("password", ""), form.get("repeat", ""),
                replaces=_session_key(),
            )
        except ValidationError as problem:
            error = problem
        except LinkUnusableError as problem:
            return await _link_problem(problem, purpose)
        else:
            await flash(_("Your password is set."), "info")
            return _after_sign_in(result, url_for("home.index"))
    page = await render("auth/set_password.html", 422 if error else 200, error=error, purpose=purpose.value,
                        account=account)
    return _no_store(await current_app.make_response(page))


@blueprint.route("/welcome/<secret>", methods=["GET", "POST"])
async def welcome(secret: str) -> Any:
    return await _set_password_page(TokenPurpose.WELCOME, secret)


@blueprint.route("/password/reset/<secret>", methods=["GET", "POST"])
async def reset_password(secret: str) -> Any:
    return await _set_password_page(TokenPurpose.RESET, secret)


@blueprint.route("/unblock/<secret>", methods=["GET", "POST"])
async def unblock(secret: str) -> Any:
    svc = services()
    try:
        token = await actions.usable_link(svc, TokenPurpose.UNBLOCK, secret)
        account: Account = token.account
        organisation = await account.organisation
        _adopt_language(account, organisation.default_language)
        if request.method == "GET":
            return _no_store(await current_app.make_response(await render("auth/unblock.html")))
        await form_data()
        await actions.do_unblock_with_link(svc, actor(), secret)
    except LinkUnusableError as error:
        return await _link_problem(error, TokenPurpose.UNBLOCK)
    await flash(_("Your account is unblocked. You can sign in again."), "info")
    return redirect(url_for("auth.sign_in"))


@blueprint.route("/password/forgot", methods=["GET", "POST"])
async def forgot_password() -> Any:
    if request.method == "GET":
        return await render("auth/forgot.html", email="")
    form = await form_data()
    email = form.get("email", "").strip()
    if not looks_like_email(email):
        error = ValidationError(fields={"email": i18n._l("Please enter your e-mail address, such as name@example.org.")})
        return await render("auth/forgot.html", 422, error=error, email=email[:254])
    await actions.do_request_password_reset(services(), actor(), email)
    return await render("auth/forgot_sent.html")


def looks_like_email(email: str) -> bool:
    """Whether an address has the shape the accounts' own check accepts (one rule for both)."""
    return email_problem(normalise_email(email)) is None


# ---- my account -------------------------------------------------------------------------------


async def _account_page(status: int = 200, **context: Any) -> Any:
    account = current_account()
    assert account is not None
    organisation = await account.organisation
    page = await render("auth/account.html", status, account=account, organisation=organisation,
                        two_factor_rule=organisation.two_factor.value,
                        recovery_codes_left=len(account.recovery_codes or []), **context)
    return _no_store(await current_app.make_response(page))


@blueprint.get("/account")
@signed_in()
async def account() -> Any:
    return await _account_page()


@blueprint.post("/account/language")
@signed_in()
async def set_language() -> Any:
    form = await form_data()
    language = form.get("language", "")
    own = current_account()
    assert own is not None
    try:
        await actions.do_set_language(services(), actor(), own, language or None)
    except ValidationError as error:
        return await _account_page(422, language_error=error)
    if language:
        i18n.current_locale.set(language)
    await flash(_("Your language is saved."), "info")
    response = redirect(url_for("auth.account"))
    if not language:
        # Otherwise the browser's earlier choice would keep overriding the organisation's default.
        response.delete_cookie(LANGUAGE_COOKIE, path="/")
    return response


@blueprint.post("/account/password")
@signed_in()
async def change_password() -> Any:
    form = await form_data()
    own = current_account()
    assert own is not None
    session = g.get("web_session")
    try:
        await actions.do_change_password(
            services(), actor(), own, form.get("current", ""), form.get("password", ""), form.get("repeat", ""),
            keep_session_id=session.id if session is not None else None,
        )
    except ValidationError as error:
        return await _account_page(422, password_error=error)
    await flash(_("Your password is changed. Other devices have been signed out."), "info")
    return redirect(url_for("auth.account"))


@blueprint.post("/account/recovery-codes")
@signed_in()
async def regenerate_recovery_codes() -> Any:
    await form_data()
    own = current_account()
    assert own is not None
    codes = await actions.do_regenerate_recovery_codes(services(), actor(), own)
    page = await render("auth/recovery_codes.html", codes=codes, next=url_for("auth.account"), first_time=False)
    return _no_store(await current_app.make_response(page))
