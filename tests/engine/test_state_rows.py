"""Restoring a state builds the same objects as the classes' own constructors."""

from __future__ import annotations

import json

import pytest

from lotse.engine import jsontext
from lotse.engine.model import Outcome
from lotse.engine.runner import (
    Event,
    Execution,
    Frame,
    Record,
    SessionState,
    Visit,
    row_maker,
    rows_maker,
)
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


def test_rows_maker_builds_equal_objects() -> None:
    rows = [[0, "q", "t", True, False, "next"], [1, "r", "u"]]  # the second, short row goes through the class
    built = rows_maker(Visit)(rows)
    assert built == (Visit(0, "q", "t", True, False, "next"), Visit(1, "r", "u"))
    assert [type(v) for v in built] == [Visit, Visit]
    assert rows_maker(Visit)([]) == ()


# A state as the platform has stored it (to_dict rows), written out literally so that a change
# of to_dict can never stop sessions saved before it from loading.
STORED = {
    "session_id": "42", "flow_id": "login-help", "version": 3, "content_hash": "abc", "locale": "nl",
    "user": {"id": 7}, "org": {"id": 1},
    "frames": [["login-help", 3, "abc", {"email": "a@b.org"}, None, None], ["reset", 1, "def", {}, 0, "sub"]],
    "visits": [
        [0, "ask", "2026-03-05T10:42:00.000001+00:00", False, False, "option:yes"],
        [0, "sub", "2026-03-05T10:42:01.000002+00:00", True, False, "enter"],
        [1, "go", "2026-03-05T10:42:01.000003+00:00", False, True, None],
    ],
    "records": [[0, 0, "ask", "answer", "yes", False, None], [2, 1, "go", "result", None, False, "cancelled"]],
    "executions": [[2, 1, "reset", "go", "account.reset", "42:1:go:0", "2026-03-05T10:42:02+00:00", "x", None, 2]],
    "transcript": [
        ["2026-03-05T10:42:00.000001+00:00", "started", "login-help", "ask", {"version": 3}],
        ["2026-03-05T10:42:01.000002+00:00", "answered", "login-help", "ask", {"option": "yes"}],
    ],
    "outcome": "resolved",
}  # fmt: skip


def test_stored_state_still_loads() -> None:
    state = SessionState.from_dict(json.loads(json.dumps(STORED)))
    assert state.outcome is Outcome.RESOLVED
    assert state.frames[1] == Frame("reset", 1, "def", {}, 0, "sub")
    assert state.visits[-1] == Visit(1, "go", "2026-03-05T10:42:01.000003+00:00", False, True, None)
    assert state.records[1].error == "cancelled"
    assert state.executions[0] == Execution(
        2, 1, "reset", "go", "account.reset", "42:1:go:0", "2026-03-05T10:42:02+00:00", "x", None, 2
    )
    assert state.transcript[1].data == {"option": "yes"}
    assert state.to_dict() == {"format": 2, **STORED}  # written again in the current format, rows unchanged
    assert SessionState.from_json(state.to_json()) == state


def test_json_text_is_the_same_with_or_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    state = SessionState.from_dict(STORED)
    text = state.to_json()
    assert json.loads(text) == {"format": 2, **STORED}
    monkeypatch.setattr(jsontext, "FAST", False)
    assert json.loads(state.to_json()) == {"format": 2, **STORED}
    assert SessionState.from_json(text) == state
    assert SessionState.from_json(text.encode()) == state


def test_json_text_falls_back_for_what_orjson_refuses() -> None:
    assert json.loads(jsontext.dumps({"big": 2**70, "keys": {1: "one"}})) == {"big": 2**70, "keys": {"1": "one"}}


def test_entries_built_lazily_from_rows_equal_the_classes_own() -> None:
    state = SessionState.from_dict(json.loads(json.dumps(STORED)))
    again = SessionState.from_dict(json.loads(json.dumps(STORED)))
    assert [type(e) for e in state.transcript] == [Event, Event]
    assert state.records == (Record(0, 0, "ask", "answer", "yes"), Record(2, 1, "go", "result", None, False, "cancelled"))
    assert again == state  # equality reads (and builds) every field
    assert again.to_dict() == {"format": 2, **STORED}


def test_short_stored_rows_get_their_defaults() -> None:
    data = json.loads(json.dumps(STORED))
    data["records"] = [[0, 0, "ask", "answer", "yes"]]
    data["transcript"] = [["t", "started", "login-help", "ask"]]
    state = SessionState.from_dict(data)
    assert state.records == (Record(0, 0, "ask", "answer", "yes", False, None),)
    assert state.transcript == (Event("t", "started", "login-help", "ask", {}),)
    assert state.to_dict()["records"] == [[0, 0, "ask", "answer", "yes", False, None]]


def test_json_text_of_entries_and_rows_mixed_is_to_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    state = SessionState.from_dict(json.loads(json.dumps(STORED)))
    mixed = SessionState(
        state.session_id, state.flow_id, state.version, state.content_hash, state.locale, state.user, state.org,
        state.frames, [*STORED["visits"][:2], Visit(1, "go", "t")],  # type: ignore[arg-type]
        [STORED["records"][0], Record(2, 1, "go", "answer", "x")],  # type: ignore[arg-type]
        (), [Event("t", "started", "f", "a", {"version": 1})], state.outcome,  # type: ignore[arg-type]
    )  # fmt: skip
    expected = mixed.to_dict()
    assert expected["visits"][2] == [1, "go", "t", False, False, None]
    assert json.loads(mixed.to_json()) == expected
    monkeypatch.setattr(jsontext, "FAST", False)
    assert json.loads(mixed.to_json()) == expected
    assert SessionState.from_json(mixed.to_json()) == mixed


# Format 2, as to_dict writes it now: an action event holds the index of its execution instead of
# repeating the execution's data; written out literally for the same reason as STORED.
STORED_V2 = {
    "format": 2,
    "session_id": "42", "flow_id": "login-help", "version": 3, "content_hash": "abc", "locale": "en",
    "user": {"id": 7}, "org": {"id": 1},
    "frames": [["login-help", 3, "abc", {"email": "a@b.org"}, None, None]],
    "visits": [
        [0, "go", "2026-03-05T10:42:00+00:00", False, False, "next:next"],
        [0, "done", "2026-03-05T10:42:01+00:00", False, False, None],
    ],
    "records": [[0, 0, "go", "result", {"sent": True}, False, None]],
    "executions": [[0, 0, "login-help", "go", "account.reset", "42:0:go:0", "2026-03-05T10:42:01+00:00", None,
                    {"sent": True}, 1]],
    "transcript": [
        ["2026-03-05T10:42:00+00:00", "started", "login-help", "go", {"version": 3}],
        ["2026-03-05T10:42:01+00:00", "action", "login-help", "go", 0],
        ["2026-03-05T10:42:01+00:00", "ended", "login-help", "done", {"outcome": "resolved"}],
    ],
    "outcome": "resolved",
}  # fmt: skip

ACTION_DATA = {"action": "account.reset", "key": "42:0:go:0", "error": None, "result": {"sent": True}, "attempts": 1}


def test_format_2_action_events_read_their_execution_and_stay_compact() -> None:
    state = SessionState.from_json(json.dumps(STORED_V2))
    assert state.transcript[1] == Event("2026-03-05T10:42:01+00:00", "action", "login-help", "go", ACTION_DATA)
    assert state.transcript[2].data == {"outcome": "resolved"}
    assert state.executions[0].value == {"sent": True}
    assert state.to_dict() == STORED_V2  # reading the transcript does not change what is stored
    assert json.loads(state.to_json()) == STORED_V2


def test_format_1_action_events_with_their_data_still_load() -> None:
    old = json.loads(json.dumps(STORED_V2))
    del old["format"]
    old["transcript"][1][4] = ACTION_DATA
    state = SessionState.from_dict(old)
    assert state.transcript[1].data == ACTION_DATA
    assert state == SessionState.from_dict(STORED_V2)
    assert state.to_dict() == {**old, "format": 2}  # rows kept as stored: the data stays written out


def test_an_unknown_state_format_is_refused() -> None:
    with pytest.raises(ValueError, match="format"):
        SessionState.from_dict({**STORED_V2, "format": 99})
