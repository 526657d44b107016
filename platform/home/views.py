"""Start page (what a signed-in person can do from here) and the language switch."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, g, redirect, url_for

from lotse.platform import i18n
from lotse.platform.web import actor, current_account, form_data, render, safe_next, services

blueprint = Blueprint("home", __name__)


@blueprint.get("/")
async def index() -> Any:
    if current_account() is None:
        return redirect(url_for("auth.sign_in"))
    return await render("home.html")


@blueprint.post("/language")
async def switch_language() -> Any:
    """Switch the language: the profile's when signed in, else a cookie."""
    form = await form_data()
    language = form.get("language", "")
    target = safe_next(form.get("next"))
    if language not in i18n.LANGUAGES:
        return redirect(target)
    account = current_account()
    if account is not None:
        from lotse.platform.auth.actions import do_set_language

        await do_set_language(services(), actor(), account, language)
    response = redirect(target)
    response.set_cookie("lotse_lang", language, max_age=365 * 24 * 3600, samesite="Lax",
                        secure=services().settings.secure_cookies, httponly=True)
    g.language = language
    return response
