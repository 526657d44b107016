"""Flow text in other languages: message contexts, the Babel extractor, the runtime look-up.

Every translatable text of a flow has a stable gettext context derived from
where it stands, not from the English sentence, so that a translation
survives reordering and is found again after the English is edited (Babel
then marks it fuzzy until a translator confirms it):

* ``<flow>/title``, ``<flow>/description``
* ``<flow>/<step>/<field>`` for ``text`` and ``confirm``
* ``<flow>/<step>/<option-or-field-or-item>/label`` (and ``.../help`` for form fields)
* ``<flow>/inputs/<input>/label`` for the labels of the flow's inputs

At run time the ``.po`` files are read directly (no compiled ``.mo`` is
needed; the platform may reuse :func:`load_po`). Fuzzy entries are never
used: an outdated translation is worse than the English original.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, BinaryIO

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from lotse.engine.loader import load_flow
from lotse.engine.model import (
    ActionStep,
    ChecklistStep,
    EndStep,
    Flow,
    FormStep,
    InfoStep,
    QuestionStep,
)

#: The languages flows are translated into; English is the source.
LANGUAGES = ("de", "nl")
DOMAIN = "flows"


@dataclass(frozen=True, slots=True)
class Message:
    """One translatable text of a flow."""

    context: str
    msgid: str
    line: int


def flow_messages(flow: Flow) -> Iterator[Message]:
    """Yield every translatable text of a flow with its context, in file order."""
    src = flow.source
    if flow.title:
        yield Message(f"{flow.id}/title", flow.title, src.pos(("title",)).line)
    if flow.description:
        yield Message(f"{flow.id}/description", flow.description, src.pos(("description",)).line)
    for spec in flow.inputs:
        if spec.label and spec.label != spec.id:
            yield Message(f"{flow.id}/inputs/{spec.id}/label", spec.label, src.pos(("inputs", spec.id, "label")).line)
    for step in flow.steps.values():
        at = ("steps", step.id)
        base = f"{flow.id}/{step.id}"
        if isinstance(step, InfoStep | QuestionStep | FormStep | ChecklistStep | ActionStep | EndStep) and step.text:
            yield Message(f"{base}/text", step.text, src.pos((*at, "text")).line)
        match step:
            case QuestionStep(options=options):
                for option in options:
                    yield Message(f"{base}/{option.id}/label", option.label, src.pos((*at, "options", option.id, "label")).line)
            case FormStep(fields=fields):
                for field in fields:
                    yield Message(f"{base}/{field.id}/label", field.label, src.pos((*at, "fields", field.id, "label")).line)
                    if field.help:
                        yield Message(f"{base}/{field.id}/help", field.help, src.pos((*at, "fields", field.id, "help")).line)
            case ChecklistStep(items=items):
                for item in items:
                    yield Message(f"{base}/{item.id}/label", item.label, src.pos((*at, "items", item.id, "label")).line)
            case ActionStep(confirm=confirm) if confirm:
                yield Message(f"{base}/confirm", confirm, src.pos((*at, "confirm")).line)
            case _:
                pass


class ExtractionError(ValueError):
    """A flow file too broken to extract text from; extraction must stop, not guess."""


def extract_flows(
    fileobj: BinaryIO, keywords: Any, comment_tags: Any, options: Mapping[str, Any]
) -> Iterator[tuple[int, str, tuple[str, str], list[str]]]:
    """Extract flow texts for Babel (entry point ``lotse_flows`` in ``babel.extractors``).

    Raises :class:`ExtractionError` for a file that is not a flow, so that the
    extraction fails loudly instead of producing a catalogue without its texts.
    """
    name = str(getattr(fileobj, "name", "") or "")
    result = load_flow(fileobj.read(), name)
    if result.flow is None:
        detail = "; ".join(p.format() for p in result.problems[:3])
        raise ExtractionError(f"cannot extract from {name}: {detail}")
    for message in flow_messages(result.flow):
        yield message.line, "pgettext", (message.context, message.msgid), []


@dataclass(frozen=True, slots=True)
class PoEntry:
    msgid: str
    msgstr: str
    fuzzy: bool


@dataclass(frozen=True, slots=True)
class PoFile:
    """A ``.po`` file indexed for look-ups and for reporting."""

    translations: Mapping[tuple[str | None, str], str]
    by_context: Mapping[str, PoEntry]


def read_po_file(path: str | Path) -> PoFile:
    """Read a ``.po`` file; a missing file is an empty catalogue."""
    path = Path(path)
    if not path.exists():
        return PoFile({}, {})
    with path.open("rb") as handle:
        catalog: Catalog = read_po(handle)
    translations: dict[tuple[str | None, str], str] = {}
    by_context: dict[str, PoEntry] = {}
    for message in catalog:
        if not message.id or not isinstance(message.id, str):
            continue
        text = message.string if isinstance(message.string, str) else ""
        if message.context:
            by_context[message.context] = PoEntry(message.id, text, message.fuzzy)
        if text and not message.fuzzy:
            translations[(message.context, message.id)] = text
    return PoFile(translations, by_context)


def load_po(path: str | Path) -> dict[tuple[str | None, str], str]:
    """Load a ``.po`` file into ``{(context, msgid): msgstr}``, leaving out fuzzy and empty entries."""
    return dict(read_po_file(path).translations)


def po_path(locales_dir: str | Path, language: str) -> Path:
    """Return where the flows catalogue of a language lives."""
    return Path(locales_dir) / language / "LC_MESSAGES" / f"{DOMAIN}.po"


class PoTranslations:
    """The :class:`~lotse.engine.ports.Translations` port over ``locales/<lang>/LC_MESSAGES/flows.po``.

    Files are read on first use per language and kept; call :meth:`reload`
    after the catalogues changed.
    """

    def __init__(self, locales_dir: str | Path, languages: tuple[str, ...] = LANGUAGES) -> None:
        self._dir = Path(locales_dir)
        self._languages = languages
        self._loaded: dict[str, Mapping[tuple[str | None, str], str]] = {}

    def translate(self, locale: str, context: str, msgid: str) -> str | None:
        language = locale.split("_")[0].split("-")[0].lower()
        if language not in self._languages:
            return None
        table = self._loaded.get(language)
        if table is None:
            table = self._loaded[language] = load_po(po_path(self._dir, language))
        return table.get((context, msgid))

    def reload(self) -> None:
        """Forget what was read, so that the next look-up reads the files again."""
        self._loaded.clear()


class TranslationState(StrEnum):
    TRANSLATED = "translated"
    MISSING = "missing"
    FUZZY = "fuzzy"


@dataclass(frozen=True, slots=True)
class TranslationStatus:
    language: str
    message: Message
    state: TranslationState


def translation_status(flow: Flow, po_files: Mapping[str, PoFile]) -> Iterator[TranslationStatus]:
    """Yield, per language and text, whether it is translated, missing or fuzzy.

    An entry whose English source changed since it was translated counts as
    fuzzy even before ``pybabel update`` marked it so.
    """
    for language, po in po_files.items():
        for message in flow_messages(flow):
            entry = po.by_context.get(message.context)
            if entry is None or not entry.msgstr:
                state = TranslationState.MISSING
            elif entry.fuzzy or entry.msgid != message.msgid:
                state = TranslationState.FUZZY
            else:
                state = TranslationState.TRANSLATED
            yield TranslationStatus(language, message, state)
