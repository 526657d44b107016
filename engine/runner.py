"""Run a session: a pure step function over plain data.

``await runner.advance(flow, state, user_input, ports)`` takes the session as
data and one input from the person, and returns the new session data and the
view to show. Nothing is kept between calls, so the platform can store the
state as JSON (``state.to_dict()``), run several workers, and resume a session
days later.

The state
    ``frames`` — the flow and its sub-flows as they were entered (never
    removed, so going back into a finished sub-flow works);
    ``visits`` — the path, one entry per step shown or passed, with time;
    going back truncates it;
    ``records`` — answers and action results, each tied to the visit that
    produced it; going back drops those at or after the target;
    ``executions`` — every action that ran; never dropped, so that going back
    over an action can say it already happened and a re-run gets a new
    idempotency key;
    ``transcript`` — the append-only story of the session for people and audit.

Why this shape: going back to any earlier step, and a doubled request, must
both be safe without any undo. An action's idempotency key is
``<session>:<frame>:<step>:<n>`` where ``n`` counts earlier executions of the
step: two copies of the same request carry the same key (the platform runs
the action once and returns the recorded result to the second), while a
fresh confirmation after going back gets a new one.

Inputs carry the id of the step they answer; an input for a step that is no
longer current (the second of two clicks) changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import partial
from typing import Any, Generic, NamedTuple, TypeVar, overload

from lotse.engine import jsontext
from lotse.engine.expressions import Evaluator, ExpressionError
from lotse.engine.model import (
    ActionStep,
    BranchStep,
    ChecklistStep,
    EndStep,
    FactRef,
    Field,
    FieldType,
    Flow,
    FormStep,
    InfoStep,
    InputSpec,
    Outcome,
    QuestionStep,
    Step,
    StepType,
    SubflowStep,
    Transition,
    transitions,
)
from lotse.engine.ports import ActionResult, Ports
from lotse.engine.problems import Problem, ProblemCode
from lotse.engine.render import Renderer
from lotse.engine.views import (
    AnyView,
    ChecklistView,
    ConfirmView,
    EndView,
    FieldView,
    FormView,
    HistoryEntry,
    InfoView,
    ItemView,
    Notice,
    NoticeCode,
    OptionView,
    QuestionView,
    View,
)

#: Steps passed without the person in one call before the runner gives up.
MAX_AUTOMATIC_STEPS = 10_000
MAX_FIELD_LENGTH = 10_000
CANCELLED = "cancelled"
INVALID_ARGUMENTS = "invalid_arguments"

#: The layout of ``SessionState.to_dict`` data (its ``format`` key; data without it is format 1).
STATE_FORMAT = 2

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# ---------------------------------------------------------------------------
# inputs


@dataclass(frozen=True, slots=True)
class Continue:
    """Go on from an ``info`` step."""

    step: str | None = None


@dataclass(frozen=True, slots=True)
class Choose:
    """Pick an option of a ``question``."""

    option: str
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Submit:
    """Send the values of a ``form``."""

    values: Mapping[str, Any]
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Tick items of a ``checklist`` (``all_items`` ticks every item)."""

    items: tuple[str, ...] = ()
    all_items: bool = False
    step: str | None = None


@dataclass(frozen=True, slots=True)
class Confirm:
    """Confirm an ``action``."""

    step: str | None = None


@dataclass(frozen=True, slots=True)
class Cancel:
    """Decline an ``action``; routed like the error code ``cancelled``."""

    step: str | None = None


@dataclass(frozen=True, slots=True)
class Back:
    """Go back to an earlier visit (``None``: the previous step that waited for the person)."""

    visit: int | None = None


UserInput = Continue | Choose | Submit | Tick | Confirm | Cancel | Back


def input_from_data(data: Any) -> UserInput | Problem:
    """Parse an input sent as JSON: ``{"step": s, "choose"|"submit"|"tick"|"confirm"|"cancel"|"continue"|"back": ...}``."""
    if not isinstance(data, Mapping):
        return Problem(ProblemCode.INVALID_INPUT, "an input is a JSON object")
    step = data.get("step")
    step = step if isinstance(step, str) else None
    if "choose" in data and isinstance(data["choose"], str):
        return Choose(data["choose"], step)
    if "submit" in data and isinstance(data["submit"], Mapping):
        return Submit(dict(data["submit"]), step)
    if "tick" in data:
        ticked = data["tick"]
        if ticked == "all":
            return Tick((), True, step)
        if isinstance(ticked, list) and all(isinstance(t, str) for t in ticked):
            return Tick(tuple(ticked), False, step)
    if data.get("confirm") is True:
        return Confirm(step)
    if data.get("cancel") is True:
        return Cancel(step)
    if data.get("continue") is True:
        return Continue(step)
    if "back" in data:
        target = data["back"]
        if target is None or target is True:
            return Back(None)
        if isinstance(target, int) and not isinstance(target, bool):
            return Back(target)
    return Problem(ProblemCode.INVALID_INPUT, "unrecognised input", "Send one of choose, submit, tick, confirm, cancel, continue, back.")


# ---------------------------------------------------------------------------
# state

_T = TypeVar("_T")


def row_maker(cls: type[_T]) -> Callable[[Sequence[Any]], _T]:
    """Return a function building one state entry (or a frozen slots dataclass) from a full row of its fields.

    State entries (:class:`Visit`, :class:`Record`, ...) are named tuples:
    a full row becomes one through ``tuple.__new__`` without a Python-level
    call per field. For a frozen slots dataclass the slots are set directly
    (its ``__init__`` goes through ``object.__setattr__`` for each field). A
    row of another length goes through the class, so its defaults apply.
    """
    if issubclass(cls, tuple):
        size = len(cls._fields)  # type: ignore[attr-defined]
        new_tuple = tuple.__new__

        def make_tuple(row: Sequence[Any]) -> _T:
            if len(row) != size:
                return cls(*row)
            return new_tuple(cls, row)

        return make_tuple
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    scope: dict[str, Any] = {"cls": cls, "new": object.__new__}
    lines = [f"def make(row, cls=cls, new=new, {', '.join(f'set_{i}=cls.{n}.__set__' for i, n in enumerate(names))}):"]
    lines.append(f"    if len(row) != {len(names)}:")
    lines.append("        return cls(*row)")
    lines.append("    obj = new(cls)")
    lines.extend(f"    set_{i}(obj, row[{i}])" for i in range(len(names)))
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # noqa: S102 - generated from the dataclass's own field names
    maker: Callable[[Sequence[Any]], _T] = scope["make"]
    return maker


def rows_maker(cls: type[_T]) -> Callable[[Iterable[Sequence[Any]]], tuple[_T, ...]]:
    """Return a function building a tuple of state entries from full rows, as :func:`row_maker` does.

    When every row is full, the entries are made by ``map`` over
    ``tuple.__new__`` (no Python-level call per row), which is what makes
    restoring a long session cheap; otherwise each row of another length
    goes through the class.
    """
    if not issubclass(cls, tuple):
        one = row_maker(cls)
        return lambda rows: tuple(map(one, rows))
    size = len(cls._fields)  # type: ignore[attr-defined]
    make_one = partial(tuple.__new__, cls)

    def make(rows: Iterable[Sequence[Any]]) -> tuple[_T, ...]:
        rows = rows if isinstance(rows, list | tuple) else list(rows)
        if all(map(size.__eq__, map(len, rows))):
            return tuple(map(make_one, rows))
        return tuple(make_one(row) if len(row) == size else cls(*row) for row in rows)

    return make


class Frame(NamedTuple):
    """A flow as entered in this session: the root flow (index 0) or a sub-flow."""

    flow_id: str
    version: int
    content_hash: str
    inputs: Mapping[str, Any]
    parent: int | None = None
    call_step: str | None = None


class Visit(NamedTuple):
    """One step on the path. ``auto``: passed without the person; ``manual``: never answer it automatically."""

    frame: int
    step: str
    at: str
    auto: bool = False
    manual: bool = False
    via: str | None = None


class Record(NamedTuple):
    """An answer (``kind="answer"``) or an action's result/error (``kind="result"``)."""

    visit: int
    frame: int
    step: str
    kind: str
    value: Any
    auto: bool = False
    error: str | None = None


class Execution(NamedTuple):
    """An action that ran; kept even when the person goes back."""

    visit: int
    frame: int
    flow_id: str
    step: str
    action: str
    key: str
    at: str
    error: str | None
    value: Any
    attempts: int


class Event(NamedTuple):
    """One line of the transcript. (``data`` defaults to one shared empty mapping: never mutate it.)"""

    at: str
    kind: str
    flow: str
    step: str
    data: Mapping[str, Any] = {}


_new_tuple = tuple.__new__
_new_object = object.__new__
_new_frame = partial(tuple.__new__, Frame)
_make_execution = row_maker(Execution)
_make_visit = row_maker(Visit)
_make_frames = rows_maker(Frame)
_make_visits = rows_maker(Visit)
_make_records = rows_maker(Record)
_make_executions = rows_maker(Execution)
_make_events = rows_maker(Event)


def _checked_rows(rows: Sequence[Sequence[Any]], cls: type[tuple[Any, ...]]) -> Sequence[Sequence[Any]]:
    """Return stored rows as they are when every one is full, else the entries built now (defaults apply)."""
    size = len(cls._fields)  # type: ignore[attr-defined]
    if isinstance(rows, list) and all(map(size.__eq__, map(len, rows))):
        return rows
    return tuple(cls._make(row) if len(row) == size else cls(*row) for row in rows)  # type: ignore[attr-defined]


_E = TypeVar("_E", bound=tuple[Any, ...])


class _Entries(Generic[_E]):
    """A field of :class:`SessionState` holding entries that are built from their JSON rows only when read.

    ``visits``, ``records``, ``executions`` and ``transcript`` are restored
    from JSON on every step, but the runner reads them by position and
    appends to them; it works on the rows as stored (:func:`_rows`), and the
    named tuples are built the first time someone reads the field (the
    platform showing a transcript, a test comparing states). The rows stay
    as they were set (so that ``to_dict`` writes them unchanged); the entries
    are kept beside them. Any sequence of full rows may be set: JSON lists,
    tuples, entries, or these mixed; a tuple of entries is used as it is.
    """

    def __init__(
        self,
        make: Callable[[Iterable[Sequence[Any]]], tuple[_E, ...]],
        expand: Callable[[object, Sequence[Sequence[Any]]], Sequence[Sequence[Any]]] | None = None,
    ) -> None:
        self._make = make
        self._expand = expand
        self._name = ""
        self._built = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._name = f"_{name}_rows"
        self._built = f"_{name}_entries"

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> tuple[_E, ...]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> tuple[_E, ...]: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> tuple[_E, ...]:
        if obj is None:
            return ()  # the dataclass's default
        found = obj.__dict__
        built = found.get(self._built)
        if built is None:
            stored = found[self._name]
            if type(stored) is not tuple:
                stored = self._make(self._expand(obj, stored) if self._expand else stored)
            built = found[self._built] = stored
        return built  # type: ignore[no-any-return]

    def __set__(self, obj: object, value: Sequence[Any]) -> None:
        obj.__dict__[self._name] = value
        obj.__dict__.pop(self._built, None)


def _expand_actions(state: object, rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """Return transcript rows with the data of each ``action`` event rebuilt from its execution.

    The data of an action event (action, key, error, result, attempts) is
    the execution's own, so the state stores it once, in ``executions``, and
    the event holds the execution's index instead (format 2). An event with
    its data written out, as stored before, is read as it is.
    """
    if not any(type(row[4]) is int for row in rows):
        return rows
    executions = state.__dict__["_executions_rows"]
    expanded: list[Sequence[Any]] = []
    for row in rows:
        data = row[4]
        if type(data) is int and row[1] == "action":
            row = (*row[:4], _action_data(executions[data]) if 0 <= data < len(executions) else {})
        expanded.append(row)
    return expanded


def _action_data(execution: Sequence[Any]) -> dict[str, Any]:
    """Return the data of the ``action`` event of an execution (a row or an :class:`Execution`)."""
    _visit, _frame, _flow, _step, action, key, _at, error, value, attempts = execution
    return {"action": action, "key": key, "error": error, "result": value, "attempts": attempts}


def _as_lists(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    return list(map(list, rows))


def _as_is(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    return rows


def _rows(state: SessionState, name: str) -> Sequence[Sequence[Any]]:
    """Return a lazily built field of a state as stored (rows or entries), without building entries."""
    return state.__dict__[f"_{name}_rows"]  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SessionState:
    """A session as plain data; ``to_dict``/``from_dict`` round-trip through JSON.

    Its entries (frames, visits, records, executions, transcript events) are
    named tuples, stored as JSON arrays of their fields in order; records,
    executions and the transcript are built from those arrays only when
    read (:class:`_Entries`).
    """

    session_id: str
    flow_id: str
    version: int
    content_hash: str
    locale: str
    user: Mapping[str, Any]
    org: Mapping[str, Any]
    frames: tuple[Frame, ...]
    visits: _Entries[Visit] = _Entries(_make_visits)
    records: _Entries[Record] = _Entries(_make_records)
    executions: _Entries[Execution] = _Entries(_make_executions)
    transcript: _Entries[Event] = _Entries(_make_events, _expand_actions)
    outcome: Outcome | None = None

    @property
    def position(self) -> Visit:
        """Return the current visit: the step shown now (or the end step)."""
        return self.visits[-1]

    def path(self, frame: int = 0) -> list[str]:
        """Return the steps walked in a frame, in order."""
        return [visit.step for visit in self.visits if visit.frame == frame]

    def to_dict(self) -> dict[str, Any]:
        """Return the state as JSON-ready data (each entry a list of its fields in order)."""
        return self._data(_as_lists)

    def _data(self, rows: Callable[[Sequence[Sequence[Any]]], Sequence[Sequence[Any]]]) -> dict[str, Any]:
        stored = self.__dict__
        return {
            "format": STATE_FORMAT,
            "session_id": self.session_id,
            "flow_id": self.flow_id,
            "version": self.version,
            "content_hash": self.content_hash,
            "locale": self.locale,
            "user": self.user,
            "org": self.org,
            "frames": rows(self.frames),
            "visits": rows(stored["_visits_rows"]),
            "records": rows(stored["_records_rows"]),
            "executions": rows(stored["_executions_rows"]),
            "transcript": rows(stored["_transcript_rows"]),
            "outcome": self.outcome.value if self.outcome else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SessionState:
        """Rebuild the state from :meth:`to_dict` data (of this format or of format 1, stored before it)."""
        outcome = data.get("outcome")
        stored_format = data.get("format", 1)
        if stored_format == STATE_FORMAT:
            # Written by to_dict: every row is full, so the rows are kept as they are (see _Entries).
            return _new_state(
                data["session_id"], data["flow_id"], data["version"], data["content_hash"], data["locale"],
                data["user"], data["org"], tuple(map(_new_frame, data["frames"])),
                data["visits"], data["records"], data["executions"], data["transcript"],
                Outcome(outcome) if outcome else None,
            )  # fmt: skip
        if stored_format != 1:
            raise ValueError(f"unknown session state format {stored_format!r}")
        return _new_state(
            data["session_id"], data["flow_id"], data["version"], data["content_hash"], data["locale"],
            data["user"], data["org"],
            _make_frames(data["frames"]),
            _checked_rows(data["visits"], Visit),
            _checked_rows(data["records"], Record),
            _checked_rows(data["executions"], Execution),
            _checked_rows(data["transcript"], Event),
            Outcome(outcome) if outcome else None,
        )  # fmt: skip

    def to_json(self) -> str:
        """Return the state as compact JSON text: ``to_dict`` encoded (with ``orjson`` when installed).

        The rows are encoded as they are stored (JSON lists, or entries, which
        are tuples and encode as arrays), without the copies ``to_dict`` makes.
        """
        data = self._data(_as_is)
        # Plain tuples: orjson encodes named tuples only through a Python callback (see jsontext).
        data["frames"] = list(map(tuple, self.frames))
        return jsontext.dumps(data)

    @classmethod
    def from_json(cls, text: str | bytes) -> SessionState:
        """Rebuild the state from JSON text of :meth:`to_dict` data (as :meth:`to_json` writes it)."""
        return cls.from_dict(jsontext.loads(text))


def _new_state(
    session_id: str, flow_id: str, version: int, content_hash: str, locale: str,
    user: Mapping[str, Any], org: Mapping[str, Any], frames: tuple[Frame, ...],
    visits: Sequence[Sequence[Any]], records: Sequence[Sequence[Any]], executions: Sequence[Sequence[Any]],
    transcript: Sequence[Sequence[Any]], outcome: Outcome | None,
) -> SessionState:
    """Return a :class:`SessionState` without its frozen ``__init__`` (one ``setattr`` call per field)."""
    state = _new_object(SessionState)
    state.__dict__.update({
        "session_id": session_id, "flow_id": flow_id, "version": version, "content_hash": content_hash,
        "locale": locale, "user": user, "org": org, "frames": frames,
        "_visits_rows": visits, "_records_rows": records, "_executions_rows": executions,
        "_transcript_rows": transcript, "outcome": outcome,
    })
    return state  # fmt: skip


class InputsError(ValueError):
    """The inputs a flow was started with do not fit its ``inputs``."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = problems


def check_inputs(flow: Flow, inputs: Mapping[str, Any]) -> list[Problem]:
    """Return what is wrong with the inputs a flow is started with."""
    problems = []
    declared = {spec.id: spec for spec in flow.inputs}
    for spec in flow.inputs:
        if spec.required and inputs.get(spec.id) in (None, ""):
            problems.append(Problem(ProblemCode.INVALID_INPUT, f"the input '{spec.id}' is required", spec.label))
    for name in inputs:
        if name not in declared:
            problems.append(Problem(ProblemCode.INVALID_INPUT, f"the flow has no input '{name}'"))
    return problems


# ---------------------------------------------------------------------------
# the runner


class _Work:
    """A mutable working copy of the state for the duration of one call."""

    def __init__(self, state: SessionState) -> None:
        self.state = state
        self.frames = list(state.frames)
        stored = state.__dict__  # the rows as stored (see _Entries)
        # Visits as stored (rows) but the current one, which the runner reads by name and replaces.
        self.visits: list[Sequence[Any]] = list(stored["_visits_rows"])
        if self.visits and type(self.visits[-1]) is not Visit:
            self.visits[-1] = _make_visit(self.visits[-1])
        # Rows as stored (JSON lists) or entries, read by position: see _Entries.
        self.records: list[Sequence[Any]] = list(stored["_records_rows"])
        self.executions: list[Sequence[Any]] = list(stored["_executions_rows"])
        self.transcript: list[Sequence[Any]] = list(stored["_transcript_rows"])
        self.outcome = state.outcome
        self.notices: list[Notice] = []
        self.problems: list[Problem] = []
        self.form_errors: dict[str, str] = {}
        self.form_values: Mapping[str, Any] = {}
        self._values: tuple[list[Sequence[Any]], int, int, dict[str, Any], dict[str, Any]] | None = None

    def freeze(self) -> SessionState:
        s = self.state
        if self.visits:
            # Called last: the current visit becomes a plain row like the others (see SessionState.to_json).
            self.visits[-1] = tuple(self.visits[-1])
        return _new_state(
            s.session_id, s.flow_id, s.version, s.content_hash, s.locale, s.user, s.org,
            tuple(self.frames), self.visits, self.records, self.executions, self.transcript, self.outcome,
        )  # fmt: skip

    @property
    def here(self) -> Visit:
        return self.visits[-1]  # type: ignore[return-value]  # always a Visit (see __init__, _go, _back)

    def visit(self, index: int) -> Visit:
        """Return one visit as an entry (earlier ones are stored rows)."""
        return _make_visit(self.visits[index])

    def answers_and_results(self, frame: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """Return a frame's answers and action results by step (read-only: shared until the records change)."""
        cached = self._values
        records = self.records
        size = len(records)
        if cached is not None and cached[0] is records and cached[2] == frame and cached[1] <= size:
            if cached[1] == size:
                return cached[3], cached[4]
            # The records were only appended to since (going back makes a new list): read the new ones,
            # into copies, since the dicts handed out before stay as they were.
            start, answers, results = cached[1], dict(cached[3]), dict(cached[4])
        else:
            start, answers, results = 0, {}, {}
        # Records by position (rows or Record entries): visit, frame, step, kind, value, auto, error.
        for _visit, in_frame, step, found_kind, value, _auto, error in (records[start:] if start else records):
            if in_frame == frame:
                if found_kind == "answer":
                    answers[step] = {"error": error} if error else value
                elif found_kind == "result":
                    results[step] = {"error": error} if error else value
        self._values = (records, size, frame, answers, results)
        return answers, results

    def values(self, frame: int, kind: str) -> dict[str, Any]:
        """Return a frame's answers or results (or records of another kind) by step."""
        if kind == "answer":
            return self.answers_and_results(frame)[0]
        if kind == "result":
            return self.answers_and_results(frame)[1]
        found: dict[str, Any] = {}
        for _visit, in_frame, step, found_kind, value, _auto, error in self.records:
            if in_frame == frame and found_kind == kind:
                found[step] = {"error": error} if error else value
        return found

    def execution_entries(self) -> list[Execution]:
        """Return the executions as entries (built from stored rows; only where they are shown)."""
        return [_make_execution(row) for row in self.executions]


class _Stuck(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Runner:
    """Advances sessions. Holds only caches (compiled expressions, rendered text).

    One instance serves the whole application; it is safe to share between
    concurrent requests because every call works on its own copy of the state.
    """

    def __init__(self, evaluator: Evaluator | None = None, renderer: Renderer | None = None) -> None:
        self.evaluator = evaluator or Evaluator()
        self.renderer = renderer or Renderer(self.evaluator)
        self._facts_needed: dict[tuple[str, str], tuple[str, ...]] = {}
        self._returnable: dict[int, tuple[Flow, frozenset[str]]] = {}
        self._history_tables: dict[str, _HistoryTable] = {}
        self._history_made = 0  # entry pairs in the tables (they are dropped beyond 100,000)

    # -- public API --------------------------------------------------------

    async def start(
        self,
        flow: Flow,
        ports: Ports,
        *,
        session_id: str,
        inputs: Mapping[str, Any] | None = None,
        user: Mapping[str, Any] | None = None,
        org: Mapping[str, Any] | None = None,
        locale: str = "en",
    ) -> tuple[SessionState, AnyView]:
        """Start a session of ``flow`` and run it up to the first step that waits for the person.

        Raises :class:`InputsError` when the inputs do not fit the flow
        (call :func:`check_inputs` first to get the problems as data).
        """
        given = dict(inputs or {})
        problems = check_inputs(flow, given)
        if problems:
            raise InputsError(problems)
        now = ports.clock.now().isoformat()
        state = SessionState(
            session_id=session_id,
            flow_id=flow.id,
            version=flow.version,
            content_hash=flow.content_hash,
            locale=locale,
            user=dict(user or {}),
            org=dict(org or {}),
            frames=(Frame(flow.id, flow.version, flow.content_hash, given),),
            # Rows as the runner appends them (plain tuples in a list, see _Entries): not named tuples,
            # which orjson encodes only through a Python callback on every step after this one.
            visits=[_new_tuple(Visit, (0, flow.start, now, False, False, None))],
            transcript=[(now, "started", flow.id, flow.start, {"version": flow.version})],
        )
        work = _Work(state)
        flows = {0: flow}
        try:
            await self._settle(work, flows, ports)
        except _Stuck as stuck:
            self._end_stuck(work, flows, stuck.message, ports)
        view = await self._view(work, flows, ports)
        return work.freeze(), view

    async def advance(
        self, flow: Flow, state: SessionState, user_input: UserInput | None, ports: Ports
    ) -> tuple[SessionState, AnyView]:
        """Apply one input (``None``: just show where the session is) and run on to the next wait."""
        work = _Work(state)
        flows = await self._frame_flows(flow, state, ports)
        if state.outcome is None and user_input is not None:
            try:
                if isinstance(user_input, Back):
                    self._back(work, flows, user_input, ports)
                    await self._settle(work, flows, ports)
                else:
                    moved = await self._apply(work, flows, user_input, ports)
                    if moved:
                        await self._settle(work, flows, ports)
            except _Stuck as stuck:
                self._end_stuck(work, flows, stuck.message, ports)
        view = await self._view(work, flows, ports)
        return work.freeze(), view

    # -- the two doors to the platform (overridden by the scenario-test runner) -------

    async def resolve_fact(self, flow: Flow, ref: FactRef, args: Mapping[str, Any], ports: Ports) -> Any:
        """Resolve one declared fact through the fact port."""
        return await ports.facts.resolve_fact(ref.fact, args)

    async def run_action(
        self, flow: Flow, step: ActionStep, args: Mapping[str, Any], key: str, ports: Ports
    ) -> ActionResult:
        """Run one action through the action port."""
        return await ports.actions.run_action(step.action, args, idempotency_key=key)

    # -- frames and context ----------------------------------------------------

    async def _frame_flows(self, flow: Flow, state: SessionState, ports: Ports) -> dict[int, Flow]:
        flows = {0: flow}
        for index, frame in enumerate(state.frames[1:], start=1):
            sub = await ports.flows.get_flow(frame.flow_id)
            if sub is not None:
                flows[index] = sub
        return flows

    def _flow(self, work: _Work, flows: Mapping[int, Flow], frame: int) -> Flow:
        found = flows.get(frame)
        if found is None:
            raise _Stuck(f"the sub-flow '{work.frames[frame].flow_id}' is no longer available")
        return found

    def _step(self, work: _Work, flows: Mapping[int, Flow]) -> tuple[Flow, Step]:
        visit = work.here
        flow = self._flow(work, flows, visit.frame)
        step = flow.step(visit.step)
        if step is None:
            raise _Stuck(f"the flow '{flow.id}' has no step '{visit.step}'")
        return flow, step

    def _needed_facts(self, flow: Flow, step: Step) -> tuple[str, ...]:
        """Return the names of the facts a step's expressions and texts use, sorted."""
        key = (flow.content_hash, step.id)
        found = self._facts_needed.get(key)
        if found is None:
            declared = frozenset(f.name for f in flow.facts)
            needed: set[str] = set()
            for source, template in _step_expressions(step):
                analysis = self.evaluator.analyse(source, template=template)
                needed |= analysis.facts_used(declared)
            found = tuple(sorted(needed))
            self._facts_needed[key] = found
        return found

    async def _context(
        self, work: _Work, flows: Mapping[int, Flow], ports: Ports, here: tuple[Flow, Step] | None = None
    ) -> dict[str, Any]:
        """Return the expression context of the current step (``here``: its flow and step, when known)."""
        visit = work.here
        flow, step = here or self._step(work, flows)
        answers, results = work.answers_and_results(visit.frame)
        context: dict[str, Any] = {
            "inputs": work.frames[visit.frame].inputs,
            "answers": answers,
            "results": results,
            "facts": {},
            "user": work.state.user,
            "org": work.state.org,
        }
        needed = self._needed_facts(flow, step)
        if not needed:
            return context
        facts: dict[str, Any] = {}
        for name in needed:
            ref = flow.fact(name)
            if ref is None:
                continue
            try:
                args = self.evaluator.value(ref.args, context)
            except ExpressionError as error:
                self._note_problem(work, flow, step.id, f"the arguments of fact '{name}' failed: {error.message}")
                continue
            facts[name] = await self.resolve_fact(flow, ref, args if isinstance(args, dict) else {}, ports)
        context["facts"] = facts
        return context

    def _note_problem(self, work: _Work, flow: Flow, step: str, message: str) -> None:
        work.transcript.append((self._now_text(work), "problem", flow.id, step, {"message": message}))

    def _now_text(self, work: _Work) -> str:
        return work.here.at if work.visits else ""

    # -- moving ------------------------------------------------------------

    def _choose(
        self, work: _Work, flow: Flow, step_id: str, transitions: Iterable[Transition], context: Mapping[str, Any]
    ) -> Transition:
        for transition in transitions:
            if transition.when is None:
                return transition
            try:
                if self.evaluator.condition(transition.when, context):
                    return transition
            except ExpressionError as error:
                self._note_problem(work, flow, step_id, f"condition '{transition.when}' failed: {error.message}")
        raise _Stuck(f"no case of step '{step_id}' applies")

    def _go(self, work: _Work, transition: Transition, now: str, *, auto: bool = False) -> None:
        frame, step, at, was_auto, manual, _via = work.here
        visits = work.visits
        # The visit left becomes a plain row (read by position from now on); the new one is the current Visit.
        visits[-1] = (frame, step, at, was_auto or auto, manual, transition.key)
        visits.append(_new_tuple(Visit, (frame, transition.target, now, False, False, None)))

    def _record(self, work: _Work, kind: str, value: Any, *, auto: bool = False, error: str | None = None) -> None:
        here = work.here
        work.records.append((len(work.visits) - 1, here.frame, here.step, kind, value, auto, error))

    async def _apply(self, work: _Work, flows: Mapping[int, Flow], user_input: UserInput, ports: Ports) -> bool:
        flow, step = self._step(work, flows)
        answered = getattr(user_input, "step", None)
        if answered is not None and answered != step.id:
            work.notices.append(
                Notice(NoticeCode.ALREADY_ANSWERED, f"The step '{answered}' is not the current step; nothing changed.", answered)
            )
            return False
        moment = ports.clock.now()
        context = await self._context(work, flows, ports, (flow, step))
        now = "" if type(user_input) is Confirm else moment.isoformat()  # an action reads the clock itself
        match step, user_input:
            case InfoStep(), Continue():
                self._go(work, self._choose(work, flow, step.id, step.next, context), now)
                return True
            case QuestionStep(), Choose(option=option_id):
                option = step.option(option_id)
                if option is None or not self._visible(work, flow, step, option.when, context):
                    work.problems.append(Problem(ProblemCode.INVALID_INPUT, f"'{option_id}' is not an option here"))
                    return False
                self._record(work, "answer", option.id)
                work.transcript.append((now, "answered", flow.id, step.id, {"option": option.id}))
                self._go(work, self._choose(work, flow, step.id, option.next, context), now)
                return True
            case FormStep(), Submit(values=values):
                cleaned, errors = validate_form(step.fields, values)
                if errors:
                    work.form_errors = errors
                    work.form_values = values
                    work.problems.extend(
                        Problem(ProblemCode.INVALID_INPUT, f"{name}: {message}") for name, message in errors.items()
                    )
                    return False
                self._record(work, "answer", cleaned)
                work.transcript.append((now, "answered", flow.id, step.id, {"values": cleaned}))
                if self._needed_facts(flow, step):
                    # Facts are fresh at each step: their arguments may use the answer just given.
                    context = await self._context(work, flows, ports)
                else:
                    context["answers"] = work.values(work.here.frame, "answer")
                self._go(work, self._choose(work, flow, step.id, step.next, context), now)
                return True
            case ChecklistStep(), Tick(items=items, all_items=all_items):
                auto = self._auto_ticked(work, flow, step, context)
                ids = [item.id for item in step.items]
                ticked = set(ids) if all_items else set(items) | auto
                unknown = set(items) - set(ids)
                missing = [i for i in ids if i not in ticked]
                if unknown or missing:
                    message = (f"unknown items: {', '.join(sorted(unknown))}" if unknown
                               else f"still to tick: {', '.join(missing)}")  # fmt: skip
                    work.problems.append(Problem(ProblemCode.INVALID_INPUT, message))
                    return False
                self._record(work, "answer", ids)
                work.transcript.append((now, "answered", flow.id, step.id, {"ticked": ids}))
                self._go(work, self._choose(work, flow, step.id, step.next, context), now)
                return True
            case ActionStep(), Confirm():
                await self._execute(work, flow, step, context, ports)
                return True
            case ActionStep(), Cancel():
                work.transcript.append((now, "cancelled", flow.id, step.id, {"action": step.action}))
                self._record(work, "result", None, error=CANCELLED)
                self._route_error(work, flow, step, CANCELLED, now)
                return True
        expected = {
            StepType.INFO: "continue",
            StepType.QUESTION: "an option",
            StepType.FORM: "form values",
            StepType.CHECKLIST: "ticked items",
            StepType.ACTION: "confirm or cancel",
        }.get(step.type, "nothing")
        work.problems.append(
            Problem(ProblemCode.INVALID_INPUT, f"step '{step.id}' ({step.type}) expects {expected}")
        )
        return False

    def _visible(self, work: _Work, flow: Flow, step: Step, when: str | None, context: Mapping[str, Any]) -> bool:
        if when is None:
            return True
        try:
            return self.evaluator.condition(when, context)
        except ExpressionError as error:
            self._note_problem(work, flow, step.id, f"condition '{when}' failed: {error.message}")
            return False

    def _auto_ticked(self, work: _Work, flow: Flow, step: ChecklistStep, context: Mapping[str, Any]) -> set[str]:
        return {item.id for item in step.items if item.check and self._visible(work, flow, step, item.check, context)}

    def _route_error(self, work: _Work, flow: Flow, step: ActionStep, code: str, now: str) -> None:
        transition = step.error_target(code)
        if transition is None:
            raise _Stuck(f"the action '{step.action}' failed with '{code}' and step '{step.id}' maps no default")
        self._go(work, transition, now)

    async def _execute(
        self, work: _Work, flow: Flow, step: ActionStep, context: Mapping[str, Any], ports: Ports
    ) -> None:
        here = work.here
        runs = sum(1 for e in work.executions if e[1] == here.frame and e[3] == step.id)  # frame, step
        key = f"{work.state.session_id}:{here.frame}:{step.id}:{runs}"
        started = ports.clock.now()  # formatted only where it is written (a retry, or arguments that failed)
        try:
            args = self.evaluator.value(step.args, context)
            result = None
        except ExpressionError as error:
            args = {}
            result = ActionResult(error=INVALID_ARGUMENTS, message=error.message)
        attempts = 0
        if result is None:
            limit = step.retry.attempts if step.retry else 1
            backoff = step.retry.backoff_seconds if step.retry else 0.0
            while True:
                attempts += 1
                result = await self.run_action(flow, step, args, key, ports)
                if result.ok or not result.transient or attempts >= limit:
                    break
                work.transcript.append(
                    (started.isoformat(), "retry", flow.id, step.id,
                     {"action": step.action, "error": result.error, "attempt": attempts})
                )  # fmt: skip
                await ports.clock.sleep(backoff * (2 ** (attempts - 1)))
            now = ports.clock.now().isoformat()
        else:
            now = started.isoformat()
        executions = work.executions
        executions.append(
            (len(work.visits) - 1, here.frame, flow.id, step.id, step.action, key, now, result.error, result.value, attempts)
        )
        # The event's data is the execution's: stored once, as its index (see _Transcript).
        work.transcript.append((now, "action", flow.id, step.id, len(executions) - 1))
        if result.ok:
            self._record(work, "result", result.value)
            context = {**context, "results": {**context["results"], step.id: result.value}}
            self._go(work, self._choose(work, flow, step.id, step.next, context), now)
        else:
            code = result.error or "error"
            self._record(work, "result", None, error=code)
            self._route_error(work, flow, step, code, now)

    def _back(self, work: _Work, flows: Mapping[int, Flow], user_input: Back, ports: Ports) -> None:
        target = user_input.visit
        candidates = self._returnable_visits(work, flows)
        if target is None:
            manual = [i for i in candidates if not work.visit(i).auto]
            target = manual[-1] if manual else (candidates[-1] if candidates else None)
        if target is None or target not in candidates:
            work.problems.append(Problem(ProblemCode.INVALID_INPUT, "there is no such earlier step to go back to"))
            return
        now = ports.clock.now().isoformat()
        old = work.visit(target)
        for execution in work.execution_entries():
            if execution.visit >= target:
                work.notices.append(_already_ran(execution))
        work.transcript.append(
            (now, "back", self._flow(work, flows, old.frame).id, old.step, {"from": work.here.step})
        )
        del work.visits[target:]
        work.visits.append(Visit(old.frame, old.step, now, manual=True))
        work.records = [r for r in work.records if r[0] < target]  # by the visit that made it

    def _can_return_to(self, work: _Work, flows: Mapping[int, Flow], index: int) -> bool:
        visit = work.visit(index)
        flow = flows.get(visit.frame)
        return flow is not None and visit.step in self._returnable_steps(flow)

    def _returnable_steps(self, flow: Flow) -> frozenset[str]:
        """Return the ids of the steps one can go back to (all but branch, sub-flow and end), per flow object."""
        found = self._returnable.get(id(flow))
        if found is None or found[0] is not flow:
            if len(self._returnable) >= 1000:
                self._returnable.clear()
            steps = frozenset(
                s.id for s in flow.steps.values() if s.type not in (StepType.BRANCH, StepType.SUBFLOW, StepType.END)
            )
            found = self._returnable[id(flow)] = (flow, steps)
        return found[1]

    def _returnable_visits(self, work: _Work, flows: Mapping[int, Flow]) -> list[int]:
        """Return the indexes of the earlier visits one can go back to."""
        steps = {frame: self._returnable_steps(flow) for frame, flow in flows.items()}
        empty: frozenset[str] = frozenset()
        visits = work.visits
        if len(steps) == 1 and 0 in steps:
            root = steps[0]
            return [i for i, (frame, step, *_) in enumerate(visits[:-1]) if step in root and frame == 0]
        return [i for i, (frame, step, *_) in enumerate(visits[:-1]) if step in steps.get(frame, empty)]

    async def _settle(self, work: _Work, flows: dict[int, Flow], ports: Ports) -> None:
        """Pass every step that does not wait for the person."""
        for _ in range(MAX_AUTOMATIC_STEPS):
            flow, step = self._step(work, flows)
            here = work.here
            # The time is read only for the steps passed here (not for the step that waits).
            match step:
                case BranchStep():
                    now = ports.clock.now().isoformat()
                    context = await self._context(work, flows, ports, (flow, step))
                    self._go(work, self._choose(work, flow, step.id, step.next, context), now, auto=True)
                case SubflowStep():
                    now = ports.clock.now().isoformat()
                    await self._enter_subflow(work, flows, flow, step, ports, now)
                case EndStep() if here.frame != 0:
                    now = ports.clock.now().isoformat()
                    self._leave_subflow(work, flows, flow, step, now)
                case EndStep():
                    now = ports.clock.now().isoformat()
                    work.outcome = step.outcome
                    work.transcript.append((now, "ended", flow.id, step.id, {"outcome": step.outcome.value}))
                    return
                case QuestionStep(answer=answer) if answer and not here.manual:
                    now = ports.clock.now().isoformat()
                    context = await self._context(work, flows, ports, (flow, step))
                    chosen = self._auto_answer(work, flow, step, answer, context)
                    if chosen is None:
                        return
                    option = step.option(chosen)
                    assert option is not None
                    self._record(work, "answer", chosen, auto=True)
                    work.transcript.append((now, "answered_from_data", flow.id, step.id, {"option": chosen}))
                    self._go(work, self._choose(work, flow, step.id, option.next, context), now, auto=True)
                case ChecklistStep() if not here.manual and all(item.check for item in step.items):
                    now = ports.clock.now().isoformat()
                    context = await self._context(work, flows, ports, (flow, step))
                    if len(self._auto_ticked(work, flow, step, context)) != len(step.items):
                        return
                    ids = [item.id for item in step.items]
                    self._record(work, "answer", ids, auto=True)
                    work.transcript.append((now, "answered_from_data", flow.id, step.id, {"ticked": ids}))
                    self._go(work, self._choose(work, flow, step.id, step.next, context), now, auto=True)
                case _:
                    return
        raise _Stuck(f"more than {MAX_AUTOMATIC_STEPS} steps passed without waiting for the person")

    def _auto_answer(self, work: _Work, flow: Flow, step: QuestionStep, answer: str, context: Mapping[str, Any]) -> str | None:
        try:
            value = self.evaluator.value(answer, context)
        except ExpressionError as error:
            self._note_problem(work, flow, step.id, f"the answer expression failed: {error.message}")
            return None
        if not isinstance(value, str | int) or isinstance(value, bool):
            return None
        option = step.option(str(value))
        if option is None or not self._visible(work, flow, step, option.when, context):
            return None
        return option.id

    async def _enter_subflow(
        self, work: _Work, flows: dict[int, Flow], flow: Flow, step: SubflowStep, ports: Ports, now: str
    ) -> None:
        sub = await ports.flows.get_flow(step.flow)
        if sub is None:
            raise _Stuck(f"the sub-flow '{step.flow}' does not exist")
        if len(work.frames) > 1000 or _depth(work.frames, work.here.frame) >= 20:
            raise _Stuck("sub-flows nested too deeply")
        context = await self._context(work, flows, ports)
        try:
            inputs = self.evaluator.value(step.inputs, context)
        except ExpressionError as error:
            raise _Stuck(f"the inputs of sub-flow '{step.flow}' failed: {error.message}") from None
        index = len(work.frames)
        work.frames.append(Frame(sub.id, sub.version, sub.content_hash, inputs, work.here.frame, step.id))
        flows[index] = sub
        here = work.here
        work.visits[-1] = (here.frame, here.step, here.at, True, here.manual, "enter")
        work.visits.append(Visit(index, sub.start, now))
        work.transcript.append((now, "subflow_started", flow.id, step.id, {"flow": sub.id, "version": sub.version}))

    def _leave_subflow(self, work: _Work, flows: Mapping[int, Flow], sub: Flow, end: EndStep, now: str) -> None:
        frame = work.frames[work.here.frame]
        parent_index = frame.parent if frame.parent is not None else 0
        parent = self._flow(work, flows, parent_index)
        call = parent.step(frame.call_step or "")
        if not isinstance(call, SubflowStep):
            raise _Stuck(f"the sub-flow '{sub.id}' was not called from a sub-flow step")
        here = work.here
        work.visits[-1] = (here.frame, here.step, here.at, True, here.manual, f"outcome:{end.outcome}")
        work.records.append((len(work.visits) - 1, parent_index, call.id, "answer", end.outcome.value, True, None))
        work.transcript.append((now, "subflow_ended", sub.id, end.id, {"outcome": end.outcome.value}))
        transition = call.outcome_target(end.outcome.value)
        if transition is None:
            raise _Stuck(f"step '{call.id}' maps no step for the outcome '{end.outcome}' and no default")
        for index in range(len(work.visits) - 1, -1, -1):
            visit = work.visit(index)
            if visit.frame == parent_index and visit.step == call.id:
                work.visits[index] = (visit.frame, visit.step, visit.at, True, visit.manual, transition.key)
                break
        work.visits.append(Visit(parent_index, transition.target, now))

    def _end_stuck(self, work: _Work, flows: Mapping[int, Flow], message: str, ports: Ports) -> None:
        now = ports.clock.now().isoformat()
        here = work.here
        flow = flows.get(here.frame)
        work.outcome = Outcome.NOT_RESOLVED
        work.problems.append(Problem(ProblemCode.STUCK, message, "Run 'lotse flows check' on the flow."))
        work.transcript.append(
            (now, "stuck", flow.id if flow else work.frames[here.frame].flow_id, here.step, {"message": message})
        )

    # -- views -----------------------------------------------------------------

    def _text(self, work: _Work, flow: Flow, context_key: str, english: str, ports: Ports) -> str:
        if ports.translations is not None and work.state.locale not in ("", "en"):
            translated = ports.translations.translate(work.state.locale, f"{flow.id}/{context_key}", english)
            if translated:
                return translated
        return english

    def _html(self, work: _Work, flow: Flow, key: str, english: str, context: Mapping[str, Any], ports: Ports,
              *, inline: bool = False) -> str:  # fmt: skip
        if not english:
            return ""
        source = english if ports.translations is None else self._text(work, flow, key, english, ports)
        try:
            return self.renderer.render(source, context, inline=inline)
        except ExpressionError as error:
            self._note_problem(work, flow, key, f"text failed: {error.message}")
            if source != english:
                return self._html(work, flow, key, english, context, ports, inline=inline)
            return self.renderer.html(english.replace("{{", "{ {").replace("}}", "} }"), inline=inline)

    def _history(self, work: _Work, flows: Mapping[int, Flow]) -> tuple[HistoryEntry, ...]:
        # History entries are immutable and the same from one step to the next, so they are shared
        # between calls (and sessions) instead of being built anew for every visit: the table of a
        # flow holds, by visit and step, the entry without and with ``auto``, looked up without
        # building a key per visit.
        tables = self._history_tables
        if len(tables) > 1000 or self._history_made > 100_000:
            tables.clear()
            self._history_made = 0
        # The same choice of visits as _returnable_visits.
        visits = work.visits[:-1]
        frames = work.frames
        if len(frames) == 1:
            root = flows.get(0)
            if root is None:
                return ()
            steps, flow_id = self._returnable_steps(root), frames[0].flow_id
            table = _history_table(tables, flow_id, len(visits))
            return tuple([
                (table[i].get(row[1]) or self._history_pair(table, i, flow_id, row[1]))[row[3]]
                for i, row in enumerate(visits)
                if row[1] in steps
            ])  # fmt: skip
        flow_ids = [frame.flow_id for frame in frames]
        by_frame = {
            frame: (self._returnable_steps(flow), flow_ids[frame], _history_table(tables, flow_ids[frame], len(visits)))
            for frame, flow in flows.items()
        }  # fmt: skip
        history: list[HistoryEntry] = []
        for i, (frame, step, _at, auto, _manual, _via) in enumerate(visits):
            found = by_frame.get(frame)
            if found is not None and step in found[0]:
                steps, flow_id, table = found
                history.append((table[i].get(step) or self._history_pair(table, i, flow_id, step))[auto])
        return tuple(history)

    def _history_pair(self, table: _HistoryTable, visit: int, flow_id: str, step: str) -> tuple[HistoryEntry, HistoryEntry]:
        self._history_made += 1
        made = table[visit][step] = (HistoryEntry(visit, flow_id, step, False), HistoryEntry(visit, flow_id, step, True))
        return made

    async def _view(self, work: _Work, flows: dict[int, Flow], ports: Ports) -> AnyView:
        here = work.here
        flow = flows.get(here.frame)
        step = flow.step(here.step) if flow else None
        common: dict[str, Any] = {
            "flow": flow.id if flow else work.frames[here.frame].flow_id,
            "step": here.step,
            "visit": len(work.visits) - 1,
            "notices": tuple(work.notices),
            "history": self._history(work, flows),
            "problems": tuple(work.problems),
        }
        if flow is None or step is None or (work.outcome is not None and not isinstance(step, EndStep)):
            outcome = work.outcome or Outcome.NOT_RESOLVED
            message = work.problems[-1].message if work.problems else "no reason known"
            # No English text for people: the notice's code is theirs to translate; its text (and the
            # problems) are for the flow's authors.
            stuck = Notice(NoticeCode.CANNOT_GO_ON, f"This flow cannot go on: {message}", here.step)
            common["notices"] = (*common["notices"], stuck)
            return EndView(**common, text="", outcome=outcome)
        context = await self._context(work, flows, ports, (flow, step))
        key = step.id
        match step:
            case EndStep():
                return _new_view(EndView, common, text=self._html(work, flow, f"{key}/text", step.text, context, ports),
                                 outcome=work.outcome or step.outcome)  # fmt: skip
            case InfoStep():
                return _new_view(InfoView, common, text=self._html(work, flow, f"{key}/text", step.text, context, ports))
            case QuestionStep():
                options = tuple([
                    OptionView(o.id, self._html(work, flow, f"{key}/{o.id}/label", o.label, context, ports, inline=True))
                    for o in step.options
                    if o.when is None or self._visible(work, flow, step, o.when, context)
                ])  # fmt: skip
                suggested = self._auto_answer(work, flow, step, step.answer, context) if step.answer else None
                if suggested is not None:
                    common["notices"] = (
                        *common["notices"],
                        Notice(NoticeCode.ANSWERED_FROM_DATA, f"Platform data suggests '{suggested}'.", step.id),
                    )
                return _new_view(QuestionView, common,
                                 text=self._html(work, flow, f"{key}/text", step.text, context, ports),
                                 options=options, suggested=suggested)  # fmt: skip
            case FormStep():
                fields = tuple(
                    FieldView(
                        f.id, f.type,
                        self._html(work, flow, f"{key}/{f.id}/label", f.label, context, ports, inline=True),
                        f.required, f.choices,
                        self._html(work, flow, f"{key}/{f.id}/help", f.help, context, ports, inline=True),
                        work.form_values.get(f.id), work.form_errors.get(f.id, ""),
                    )
                    for f in step.fields
                )
                return FormView(**common, text=self._html(work, flow, f"{key}/text", step.text, context, ports),
                                fields=fields)  # fmt: skip
            case ChecklistStep():
                auto = self._auto_ticked(work, flow, step, context)
                items = tuple(
                    ItemView(i.id, self._html(work, flow, f"{key}/{i.id}/label", i.label, context, ports, inline=True),
                             i.id in auto, i.id in auto)
                    for i in step.items
                )
                return ChecklistView(**common, text=self._html(work, flow, f"{key}/text", step.text, context, ports),
                                     items=items)  # fmt: skip
            case ActionStep():
                try:
                    args = self.evaluator.value(step.args, context)
                except ExpressionError:
                    args = {}
                previous = tuple([
                    _already_ran(_make_execution(e)) for e in work.executions if e[1] == here.frame and e[3] == step.id
                ])  # fmt: skip
                confirm = step.confirm or f"Run {step.action}?"
                return _new_view(
                    ConfirmView,
                    common,
                    text=self._html(work, flow, f"{key}/text", step.text, context, ports),
                    action=step.action,
                    confirm=self._html(work, flow, f"{key}/confirm", confirm, context, ports),
                    args=args if isinstance(args, dict) else {},
                    previous_runs=previous,
                )
        # Branch or sub-flow steps are never shown: only a stuck session ends here.
        return EndView(**common, text="", outcome=work.outcome or Outcome.NOT_RESOLVED)


_HistoryTable = list[dict[str, tuple[HistoryEntry, HistoryEntry]]]


def _history_table(tables: dict[str, _HistoryTable], flow_id: str, visits: int) -> _HistoryTable:
    """Return the shared history entries of a flow, by visit then step, with room for ``visits`` visits."""
    table = tables.get(flow_id)
    if table is None:
        table = tables[flow_id] = []
    if len(table) < visits:
        table.extend({} for _ in range(visits - len(table)))
    return table


_V = TypeVar("_V", bound=View)


def _new_view(cls: type[_V], common: Mapping[str, Any], **fields: Any) -> _V:
    """Return a view without its frozen ``__init__`` (one ``setattr`` call per field): every field is given."""
    view = _new_object(cls)
    view.__dict__.update(common, **fields)
    return view


def _depth(frames: list[Frame], index: int) -> int:
    depth = 0
    parent = frames[index].parent
    while parent is not None and depth < 100:
        depth += 1
        parent = frames[parent].parent
    return depth


def _already_ran(execution: Execution) -> Notice:
    time = execution.at[11:16] if len(execution.at) >= 16 else execution.at
    if execution.error:
        text = f"'{execution.action}' was already tried at {time} and failed ({execution.error})."
    else:
        text = f"'{execution.action}' already ran at {time}; going back does not undo it."
    return Notice(NoticeCode.ACTION_ALREADY_RAN, text, execution.step, execution.at)


def _step_expressions(step: Step) -> Iterable[tuple[str, bool]]:
    """Yield (source, is_template) for every expression and template of a step."""
    texts: list[str] = []
    match step:
        case QuestionStep():
            texts = [step.text, *(o.label for o in step.options)]
            if step.answer:
                yield step.answer, True
            for option in step.options:
                if option.when:
                    yield option.when, False
        case FormStep():
            texts = [step.text, *(f.label for f in step.fields), *(f.help for f in step.fields)]
        case ChecklistStep():
            texts = [step.text, *(i.label for i in step.items)]
            for item in step.items:
                if item.check:
                    yield item.check, False
        case ActionStep():
            texts = [step.text, step.confirm or ""]
            yield from _templates_in(step.args)
        case SubflowStep():
            yield from _templates_in(step.inputs)
        case InfoStep() | EndStep():
            texts = [step.text]
        case BranchStep():
            pass
    for text in texts:
        if "{{" in text or "{%" in text:
            yield text, True
    for transition in transitions(step):
        if transition.when:
            yield transition.when, False


def _templates_in(value: Any) -> Iterable[tuple[str, bool]]:
    if isinstance(value, str):
        if "{{" in value or "{%" in value:
            yield value, True
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _templates_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _templates_in(item)


def validate_form(fields: Iterable[Field], values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Check and convert form values; return (clean values, {field: error})."""
    cleaned: dict[str, Any] = {}
    errors: dict[str, str] = {}
    known = set()
    for spec in fields:
        known.add(spec.id)
        raw = values.get(spec.id)
        if raw is None or raw == "":
            if spec.required:
                errors[spec.id] = "required"
            continue
        value, error = _convert(spec, raw)
        if error:
            errors[spec.id] = error
        else:
            cleaned[spec.id] = value
    for name in values:
        if name not in known:
            errors[name] = "no such field"
    return cleaned, errors


def _convert(spec: Field, raw: Any) -> tuple[Any, str]:
    if isinstance(raw, str) and len(raw) > MAX_FIELD_LENGTH:
        return None, "too long"
    match spec.type:
        case FieldType.NUMBER:
            if isinstance(raw, int | float) and not isinstance(raw, bool):
                return raw, ""
            try:
                text = str(raw).strip().replace(",", ".")
                number = float(text)
            except ValueError:
                return None, "not a number"
            return (int(number) if number.is_integer() and "." not in text else number), ""
        case FieldType.BOOLEAN:
            if isinstance(raw, bool):
                return raw, ""
            lowered = str(raw).strip().lower()
            if lowered in ("true", "yes", "y", "1", "on"):
                return True, ""
            if lowered in ("false", "no", "n", "0", "off"):
                return False, ""
            return None, "yes or no"
        case FieldType.DATE:
            try:
                return date.fromisoformat(str(raw).strip()).isoformat(), ""
            except ValueError:
                return None, "not a date (YYYY-MM-DD)"
        case FieldType.CHOICE:
            if str(raw) not in spec.choices:
                return None, f"one of: {', '.join(spec.choices)}"
            return str(raw), ""
    if not isinstance(raw, str):
        return None, "not a text"
    text = raw.strip()
    if spec.type is FieldType.EMAIL and not _EMAIL.match(text):
        return None, "not an e-mail address"
    if spec.pattern:
        try:
            if re.fullmatch(spec.pattern, text) is None:
                return None, "does not have the expected form"
        except re.error:
            return None, "the field's pattern is broken"
    return text, ""


def describe_inputs(flow: Flow) -> tuple[InputSpec, ...]:
    """Return the inputs a flow needs when it starts (for a start form)."""
    return flow.inputs
