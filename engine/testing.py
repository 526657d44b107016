"""Scenario tests of flows (``flows/tests/<flow>.yaml``) and their coverage.

A scenario walks a flow with stubbed facts (by the name the flow declares
them under, or the catalogue's fact name) and stubbed action results (by step
id; without a stub an action returns its catalogue example), feeding the
listed answers to the steps that wait for the person. Nothing touches a
platform. A failure says where expectation and reality parted: the step
where the answers ran out or were refused, the first differing step of the
path, the first differing action.

Coverage counts, per flow, the steps and transitions (each option, case,
error mapping and sub-flow outcome) that some case walked.

For pytest, :func:`collect_cases` lists every case of a flows directory and
:func:`run_case_sync` runs one, so a test module can parametrise over them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lotse.engine.catalogue import InMemoryCatalogue
from lotse.engine.loader import parse_yaml
from lotse.engine.local import DirectoryFlows, FakeClock, RecordingExecutor, StaticFacts
from lotse.engine.model import ActionStep, FactRef, Flow, transitions
from lotse.engine.ports import ActionResult, Catalogue, Ports
from lotse.engine.problems import Problem, ProblemCode
from lotse.engine.runner import (
    Cancel,
    Choose,
    Confirm,
    Continue,
    Runner,
    SessionState,
    Submit,
    Tick,
    UserInput,
)
from lotse.engine.views import (
    AnyView,
    ChecklistView,
    ConfirmView,
    EndView,
    FormView,
    InfoView,
    QuestionView,
)

MAX_WALK = 10_000


@dataclass(frozen=True)
class Expectation:
    outcome: str | None = None
    actions: tuple[str, ...] | None = None
    path: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ScenarioCase:
    """One case of a scenario file."""

    flow_id: str
    name: str
    file: str
    line: int
    inputs: Mapping[str, Any] = field(default_factory=dict)
    facts: Mapping[str, Any] = field(default_factory=dict)
    results: Mapping[str, Any] = field(default_factory=dict)
    answers: tuple[Any, ...] = ()
    expect: Expectation = field(default_factory=Expectation)
    user: Mapping[str, Any] = field(default_factory=dict)
    org: Mapping[str, Any] = field(default_factory=dict)
    locale: str = "en"

    @property
    def id(self) -> str:
        """Return a readable test id: ``<flow>: <case name>``."""
        return f"{self.flow_id}: {self.name}"


@dataclass(frozen=True)
class CaseResult:
    case: ScenarioCase
    failure: str
    outcome: str | None
    path: tuple[str, ...]
    actions: tuple[str, ...]
    state: SessionState | None

    @property
    def passed(self) -> bool:
        return not self.failure


def load_scenarios(path: str | Path) -> tuple[list[ScenarioCase], list[Problem]]:
    """Read a scenario file; problems say what is wrong with it."""
    text_path = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as error:
        return [], [Problem(ProblemCode.FILE_UNREADABLE, f"cannot read: {error.strerror}", "", text_path)]
    document, problems = parse_yaml(raw, text_path)
    if document is None:
        return [], problems
    data = document.data
    if not isinstance(data, dict) or not isinstance(data.get("flow"), str) or not isinstance(data.get("cases"), list):
        return [], [*problems, Problem(ProblemCode.SCHEMA, "a scenario file needs 'flow' and a list of 'cases'", "", text_path, 1, 1)]
    cases: list[ScenarioCase] = []
    for index, raw_case in enumerate(data["cases"]):
        pos = document.source.pos(("cases", index))
        if not isinstance(raw_case, dict):
            problems.append(Problem(ProblemCode.SCHEMA, "a case is a mapping", "", text_path, pos.line, pos.column))
            continue
        unknown = set(raw_case) - {"name", "inputs", "facts", "results", "answers", "expect", "user", "org", "locale"}
        if unknown:
            problems.append(
                Problem(ProblemCode.UNKNOWN_KEY, f"unknown key(s) in case: {', '.join(sorted(unknown))}", "", text_path, pos.line, pos.column)
            )
        expect = raw_case.get("expect") if isinstance(raw_case.get("expect"), dict) else {}
        assert isinstance(expect, dict)
        actions = expect.get("actions")
        walked = expect.get("path")
        answers = raw_case.get("answers") or []
        cases.append(
            ScenarioCase(
                flow_id=data["flow"],
                name=str(raw_case.get("name") or f"case {index + 1}"),
                file=text_path,
                line=pos.line,
                inputs=_mapping(raw_case.get("inputs")),
                facts=_mapping(raw_case.get("facts")),
                results=_mapping(raw_case.get("results")),
                answers=tuple(answers) if isinstance(answers, list) else (),
                expect=Expectation(
                    str(expect["outcome"]) if expect.get("outcome") is not None else None,
                    tuple(str(a) for a in actions) if isinstance(actions, list) else None,
                    tuple(str(s) for s in walked) if isinstance(walked, list) else None,
                ),
                user=_mapping(raw_case.get("user")),
                org=_mapping(raw_case.get("org")),
                locale=str(raw_case.get("locale") or "en"),
            )
        )
    return cases, problems


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


class _StubRunner(Runner):
    """A runner whose facts and actions come from the case's stubs."""

    def __init__(self, case: ScenarioCase, catalogue: Catalogue) -> None:
        super().__init__()
        self._case = case
        self._catalogue = catalogue
        self.actions: list[str] = []

    async def resolve_fact(self, flow: Flow, ref: FactRef, args: Mapping[str, Any], ports: Ports) -> Any:
        for key in (f"{flow.id}/{ref.name}", ref.name, ref.fact):
            if key in self._case.facts:
                return self._case.facts[key]
        spec = self._catalogue.fact(ref.fact)
        return spec.example_result if spec is not None else None

    async def run_action(
        self, flow: Flow, step: ActionStep, args: Mapping[str, Any], key: str, ports: Ports
    ) -> ActionResult:
        self.actions.append(step.action)
        for stub_key in (f"{flow.id}/{step.id}", step.id):
            if stub_key in self._case.results:
                return _stub_result(self._case.results[stub_key])
        spec = self._catalogue.action(step.action)
        return ActionResult(value=spec.example_result if spec is not None else None)


def _stub_result(stub: Any) -> ActionResult:
    if isinstance(stub, dict) and "error" in stub and set(stub) <= {"error", "transient", "message"}:
        return ActionResult(error=str(stub["error"]), transient=bool(stub.get("transient")), message=str(stub.get("message", "")))
    if isinstance(stub, dict) and set(stub) == {"result"}:
        return ActionResult(value=stub["result"])
    return ActionResult(value=stub)


def _answer_for(view: AnyView, answer: Any) -> UserInput | str:
    """Turn a scenario answer into an input for the view, or say why it does not fit."""
    match view:
        case QuestionView():
            if isinstance(answer, str | int) and not isinstance(answer, bool):
                return Choose(str(answer), view.step)
            return f"expects an option id, got {answer!r}"
        case FormView():
            if isinstance(answer, dict):
                return Submit(answer, view.step)
            return f"expects a mapping of field values, got {answer!r}"
        case ChecklistView():
            if answer == "all":
                return Tick((), True, view.step)
            if isinstance(answer, list):
                return Tick(tuple(str(a) for a in answer), False, view.step)
            return f"expects a list of ticked items or 'all', got {answer!r}"
        case ConfirmView():
            if answer == "confirm":
                return Confirm(view.step)
            if answer == "cancel":
                return Cancel(view.step)
            return f"expects confirm or cancel, got {answer!r}"
    return f"cannot take an answer, got {answer!r}"  # pragma: no cover


def _kind(view: AnyView) -> str:
    return type(view).__name__.removesuffix("View").lower()


def _first_difference(expected: tuple[str, ...], actual: tuple[str, ...]) -> str:
    for i, (want, got) in enumerate(zip(expected, actual, strict=False)):
        if want != got:
            return f"at position {i + 1} expected '{want}' but walked '{got}'"
    if len(expected) > len(actual):
        return f"expected '{expected[len(actual)]}' after '{actual[-1] if actual else 'the start'}', but the walk ended"
    return f"walked on to '{actual[len(expected)]}' after the expected path ended"


async def run_case(
    case: ScenarioCase, flow: Flow, *, catalogue: Catalogue | None = None, flows: Mapping[str, Flow] | DirectoryFlows | None = None
) -> CaseResult:
    """Run one scenario case against a flow."""
    catalogue = catalogue or InMemoryCatalogue()
    runner = _StubRunner(case, catalogue)
    lookup = flows if isinstance(flows, DirectoryFlows) else _MappingFlows(flows or {})
    ports = Ports(RecordingExecutor(catalogue), StaticFacts(), lookup, FakeClock())
    user = dict(case.user) or {"role": flow.audience[0] if flow.audience else "servicedesk", "name": "Test User", "locale": case.locale}
    try:
        state, view = await runner.start(flow, ports, session_id="scenario", inputs=case.inputs, user=user,
                                         org=case.org, locale=case.locale)  # fmt: skip
    except ValueError as error:
        return CaseResult(case, f"the case's inputs do not fit the flow: {error}", None, (), (), None)
    answers = list(case.answers)
    failure = ""
    for _ in range(MAX_WALK):
        if isinstance(view, EndView):
            break
        if view.problems:
            failure = f"at step '{view.step}': {view.problems[0].message}"
            break
        if isinstance(view, InfoView):
            state, view = await runner.advance(flow, state, Continue(view.step), ports)
            continue
        if not answers:
            failure = f"the answers ran out at step '{view.step}' ({_kind(view)}) in flow '{view.flow}'"
            break
        answer = answers.pop(0)
        given = _answer_for(view, answer)
        if isinstance(given, str):
            failure = f"at step '{view.step}' ({_kind(view)}) the answer {given}"
            break
        state, view = await runner.advance(flow, state, given, ports)
        if view.problems and not isinstance(view, EndView):
            failure = f"at step '{view.step}' the answer {answer!r} was refused: {view.problems[0].message}"
            break
    else:
        failure = f"the walk did not end within {MAX_WALK} steps"
    path = tuple(state.path(0))
    actions = tuple(runner.actions)
    outcome = state.outcome.value if state.outcome else None
    if not failure and isinstance(view, EndView) and view.problems:
        failure = f"the flow got stuck at step '{view.step}': {view.problems[0].message}"
    if not failure and answers:
        failure = f"{len(answers)} answer(s) left over after the end at step '{path[-1] if path else '?'}': {answers!r}"
    expect = case.expect
    if not failure and expect.outcome is not None and outcome != expect.outcome:
        failure = f"expected outcome '{expect.outcome}' but the flow ended '{outcome}' at step '{path[-1]}' (path: {' → '.join(path)})"
    if not failure and expect.path is not None and expect.path != path:
        failure = f"the path parted: {_first_difference(expect.path, path)} (walked: {' → '.join(path)})"
    if not failure and expect.actions is not None and expect.actions != actions:
        failure = f"the actions parted: {_first_difference(expect.actions, actions)} (ran: {', '.join(actions) or 'none'})"
    return CaseResult(case, failure, outcome, path, actions, state)


class _MappingFlows:
    def __init__(self, flows: Mapping[str, Flow]) -> None:
        self._flows = flows

    async def get_flow(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)


def run_case_sync(case: ScenarioCase, flow: Flow, *, catalogue: Catalogue | None = None, flows: Mapping[str, Flow] | DirectoryFlows | None = None) -> CaseResult:
    """Run one case outside an event loop (for the command line and pytest)."""
    return asyncio.run(run_case(case, flow, catalogue=catalogue, flows=flows))


@dataclass(frozen=True)
class Coverage:
    """Which steps and transitions of one flow the cases walked."""

    flow_id: str
    steps: frozenset[str]
    steps_walked: frozenset[str]
    transitions: frozenset[str]
    transitions_walked: frozenset[str]

    @property
    def step_share(self) -> float:
        return len(self.steps_walked & self.steps) / len(self.steps) if self.steps else 1.0

    @property
    def transition_share(self) -> float:
        return len(self.transitions_walked & self.transitions) / len(self.transitions) if self.transitions else 1.0

    @property
    def missing(self) -> list[str]:
        """Return what no case walked: step ids and ``step → kind:label`` transitions."""
        return sorted(self.steps - self.steps_walked) + sorted(self.transitions - self.transitions_walked)


def coverage(flow: Flow, results: Iterable[CaseResult]) -> Coverage:
    """Return the coverage of one flow by the given case results (sub-flow walks count too)."""
    all_transitions = frozenset(f"{step.id} → {t.key}" for step in flow.steps.values() for t in transitions(step))
    steps: set[str] = set()
    walked: set[str] = set()
    for result in results:
        state = result.state
        if state is None:
            continue
        for visit in state.visits:
            if state.frames[visit.frame].flow_id != flow.id:
                continue
            steps.add(visit.step)
            if visit.via and visit.via != "enter":
                walked.add(f"{visit.step} → {visit.via}")
    return Coverage(flow.id, frozenset(flow.steps), frozenset(steps), all_transitions, frozenset(walked))


def collect_cases(flows_dir: str | Path) -> list[ScenarioCase]:
    """List every case of every ``<flows_dir>/tests/*.yaml`` (for pytest parametrisation)."""
    tests_dir = Path(flows_dir) / "tests"
    if not tests_dir.is_dir():
        return []
    cases: list[ScenarioCase] = []
    for path in sorted(tests_dir.glob("*.yaml")):
        found, _ = load_scenarios(path)
        cases.extend(found)
    return cases
