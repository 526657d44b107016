"""The neutral model of a loaded flow.

Frozen dataclasses, produced only by :mod:`lotse.engine.loader`; the checks,
the runner, the extractor and the graph writer all read this model and never
the YAML. Every outgoing edge of a step is a :class:`Transition` with a kind
and a label, so that checks, coverage and drawing agree on what "a
transition" is (each option, case, error mapping and sub-flow outcome).

Positions are kept in a :class:`SourceMap` keyed by the path of the node in
the document (``("steps", "reactivate", "args", "account")``), so that any
check can point at the exact line of what it complains about.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

NodePath = tuple[str | int, ...]


class StepType(StrEnum):
    """The closed set of step types of FLOWS.md."""

    INFO = "info"
    QUESTION = "question"
    FORM = "form"
    CHECKLIST = "checklist"
    ACTION = "action"
    BRANCH = "branch"
    SUBFLOW = "subflow"
    END = "end"


#: Steps that wait for the person: a cycle through one of them is not endless.
INTERRUPTING = frozenset({StepType.QUESTION, StepType.FORM, StepType.CHECKLIST})


class Outcome(StrEnum):
    """How a session ended. ``abandoned`` is set by the platform, never by a flow."""

    RESOLVED = "resolved"
    ESCALATED = "escalated"
    NOT_RESOLVED = "not_resolved"
    ABANDONED = "abandoned"


class InputType(StrEnum):
    STRING = "string"
    EMAIL = "email"
    DATE = "date"
    CLIENT = "client"
    PROFESSIONAL = "professional"
    ACCOUNT = "account"
    CONVERSATION = "conversation"
    APPOINTMENT = "appointment"


class FieldType(StrEnum):
    STRING = "string"
    EMAIL = "email"
    DATE = "date"
    NUMBER = "number"
    BOOLEAN = "boolean"
    CHOICE = "choice"
    TEXT = "text"


class TransitionKind(StrEnum):
    """What kind of edge a transition is; coverage and graphs label edges by it."""

    NEXT = "next"
    CASE = "case"
    OPTION = "option"
    ERROR = "error"
    OUTCOME = "outcome"


@dataclass(frozen=True, slots=True)
class Pos:
    """A 1-based line and column in the flow file."""

    line: int
    column: int


@dataclass(frozen=True, slots=True)
class SourceMap:
    """Positions of every value and every mapping key of the flow document."""

    values: Mapping[NodePath, Pos] = field(default_factory=dict)
    keys: Mapping[NodePath, Pos] = field(default_factory=dict)

    def pos(self, path: NodePath) -> Pos:
        """Return the position of the value at ``path``, or of its nearest ancestor."""
        for end in range(len(path), -1, -1):
            found = self.values.get(path[:end])
            if found is not None:
                return found
        return Pos(1, 1)

    def key_pos(self, path: NodePath) -> Pos:
        """Return the position of the key naming ``path`` (falls back to its value)."""
        found = self.keys.get(path)
        return found if found is not None else self.pos(path)


@dataclass(frozen=True, slots=True)
class Transition:
    """One outgoing edge: go to ``target`` (when ``when`` holds, if given).

    ``label`` names the edge within its step: the option id, the case number
    (``1``, ``2``, ...), the error code, the sub-flow outcome, or ``next``.
    ``node`` is where it is written, for messages.
    """

    kind: TransitionKind
    label: str
    target: str
    when: str | None
    node: NodePath

    @property
    def key(self) -> str:
        """Return a stable id of this edge within its step (used by coverage)."""
        return f"{self.kind}:{self.label}"


@dataclass(frozen=True, slots=True)
class InputSpec:
    id: str
    type: InputType
    label: str
    required: bool


@dataclass(frozen=True, slots=True)
class FactRef:
    """A named platform query a flow declares: ``facts.<name>`` in expressions."""

    name: str
    fact: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label: str
    next: tuple[Transition, ...]
    when: str | None


@dataclass(frozen=True, slots=True)
class Field:
    id: str
    type: FieldType
    label: str
    required: bool
    pattern: str | None
    choices: tuple[str, ...]
    help: str


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    label: str
    check: str | None


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int
    backoff_seconds: float


@dataclass(frozen=True, slots=True)
class InfoStep:
    id: str
    text: str
    next: tuple[Transition, ...]
    type: StepType = StepType.INFO


@dataclass(frozen=True, slots=True)
class QuestionStep:
    id: str
    text: str
    options: tuple[Option, ...]
    answer: str | None
    type: StepType = StepType.QUESTION

    def option(self, option_id: str) -> Option | None:
        """Return the option with this id, if there is one."""
        for option in self.options:
            if option.id == option_id:
                return option
        return None


@dataclass(frozen=True, slots=True)
class FormStep:
    id: str
    text: str
    fields: tuple[Field, ...]
    next: tuple[Transition, ...]
    type: StepType = StepType.FORM


@dataclass(frozen=True, slots=True)
class ChecklistStep:
    id: str
    text: str
    items: tuple[Item, ...]
    next: tuple[Transition, ...]
    type: StepType = StepType.CHECKLIST


@dataclass(frozen=True, slots=True)
class ActionStep:
    id: str
    action: str
    args: Mapping[str, Any]
    confirm: str | None
    text: str
    next: tuple[Transition, ...]
    on_error: tuple[Transition, ...]
    retry: Retry | None
    type: StepType = StepType.ACTION

    def error_target(self, code: str) -> Transition | None:
        """Return the mapping for an error code, falling back to ``default``."""
        default: Transition | None = None
        for transition in self.on_error:
            if transition.label == code:
                return transition
            if transition.label == "default":
                default = transition
        return default


@dataclass(frozen=True, slots=True)
class BranchStep:
    id: str
    next: tuple[Transition, ...]
    type: StepType = StepType.BRANCH


@dataclass(frozen=True, slots=True)
class SubflowStep:
    id: str
    flow: str
    inputs: Mapping[str, Any]
    next: tuple[Transition, ...]
    type: StepType = StepType.SUBFLOW

    def outcome_target(self, outcome: str) -> Transition | None:
        """Return the mapping for a sub-flow outcome, falling back to ``default``."""
        default: Transition | None = None
        for transition in self.next:
            if transition.label == outcome:
                return transition
            if transition.label == "default":
                default = transition
        return default


@dataclass(frozen=True, slots=True)
class EndStep:
    id: str
    outcome: Outcome
    text: str
    type: StepType = StepType.END


Step = InfoStep | QuestionStep | FormStep | ChecklistStep | ActionStep | BranchStep | SubflowStep | EndStep


def transitions(step: Step) -> tuple[Transition, ...]:
    """Return every outgoing edge of a step, in the order they are written."""
    match step:
        case QuestionStep(options=options):
            return tuple(t for option in options for t in option.next)
        case ActionStep(next=next_, on_error=on_error):
            return next_ + on_error
        case EndStep():
            return ()
        case _:
            return step.next


@dataclass(frozen=True, slots=True)
class Flow:
    """A loaded, schema-valid flow. ``content_hash`` identifies the exact text."""

    id: str
    version: int
    title: str
    description: str
    audience: tuple[str, ...]
    tags: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    facts: tuple[FactRef, ...]
    start: str
    steps: Mapping[str, Step]
    path: str
    content_hash: str
    source: SourceMap = field(default_factory=SourceMap)

    def step(self, step_id: str) -> Step | None:
        """Return the step with this id, if there is one."""
        return self.steps.get(step_id)

    def fact(self, name: str) -> FactRef | None:
        """Return the declared fact with this name, if there is one."""
        for fact in self.facts:
            if fact.name == name:
                return fact
        return None
