"""Jinja set-up shared by pages and mails: i18n, date filters, autoescape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from lotse.platform import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


# Jinja's new-style callables translate through these and then apply the
# ``%(name)s`` parameters themselves, so these return the unformatted text.
def _gettext(msgid: str) -> str:
    return i18n.translations().gettext(i18n.current_locale.get(), msgid)


def _ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations().ngettext(i18n.current_locale.get(), singular, plural, n)


def _pgettext(context: str, msgid: str) -> str:
    return i18n.translations().gettext(i18n.current_locale.get(), msgid, context)


def configure(env: Environment) -> Environment:
    """Install translations and filters into a Jinja environment."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(_gettext, _ngettext, newstyle=True, pgettext=_pgettext)  # type: ignore[attr-defined]
    env.filters["datetime"] = i18n.format_datetime
    env.filters["date"] = i18n.format_date
    env.globals["LANGUAGES"] = i18n.LANGUAGES
    env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
    env.globals["current_language"] = i18n.current_locale.get
    return env


def drop_flask_context_processors(app: Any) -> None:
    """Remove the template context processor Flask's Blueprint class gives every blueprint.

    Quart's blueprints inherit it (``flask.templating._default_template_ctx_processor``).
    Under Quart it finds no Flask context and adds nothing (Quart's own
    processor already gives ``g``, ``request`` and ``session``), but it is a
    plain function, so Quart ran it in a worker thread on every page drawn: a
    thread hand-off per page for nothing.
    """
    from flask.templating import _default_template_ctx_processor as flask_default

    for processors in app.template_context_processors.values():
        processors[:] = [p for p in processors if p is not flask_default]


def sync_environment(app: Any) -> Environment:
    """Return a twin of the app's Jinja environment that renders without async (made on first use).

    Quart compiles every template for async rendering, in which each call in a
    template (``_()``, ``url_for``, filters) is checked for an awaitable and
    each block is an async generator; the help runner's page, drawn on every
    click, renders about a fifth faster synchronously. Only for templates that
    call no coroutine function. Same loader, globals, filters and extensions;
    its own cache of compiled templates.
    """
    env: Environment | None = app.extensions.get("lotse.sync_jinja")
    if env is None:
        env = app.extensions["lotse.sync_jinja"] = app.jinja_env.overlay(enable_async=False, cache_size=400)
    return env


def mail_environment() -> Environment:
    """Return the environment mails are rendered with (outside any request)."""
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return configure(env)
