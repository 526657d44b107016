"""The runner: auto-answers, confirmation, idempotency, retries, errors, sub-flows, going back."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.loader import load_flow
from lotse.engine.local import DictFlows, FakeClock, RecordingExecutor, StaticFacts
from lotse.engine.model import Outcome
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
    input_from_data,
)
from lotse.engine.views import (
    ChecklistView,
    ConfirmView,
    EndView,
    FormView,
    InfoView,
    NoticeCode,
    QuestionView,
)
from tests.engine.support import load

EVA = {"therapist": {"name": "Eva <b>Jansen</b>", "email": "eva@example.org"}}


def roundtrip(state: SessionState) -> SessionState:
    return SessionState.from_dict(json.loads(json.dumps(state.to_dict())))


async def test_question_answered_from_facts_goes_on_and_is_recorded(ports: Ports) -> None:
    flow = load("therapist-can-log-in")
    state, view = await Runner().start(flow, ports, session_id="s", inputs=EVA)
    assert isinstance(view, ConfirmView)
    assert view.step == "reactivate"
    assert "Eva &lt;b&gt;Jansen&lt;/b&gt;" in view.confirm
    assert state.records[0].auto
    assert state.records[0].value == "deactivated"
    assert [e.kind for e in state.transcript] == ["started", "answered_from_data"]
    assert view.history[0].auto


async def test_auto_answer_can_be_overridden_by_going_back(ports: Ports) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, view = await runner.start(flow, ports, session_id="s", inputs=EVA)
    state, view = await runner.advance(flow, state, Back(0), ports)
    assert isinstance(view, QuestionView)
    assert view.step == "account-state"
    assert view.suggested == "deactivated"
    state, view = await runner.advance(flow, roundtrip(state), Choose("recent", "account-state"), ports)
    assert view.step == "can-log-in"
    assert state.path() == ["account-state", "can-log-in"]


async def test_action_runs_only_after_confirm_and_once_for_a_doubled_request(
    ports: Ports, executor: RecordingExecutor
) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
    assert executor.runs == []
    first, view1 = await runner.advance(flow, state, Confirm("reactivate"), ports)
    second, view2 = await runner.advance(flow, state, Confirm("reactivate"), ports)  # same request again
    assert len(executor.runs) == 1
    assert first.executions[0].key == second.executions[0].key == "s:0:reactivate:0"
    assert view1.step == view2.step == "can-log-in"
    # The doubled click arriving after the first was stored changes nothing.
    third, view3 = await runner.advance(flow, first, Confirm("reactivate"), ports)
    assert len(executor.runs) == 1
    assert third == first
    assert view3.notices[0].code is NoticeCode.ALREADY_ANSWERED


async def test_going_back_over_an_action_says_so_and_asks_again(ports: Ports, executor: RecordingExecutor) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
    state, _ = await runner.advance(flow, state, Confirm(), ports)
    state, view = await runner.advance(flow, state, Back(), ports)
    assert isinstance(view, ConfirmView)
    assert view.step == "reactivate"
    assert view.notices[0].code is NoticeCode.ACTION_ALREADY_RAN
    assert "already ran at 10:42" in view.notices[0].text
    assert view.previous_runs
    assert len(executor.runs) == 1
    assert [r.step for r in state.records] == ["account-state"]  # the result is no longer an answer
    assert [e.kind for e in state.transcript].count("action") == 1  # but the transcript keeps it
    state, view = await runner.advance(flow, state, Confirm(), ports)
    assert len(executor.runs) == 2
    assert executor.runs[1][2] == "s:0:reactivate:1"


async def test_an_action_is_stored_once_and_shown_in_the_transcript_with_its_data(ports: Ports) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
    state, _ = await runner.advance(flow, roundtrip(state), Confirm("reactivate"), ports)
    stored = json.loads(json.dumps(state.to_dict()))
    assert stored["format"] == 2
    [event] = [e for e in stored["transcript"] if e[1] == "action"]
    assert event[4] == 0  # the index of its execution, not the execution's data again
    restored = SessionState.from_dict(stored)
    [action] = [e for e in restored.transcript if e.kind == "action"]
    execution = restored.executions[0]
    assert action.data == {"action": execution.action, "key": "s:0:reactivate:0", "error": None,
                           "result": execution.value, "attempts": 1}  # fmt: skip
    assert restored == state
    assert restored.to_dict() == stored


async def test_errors_map_by_code_then_default_and_cancel(catalogue: FileCatalogue, clock: FakeClock) -> None:
    flow = load("therapist-can-log-in")
    for code, outcome in [("not_permitted", Outcome.ESCALATED), ("not_found", Outcome.ESCALATED)]:
        executor = RecordingExecutor(catalogue, lambda name, args, attempt, code=code: ActionResult(error=code))
        ports = Ports(executor, StaticFacts({"account.state": "deactivated"}), DictFlows(), clock)
        runner = Runner()
        state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
        state, view = await runner.advance(flow, state, Confirm(), ports)
        assert isinstance(view, EndView)
        assert view.outcome is outcome
        assert state.outcome is outcome
        assert state.visits[-2].via == (f"error:{code}" if code == "not_permitted" else "error:default")
    state, _ = await runner.start(flow, ports, session_id="s2", inputs=EVA)
    state, view = await runner.advance(flow, state, Cancel(), ports)
    assert isinstance(view, EndView)
    assert view.step == "ask-admin"


async def test_transient_errors_are_retried_with_backoff_on_the_clock(catalogue: FileCatalogue, clock: FakeClock) -> None:
    def flaky(name: str, args: Mapping[str, Any], attempt: int) -> ActionResult:
        return ActionResult(value={"sent": True}) if attempt == 3 else ActionResult(error="smtp_unavailable", transient=True)

    executor = RecordingExecutor(catalogue, flaky)
    ports = Ports(executor, StaticFacts({"account.state": "dormant"}), DictFlows(), clock)
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, view = await runner.start(flow, ports, session_id="s", inputs=EVA)
    assert view.step == "resend-welcome"
    state, view = await runner.advance(flow, state, Confirm(), ports)
    assert view.step == "can-log-in"
    assert len(executor.runs) == 3
    assert clock.slept == [2.0, 4.0]
    assert state.executions[0].attempts == 3


async def test_subflow_runs_inline_and_returns_its_outcome(ports: Ports) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
    state, _ = await runner.advance(flow, state, Confirm(), ports)
    state, view = await runner.advance(flow, state, Choose("no"), ports)
    assert isinstance(view, InfoView)
    assert view.flow == "login-help"
    assert "Eva" in view.text
    state, view = await runner.advance(flow, roundtrip(state), Continue(), ports)
    _back, view = await runner.advance(flow, state, Back(), ports)
    assert view.flow == "login-help"
    assert view.step == "browser"
    state, view = await runner.advance(flow, state, Choose("no"), ports)
    assert isinstance(view, EndView)
    assert view.step == "ask-admin"
    assert state.outcome is Outcome.ESCALATED
    assert state.path(0)[-2:] == ["login-help", "ask-admin"]
    assert state.path(1) == ["browser", "works", "not-fixed"]
    # A finished session stays finished.
    after, view = await runner.advance(flow, state, Back(), ports)
    assert after == state
    assert isinstance(view, EndView)


async def test_form_values_are_validated_before_going_on(catalogue: FileCatalogue, clock: FakeClock) -> None:
    flow = load("features")
    ports = Ports(RecordingExecutor(catalogue), StaticFacts({"org.setting": False}), DictFlows(), clock)
    runner = Runner()
    state, view = await runner.start(flow, ports, session_id="s", inputs={"client": {"name": "**Ann**"}})
    assert isinstance(view, InfoView)
    assert "<strong>**Ann**</strong>" in view.text
    state, view = await runner.advance(flow, state, Continue(), ports)
    bad = {"email": "nope", "visits": "many", "urgent": "maybe", "channel": "fax", "code": "abc", "born": "5.3.2026", "x": 1}
    state, view = await runner.advance(flow, state, Submit(bad), ports)
    assert isinstance(view, FormView)
    assert {f.id: f.error for f in view.fields if f.error} == {
        "email": "not an e-mail address", "visits": "not a number", "urgent": "yes or no",
        "channel": "one of: mail, phone", "code": "does not have the expected form", "born": "not a date (YYYY-MM-DD)",
    }  # fmt: skip
    good = {"email": "ann@example.org", "visits": "2", "urgent": "yes", "channel": "mail", "born": "2026-03-05"}
    state, view = await runner.advance(flow, state, Submit(good), ports)
    assert isinstance(view, ChecklistView)
    assert state.records[-1].value == {"email": "ann@example.org", "visits": 2, "urgent": True, "channel": "mail", "born": "2026-03-05"}
    state, view = await runner.advance(flow, state, Tick(("browser",)), ports)
    assert view.problems
    assert "still to tick: mail" in view.problems[0].message
    state, view = await runner.advance(flow, state, Tick((), all_items=True), ports)
    assert isinstance(view, QuestionView)
    assert [o.id for o in view.options] == ["search", "stop"]
    state, view = await runner.advance(flow, state, Choose("admin"), ports)
    assert view.problems  # a hidden option cannot be chosen


async def test_checklist_ticked_by_facts_goes_on_by_itself(catalogue: FileCatalogue, clock: FakeClock) -> None:
    flow = load("features")
    ports = Ports(RecordingExecutor(catalogue), StaticFacts({"org.setting": True}), DictFlows(), clock)
    runner = Runner()
    state, view = await runner.start(flow, ports, session_id="s", inputs={"client": {"name": "Ann"}})
    state, view = await runner.advance(flow, state, Continue(), ports)
    state, view = await runner.advance(flow, state, Submit({"email": "a@b.org", "visits": 1, "urgent": True, "channel": "mail"}), ports)
    assert isinstance(view, ChecklistView)
    assert [(i.id, i.ticked) for i in view.items] == [("mail", True), ("browser", False)]


async def test_every_session_ends_with_an_outcome_even_when_stuck(ports: Ports) -> None:
    result = load_flow(
        "flow: stuck\nversion: 1\ntitle: T\naudience: [client]\nstart: b\nsteps:\n"
        "  b: {type: branch, next: [{when: 'false', goto: e}]}\n  e: {type: end, outcome: resolved}\n"
    )
    assert result.flow is not None
    state, view = await Runner().start(result.flow, ports, session_id="s")
    assert isinstance(view, EndView)
    assert state.outcome is Outcome.NOT_RESOLVED
    assert view.problems[0].code == "stuck"
    # No English sentence for people; a notice code the platform translates.
    assert view.text == ""
    assert [n.code for n in view.notices] == [NoticeCode.CANNOT_GO_ON]
    assert "cannot go on" in view.notices[0].text


async def test_wrong_input_is_a_problem_not_an_exception(ports: Ports) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
    same, view = await runner.advance(flow, state, Choose("yes"), ports)
    assert view.problems
    assert "expects confirm or cancel" in view.problems[0].message
    assert same.visits == state.visits


async def test_translations_are_used_at_run_time(ports: Ports) -> None:
    class German:
        def translate(self, locale: str, context: str, msgid: str) -> str | None:
            return {"therapist-can-log-in/reactivate/confirm": "Konto von {{ inputs.therapist.name }} reaktivieren?"}.get(context)

    german = Ports(ports.actions, ports.facts, ports.flows, ports.clock, German())
    flow = load("therapist-can-log-in")
    _, view = await Runner().start(flow, german, session_id="s", inputs=EVA, locale="de")
    assert isinstance(view, ConfirmView)
    assert view.confirm == "<p>Konto von Eva &lt;b&gt;Jansen&lt;/b&gt; reaktivieren?</p>"


def test_inputs_from_json() -> None:
    assert input_from_data({"step": "q", "choose": "yes"}) == Choose("yes", "q")
    assert input_from_data({"tick": "all"}) == Tick((), True)
    assert input_from_data({"back": 3}) == Back(3)
    assert input_from_data({"confirm": True, "step": "a"}) == Confirm("a")
    assert input_from_data({"nonsense": 1}).code == "invalid_input"  # type: ignore[union-attr]


FORM_THEN_FACT = """\
flow: form-fact
version: 1
title: T
audience: [client]
facts:
  c: {fact: account.state, args: {email: "{{ answers['f'].email }}"}}
start: f
steps:
  f:
    type: form
    text: Your address?
    fields:
      email: {type: email, label: E-mail}
    next: [{when: "facts.c", goto: a}, {goto: b}]
  a: {type: end, outcome: resolved}
  b: {type: end, outcome: not_resolved}
"""


async def test_a_forms_next_conditions_see_facts_of_the_answer_just_given(
    executor: RecordingExecutor, clock: FakeClock
) -> None:
    """Facts are fresh at each step: a fact whose arguments use the form's own answer sees that answer."""
    result = load_flow(FORM_THEN_FACT)
    assert result.flow is not None, result.problems
    facts = StaticFacts({"account.state": lambda args: args.get("email") == "known@example.org"})
    ports = Ports(executor, facts, DictFlows(), clock)
    runner = Runner()
    for email, end in (("known@example.org", "a"), ("other@example.org", "b")):
        state, _ = await runner.start(result.flow, ports, session_id=email)
        state, view = await runner.advance(result.flow, state, Submit({"email": email}), ports)
        assert isinstance(view, EndView)
        assert state.path()[-1] == end
    assert ("account.state", {"email": "known@example.org"}) in facts.asked


async def test_views_carry_every_field_of_their_class(ports: Ports) -> None:
    # The runner builds its views without their dataclass __init__: each must still have all its fields.
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, view = await runner.start(flow, ports, session_id="s", inputs=EVA)
    seen = []
    for user_input in (None, Back(0), Choose("recent", "account-state"), Choose("yes", "can-log-in")):
        state, view = await runner.advance(flow, state, user_input, ports)
        seen.append(view)
        assert set(vars(view)) == {f.name for f in dataclasses.fields(view)}
        assert dataclasses.replace(view) == view
    assert {type(v) for v in seen} >= {QuestionView, ConfirmView, EndView}


async def test_shared_history_entries_are_dropped_beyond_their_bound(ports: Ports) -> None:
    flow = load("therapist-can-log-in")
    runner = Runner()
    state, _ = await runner.start(flow, ports, session_id="s", inputs=EVA)
    state, view = await runner.advance(flow, state, Back(0), ports)
    state, view = await runner.advance(flow, state, Choose("recent", "account-state"), ports)
    assert view.history
    runner._history_made = 100_001  # as if many sessions had walked other paths
    state, again = await runner.advance(flow, state, None, ports)
    assert again.history == view.history
    assert runner._history_made == len(view.history)  # the table was emptied, then refilled by this view
