"""Property tests: nothing a content editor can type crashes the loader or the checker,
and every walk through a valid flow ends or waits for the person."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.checks import check_flow
from lotse.engine.expressions import Evaluator
from lotse.engine.loader import load_flow
from lotse.engine.local import DictFlows, FakeClock, RecordingExecutor, StaticFacts
from lotse.engine.model import Flow, StepType
from lotse.engine.ports import ActionResult, Ports
from lotse.engine.runner import (
    Back,
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
    HistoryEntry,
    InfoView,
    QuestionView,
)
from tests.engine.support import FLOWS, load

CATALOGUE = FileCatalogue.from_path(FLOWS.parent / "catalogue.yaml")
EVALUATOR = Evaluator()
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=12),
    st.sampled_from(["yes", "no", "on", "{{ x }}", "{{ inputs.a }}", "{%", "next", "end", "10:30", "&a", "*a", "!!python/object"]),
)  # fmt: skip
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(["flow", "version", "title", "audience", "start", "steps", "type", "next", "options", "text", "when", "goto", "a", "b"]), children, max_size=5),
    ),
    max_leaves=25,
)


def _check_text(text: str | bytes) -> None:
    result = load_flow(text, "prop.yaml")
    problems = check_flow(result, catalogue=CATALOGUE, evaluator=EVALUATOR)
    assert all(p.line >= 0 and p.message for p in problems)


@SETTINGS
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check_text(text)


@SETTINGS
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _check_text(data)


@SETTINGS
@given(documents)
def test_arbitrary_yaml_documents_never_crash(document: Any) -> None:
    _check_text(yaml.safe_dump(document))


BASE = yaml.load((FLOWS / "features.yaml").read_text(), Loader=yaml.CSafeLoader)


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*at, index))
    return found


PATHS = [p for p in _paths(BASE) if p]


@SETTINGS
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(st.just("DELETE"), documents)), min_size=1, max_size=4))
def test_mutations_of_a_valid_flow_never_crash(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
    document = copy.deepcopy(BASE)
    for path, value in mutations:
        parent: Any = document
        try:
            for key in path[:-1]:
                parent = parent[key]
            if value == "DELETE":
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    _check_text(yaml.safe_dump(document, sort_keys=False))


def _inputs_for(view: AnyView, draw: Any) -> UserInput:
    match view:
        case InfoView():
            return draw(st.sampled_from([Continue(), Back()]))
        case QuestionView(options=options):
            return draw(st.sampled_from([Choose(o.id) for o in options] + [Choose("nope"), Back()]))
        case FormView():
            return draw(st.sampled_from([
                Submit({"email": "a@b.org", "visits": draw(st.integers(0, 9)), "urgent": draw(st.booleans()), "channel": "mail"}),
                Submit({"email": "bad"}),
                Back(),
            ]))  # fmt: skip
        case ChecklistView():
            return draw(st.sampled_from([Tick((), True), Tick(("browser",)), Back()]))
        case ConfirmView():
            return draw(st.sampled_from([Confirm(), Cancel(), Back()]))
    raise AssertionError(view)  # pragma: no cover


def _expected_history(state: SessionState, flows: dict[str, Flow]) -> tuple[HistoryEntry, ...]:
    """The back-history as the view's docs say it: every earlier visit of a step one can return to."""
    found = []
    for index, visit in enumerate(state.visits[:-1]):
        flow = flows.get(state.frames[visit.frame].flow_id)
        step = flow.step(visit.step) if flow else None
        if flow and step and step.type not in (StepType.BRANCH, StepType.SUBFLOW, StepType.END):
            found.append(HistoryEntry(index, flow.id, visit.step, visit.auto))
    return tuple(found)


@SETTINGS
@given(st.data())
def test_random_walks_end_or_wait_for_input(data: st.DataObject) -> None:
    name = data.draw(st.sampled_from(["features", "therapist-can-log-in"]))
    flow = load(name)
    error = data.draw(st.sampled_from([None, "not_permitted", "unavailable"]))

    def respond(action: str, args: Any, attempt: int) -> ActionResult:
        spec = CATALOGUE.action(action)
        return ActionResult(error=error) if error else ActionResult(value=spec.example_result if spec else None)

    facts = StaticFacts({"account.state": data.draw(st.sampled_from(["recent", "dormant", "deactivated", "missing", None])),
                         "org.setting": data.draw(st.booleans())})  # fmt: skip
    login_help = load("login-help")
    ports = Ports(RecordingExecutor(CATALOGUE, respond), facts, DictFlows({"login-help": login_help}), FakeClock())

    async def walk() -> None:
        runner = Runner(EVALUATOR)
        inputs = {"therapist": {"name": "Eva"}} if name != "features" else {"client": {"name": "Ann"}}
        state, view = await runner.start(flow, ports, session_id="w", inputs=inputs, user={"role": "app_admin"})
        for _ in range(40):
            if isinstance(view, EndView):
                assert state.outcome is not None
                return
            assert isinstance(view, InfoView | QuestionView | FormView | ChecklistView | ConfirmView)
            state = SessionState.from_dict(state.to_dict())
            state, view = await runner.advance(flow, state, _inputs_for(view, data.draw), ports)
            assert view.history == _expected_history(state, {flow.id: flow, "login-help": login_help})

    asyncio.run(walk())
