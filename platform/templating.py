"""Jinja set-up shared by pages and mails: i18n, date filters, autoescape."""

from __future__ import annotations

from pathlib import Path

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
