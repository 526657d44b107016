"""The fast schema check answers exactly as ``jsonschema`` does (valid or not) on flows and their mutations."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lotse.engine.fastschema import compile_schema
from lotse.engine.loader import _validators, flow_schema_text, load_flow
from tests.engine.support import BROKEN, FLOWS

SCHEMA = json.loads(flow_schema_text())
SLOW = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)
FAST = compile_schema(SCHEMA)
SHIPPED = Path(__file__).parents[2] / "flows"


def _agree(document: Any) -> None:
    assert FAST is not None
    assert FAST(document) == SLOW.is_valid(document)
    outer, per_type = _validators()
    assert outer.fast is not None
    assert outer.fast(document) == outer.slow.is_valid(document)
    if isinstance(document, dict) and isinstance(document.get("steps"), dict):
        for step in document["steps"].values():
            kind = step.get("type") if isinstance(step, dict) else None
            if isinstance(kind, str) and kind in per_type:
                fast = per_type[kind].fast
                assert fast is not None
                assert fast(step) == per_type[kind].slow.is_valid(step)


def _data(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=yaml.CSafeLoader)


def test_the_flow_schema_compiles() -> None:
    assert FAST is not None
    assert all(v.fast is not None for v in _validators()[1].values())


def test_agrees_on_example_shipped_and_broken_flows() -> None:
    paths = [*FLOWS.glob("*.yaml"), *SHIPPED.glob("*.yaml"), *BROKEN.glob("*.yaml")]
    assert paths
    for path in paths:
        try:
            document = _data(path)
        except yaml.YAMLError:
            continue
        _agree(document)


def test_problems_unchanged_for_broken_flows() -> None:
    """Broken flows still get every message: they take the jsonschema path."""
    for path in BROKEN.glob("*.yaml"):
        result = load_flow(path.read_bytes(), str(path))
        if result.flow is not None and not result.schema_valid:
            assert result.problems


def test_type_rules_match_jsonschema() -> None:
    for value in (1, 1.0, 1.5, True, False, None, "1", [], {}, -3, 0):
        for schema in ({"type": "integer", "minimum": 1}, {"type": "number"}, {"type": "boolean"},
                       {"enum": ["a", None]}, {"type": "string", "minLength": 1, "pattern": "^a"},
                       {"type": "array", "uniqueItems": True}, {"maximum": 0}):  # fmt: skip
            fast = compile_schema(schema)
            assert fast is not None
            assert fast(value) == jsonschema.Draft202012Validator(schema).is_valid(value), (schema, value)
    unique = compile_schema({"uniqueItems": True})
    assert unique is not None
    assert unique(["a", "b"])
    assert not unique(["a", "a"])
    assert not unique([1, True])  # not decided quickly: jsonschema decides


def test_unknown_keywords_are_not_compiled() -> None:
    assert compile_schema({"type": "string", "format": "email"}) is None
    assert compile_schema({"not": {"type": "string"}}) is None
    assert compile_schema({"if": {"uniqueItems": True}, "then": {}}) is None


scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 3), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=6),
    st.sampled_from(["info", "question", "end", "resolved", "default", "servicedesk", "a-b", "A", "", "x_y", "{{ a }}"]),
)  # fmt: skip
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["type", "text", "next", "options", "label", "when", "goto", "outcome", "flow",
                                         "inputs", "fields", "items", "check", "answer", "action", "args", "confirm",
                                         "on_error", "retry", "attempts", "required", "choices", "default"]),
                        children, max_size=4),
    ),
    max_leaves=12,
)
BASE = _data(FLOWS / "features.yaml")


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


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), st.one_of(st.just("DELETE"), values)), min_size=1, max_size=3))
def test_agrees_on_mutations_of_a_valid_flow(mutations: list[tuple[tuple[Any, ...], Any]]) -> None:
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
    _agree(document)
