"""What the runner asks the user interface to show: a small, closed set of views.

Each view is a frozen dataclass; a user interface matches on the class
(``match view: case QuestionView(): ...``). All text is rendered, sanitised
HTML in the session's language; ids are for the answer the interface sends
back. The set is closed on purpose: adding a view means every interface
(browser, terminal, tests) must learn it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from lotse.engine.model import FieldType, Outcome
from lotse.engine.problems import Problem


class NoticeCode(StrEnum):
    """Things the runner tells the user besides the step itself."""

    ACTION_ALREADY_RAN = "action_already_ran"
    ANSWERED_FROM_DATA = "answered_from_data"
    ALREADY_ANSWERED = "already_answered"
    ACTION_FAILED = "action_failed"
    CANNOT_GO_ON = "cannot_go_on"          # the flow is stuck (a broken flow): the session ended


@dataclass(frozen=True, slots=True)
class Notice:
    """A remark with a stable code (for translation by the platform) and English text."""

    code: NoticeCode
    text: str
    step: str = ""
    at: str = ""


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """An earlier step the user can go back to (send ``Back(visit=...)``)."""

    visit: int
    flow: str
    step: str
    auto: bool


@dataclass(frozen=True, slots=True)
class OptionView:
    id: str
    label: str


@dataclass(frozen=True, slots=True)
class FieldView:
    id: str
    type: FieldType
    label: str
    required: bool
    choices: tuple[str, ...]
    help: str
    value: Any = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class ItemView:
    id: str
    label: str
    ticked: bool
    auto: bool


@dataclass(frozen=True, kw_only=True)
class View:
    """What every view carries: where the session stands and how to go back."""

    flow: str
    step: str
    visit: int
    text: str
    notices: tuple[Notice, ...] = ()
    history: tuple[HistoryEntry, ...] = ()
    problems: tuple[Problem, ...] = ()


@dataclass(frozen=True, kw_only=True)
class InfoView(View):
    """Text and a continue button."""


@dataclass(frozen=True, kw_only=True)
class QuestionView(View):
    """Text and one button per visible option; ``suggested`` is what platform data says."""

    options: tuple[OptionView, ...]
    suggested: str | None = None


@dataclass(frozen=True, kw_only=True)
class FormView(View):
    """Fields to fill in; ``problems`` and each field's ``error`` explain refused values."""

    fields: tuple[FieldView, ...]


@dataclass(frozen=True, kw_only=True)
class ChecklistView(View):
    """Items to tick; the step goes on once all are ticked."""

    items: tuple[ItemView, ...]


@dataclass(frozen=True, kw_only=True)
class ConfirmView(View):
    """What will happen and a confirm button; ``previous_runs`` says it already happened."""

    action: str
    confirm: str
    args: Mapping[str, Any] = field(default_factory=dict)
    previous_runs: tuple[Notice, ...] = ()


@dataclass(frozen=True, kw_only=True)
class EndView(View):
    """The session is over, with this outcome."""

    outcome: Outcome


AnyView = InfoView | QuestionView | FormView | ChecklistView | ConfirmView | EndView
