"""Translations for every screen, mail and error, in German and Dutch.

English is the source language: code and templates carry English message ids,
and ``locales/<lang>/LC_MESSAGES/*.po`` carry the German and Dutch text. The
catalogues are read straight from the ``.po`` files at start-up (no compiled
``.mo`` to keep in step) and every ``.po`` file of a language is merged, so
each domain of the platform keeps its own file.  Fuzzy entries are skipped,
exactly as ``msgfmt`` would.

Strings are formatted new-style gettext fashion, ``_("Hello %(name)s", name=x)``,
the same in Python and in Jinja templates.  ``_l`` makes a lazy string that is
translated when rendered, so an error raised deep inside an action reads right
in the language of whoever sees it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale
from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("nl", "de")
DEFAULT_LANGUAGE = "nl"
LANGUAGE_NAMES = {"de": "Deutsch", "nl": "Nederlands"}
DEFAULT_TIME_ZONE = "Europe/Amsterdam"

current_locale: contextvars.ContextVar[str] = contextvars.ContextVar("lotse_locale", default=DEFAULT_LANGUAGE)
current_time_zone: contextvars.ContextVar[str] = contextvars.ContextVar("lotse_tz", default=DEFAULT_TIME_ZONE)

Key = tuple[str | None, str]


@dataclass
class Catalogue:
    """The merged messages of one language."""

    language: str
    messages: dict[Key, str | tuple[str, ...]]
    plural: Any

    def get(self, msgid: str, context: str | None = None) -> str | tuple[str, ...] | None:
        return self.messages.get((context, msgid))


def read_catalogue(path: Path) -> dict[Key, str | tuple[str, ...]]:
    """Read one ``.po`` file into ``{(context, msgid): translation}``, without fuzzy or empty entries."""
    with path.open("rb") as fh:
        catalog = read_po(fh)
    messages: dict[Key, str | tuple[str, ...]] = {}
    for message in catalog:
        if not message.id or message.fuzzy:
            continue
        msgid = str(message.id[0] if isinstance(message.id, tuple | list) else message.id)
        string = message.string
        if isinstance(string, tuple | list):
            if all(string):
                messages[(message.context, msgid)] = tuple(string)
        elif string:
            messages[(message.context, msgid)] = string
    return messages


def _two_forms(n: int) -> int:
    return 0 if n == 1 else 1


class Translations:
    """All catalogues of all languages; lives on the app object."""

    def __init__(self, locales_dir: Path, languages: Iterable[str] = LANGUAGES) -> None:
        self.locales_dir = locales_dir
        self.catalogues: dict[str, Catalogue] = {}
        for language in languages:
            merged: dict[Key, str | tuple[str, ...]] = {}
            folder = locales_dir / language / "LC_MESSAGES"
            for po in sorted(folder.glob("*.po")) if folder.exists() else []:
                merged.update(read_catalogue(po))
            # German and Dutch share the plural rule nplurals=2; plural=(n != 1).
            self.catalogues[language] = Catalogue(language, merged, _two_forms)

    def gettext(self, language: str, msgid: str, context: str | None = None) -> str:
        catalogue = self.catalogues.get(language)
        found = catalogue.get(msgid, context) if catalogue else None
        if isinstance(found, tuple):
            return found[0]
        return found or msgid

    def ngettext(self, language: str, singular: str, plural: str, n: int) -> str:
        catalogue = self.catalogues.get(language)
        found = catalogue.get(singular) if catalogue else None
        if isinstance(found, tuple) and catalogue is not None:
            return found[min(int(catalogue.plural(n)), len(found) - 1)]
        return singular if n == 1 else plural


# The app installs its Translations here at start-up; a context variable and
# not a module global, so that two apps in one test process don't mix.
active_translations: contextvars.ContextVar[Translations | None] = contextvars.ContextVar(
    "lotse_translations", default=None
)
_fallback: dict[Path, Translations] = {}


def translations() -> Translations:
    found = active_translations.get()
    if found is not None:
        return found
    from lotse.platform.config import _shipped_dir

    folder = _shipped_dir("lotse.locales")
    if folder not in _fallback:
        _fallback[folder] = Translations(folder)
    return _fallback[folder]


def _format(text: str, params: Mapping[str, Any]) -> str:
    # Always a format string, as in Jinja's new-style gettext: "%%" is a literal
    # percent sign whether or not the message has parameters.
    return text % dict(params)


def gettext(msgid: str, /, **params: Any) -> str:
    """Translate into the current language and insert ``%(name)s`` parameters."""
    return _format(translations().gettext(current_locale.get(), msgid), params)


def ngettext(singular: str, plural: str, n: int, /, **params: Any) -> str:
    params.setdefault("num", n)
    return _format(translations().ngettext(current_locale.get(), singular, plural, n), params)


def pgettext(context: str, msgid: str, /, **params: Any) -> str:
    return _format(translations().gettext(current_locale.get(), msgid, context), params)


_ = gettext


class LazyText:
    """A message translated only when rendered (``str()``, templates, JSON)."""

    __slots__ = ("msgid", "params")

    def __init__(self, msgid: str, params: Mapping[str, Any] | None = None) -> None:
        self.msgid = msgid
        self.params = dict(params or {})

    def render(self, language: str | None = None) -> str:
        language = language or current_locale.get()
        params = {k: (v.render(language) if isinstance(v, LazyText) else v) for k, v in self.params.items()}
        return _format(translations().gettext(language, self.msgid), params)

    def __str__(self) -> str:
        return self.render()

    def __html__(self) -> str:
        from markupsafe import escape

        return str(escape(self.render()))

    def __repr__(self) -> str:
        return f"LazyText({self.msgid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyText) and (self.msgid, self.params) == (other.msgid, other.params)

    def __hash__(self) -> int:
        return hash(self.msgid)


def _l(msgid: str, /, **params: Any) -> LazyText:
    """Mark a message for translation at render time."""
    return LazyText(msgid, params)


def negotiate(accept_language: str | None, offered: Iterable[str] = LANGUAGES) -> str | None:
    """Pick the best of ``offered`` for an ``Accept-Language`` header, or None."""
    if not accept_language:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        pieces = part.strip().split(";")
        tag = pieces[0].strip().lower()
        quality = 1.0
        for piece in pieces[1:]:
            name, _sep, value = piece.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if tag:
            ranked.append((-quality, index, tag))
    offered = list(offered)
    for quality, _index, tag in sorted(ranked):
        if quality >= 0:
            continue
        base = tag.split("-")[0]
        if base in offered:
            return base
    return None


def choose_language(profile: str | None, organisation_default: str | None, accept_language: str | None) -> str:
    """Profile, else the organisation's default, else the browser, else Dutch."""
    for candidate in (profile, organisation_default):
        if candidate in LANGUAGES:
            return candidate
    return negotiate(accept_language) or DEFAULT_LANGUAGE


def _zone(tz: str | None) -> ZoneInfo:
    return ZoneInfo(tz or current_time_zone.get())


def format_datetime(value: datetime | None, fmt: str = "medium", language: str | None = None, tz: str | None = None) -> str:
    if value is None:
        return ""
    return _babel_format_datetime(value, format=fmt, tzinfo=_zone(tz), locale=Locale.parse(language or current_locale.get()))


def format_date(value: date | datetime | None, fmt: str = "medium", language: str | None = None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(_zone(None)).date()
    return _babel_format_date(value, format=fmt, locale=Locale.parse(language or current_locale.get()))
