"""Jinja set-up shared by pages and mails: i18n, date filters, autoescape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from lotse.platform import i18n

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"


def _gettext(msgid: str, **params: Any) -> str:
    return i18n.gettext(msgid, **params)


def _ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
    return i18n.ngettext(singular, plural, n, **params)


def _pgettext(context: str, msgid: str, **params: Any) -> str:
    return i18n.pgettext(context, msgid, **params)


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
