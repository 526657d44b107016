"""Restoring a state builds the same objects as the classes' own constructors."""

from __future__ import annotations

import json

from lotse.engine.runner import Event, Execution, Frame, Record, SessionState, Visit, row_maker
from lotse.engine.views import HistoryEntry


def test_row_maker_builds_equal_objects() -> None:
    assert row_maker(Visit)([0, "q", "t", True, False, "next"]) == Visit(0, "q", "t", True, False, "next")
    assert row_maker(Visit)([0, "q", "t"]) == Visit(0, "q", "t")  # a short row goes through the class
    assert row_maker(HistoryEntry)((3, "f", "s", False)) == HistoryEntry(3, "f", "s", False)
    event = row_maker(Event)(["t", "answered", "f", "s", {"option": "yes"}])
    assert type(event) is Event
    assert event == Event("t", "answered", "f", "s", {"option": "yes"})


def test_state_round_trips_through_json() -> None:
    state = SessionState(
        "s", "f", 1, "h", "en", {"id": 1}, {},
        (Frame("f", 1, "h", {"a": 1}), Frame("g", 2, "h2", {}, 0, "call")),
        (Visit(0, "a", "t", False, False, "next"), Visit(1, "b", "t", True, True, None)),
        (Record(0, 0, "a", "answer", "yes"), Record(1, 1, "b", "result", None, False, "cancelled")),
        (Execution(1, 1, "g", "b", "x.y", "s:1:b:0", "t", None, {"ok": True}, 1),),
        (Event("t", "started", "f", "a", {"version": 1}),),
    )  # fmt: skip
    again = SessionState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    assert [type(v) for v in again.visits] == [Visit, Visit]
