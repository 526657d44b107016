"""Load a flow file: YAML → positions → JSON Schema → model.

Three decisions shape this module:

* **YAML 1.2 scalars, not 1.1.** PyYAML resolves ``yes``/``no``/``on``/``off``
  to booleans, ``10:30`` to the integer 630 and ``2026-03-05`` to a date;
  in a decision tree an option called ``no`` must stay ``"no"``. The loader
  below subclasses the C-accelerated safe loader (the Python one is about ten
  times slower, and checking a hundred flows must take under a second) and
  replaces its implicit resolvers by YAML 1.2's core schema.
* **Our own construction.** Nodes are turned into plain data by hand so that
  duplicate keys become problems (PyYAML silently keeps the last one), every
  value and key keeps its line and column, unknown tags are refused, and an
  alias bomb stops at a node budget instead of eating the memory.
* **Problems, not exceptions.** Everything that can be wrong with the text
  comes back as :class:`~lotse.engine.problems.Problem` values, all of them
  in one run; the model is built even when the schema complains, leniently,
  so that the semantic checks can still report what they see.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError

from lotse.engine.fastschema import Predicate, compile_schema
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
    InputType,
    Item,
    NodePath,
    Option,
    Outcome,
    Pos,
    QuestionStep,
    Retry,
    SourceMap,
    Step,
    StepType,
    SubflowStep,
    Transition,
    TransitionKind,
)
from lotse.engine.problems import Problem, ProblemCode

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

#: Budget of constructed nodes per document; aliases count every time they are used.
MAX_NODES = 200_000
MAX_DEPTH = 100


class Yaml12SafeLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader resolving plain scalars by YAML 1.2's core schema."""


Yaml12SafeLoader.yaml_implicit_resolvers = {}
Yaml12SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
Yaml12SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"),
    list("-+0123456789"),
)
Yaml12SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    list("-+0123456789."),
)
Yaml12SafeLoader.add_implicit_resolver(
    "tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""]
)


@dataclass(frozen=True, slots=True)
class Document:
    """Plain data of a YAML document with the position of every node."""

    data: Any
    source: SourceMap


class _Budget:
    def __init__(self) -> None:
        self.nodes = 0


def _pos(node: yaml.Node) -> Pos:
    return Pos(node.start_mark.line + 1, node.start_mark.column + 1)


def _duplicate_code(parent: NodePath) -> ProblemCode:
    if parent == ("steps",):
        return ProblemCode.DUPLICATE_STEP
    if len(parent) == 3 and parent[0] == "steps" and parent[2] in ("options", "fields", "items"):
        return ProblemCode.DUPLICATE_OPTION
    return ProblemCode.DUPLICATE_KEY


class _Builder:
    """Turn a composed node tree into plain data, keeping positions."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.values: dict[NodePath, Pos] = {}
        self.keys: dict[NodePath, Pos] = {}
        self.problems: list[Problem] = []
        self.budget = _Budget()

    def problem(self, code: ProblemCode, message: str, pos: Pos, hint: str = "") -> None:
        self.problems.append(Problem(code, message, hint, self.path, pos.line, pos.column))

    def build(self, node: yaml.Node, at: NodePath, active: frozenset[int]) -> Any:
        self.budget.nodes += 1
        if self.budget.nodes > MAX_NODES or len(at) > MAX_DEPTH:
            raise _TooBigError(node)
        if id(node) in active:
            raise _RecursiveError(node)
        self.values.setdefault(at, _pos(node))
        if isinstance(node, yaml.ScalarNode):
            return self.scalar(node)
        inner = active | {id(node)}
        if isinstance(node, yaml.SequenceNode):
            if node.tag != "tag:yaml.org,2002:seq":
                self.unsupported_tag(node)
            return [self.build(child, (*at, i), inner) for i, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode):
            if node.tag != "tag:yaml.org,2002:map":
                self.unsupported_tag(node)
            result: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(
                        ProblemCode.YAML_UNSUPPORTED,
                        "a key must be a plain word, not a list or mapping",
                        _pos(key_node),
                    )
                    continue
                key = str(key_node.value)
                if key in result:
                    first = self.keys.get((*at, key), _pos(key_node))
                    what = {
                        ProblemCode.DUPLICATE_STEP: "step id",
                        ProblemCode.DUPLICATE_OPTION: "id",
                    }.get(_duplicate_code(at), "key")
                    self.problem(
                        _duplicate_code(at),
                        f"duplicate {what} '{key}' (first written on line {first.line})",
                        _pos(key_node),
                        "Each key may appear only once in a mapping; rename or merge the two.",
                    )
                    continue
                self.keys[(*at, key)] = _pos(key_node)
                result[key] = self.build(value_node, (*at, key), inner)
            return result
        raise AssertionError(f"unexpected YAML node {node!r}")  # pragma: no cover

    def unsupported_tag(self, node: yaml.Node) -> None:
        self.problem(
            ProblemCode.YAML_UNSUPPORTED,
            f"YAML tag '{node.tag}' is not supported in flows",
            _pos(node),
            "Remove the tag; flows use plain strings, numbers, lists and mappings.",
        )

    def scalar(self, node: yaml.ScalarNode) -> Any:
        tag, value = node.tag, str(node.value)
        if tag == "tag:yaml.org,2002:str":
            return value
        if tag == "tag:yaml.org,2002:bool":
            return value.lower() == "true"
        if tag == "tag:yaml.org,2002:null":
            return None
        if tag == "tag:yaml.org,2002:int":
            try:
                return int(value, 0) if value.lstrip("+-").startswith("0") and len(value.lstrip("+-")) > 1 else int(value)
            except ValueError:
                return value
        if tag == "tag:yaml.org,2002:float":
            try:
                return float(value.replace(".inf", "inf").replace(".Inf", "inf").replace(".INF", "inf").replace(".nan", "nan").replace(".NaN", "nan").replace(".NAN", "nan"))
            except ValueError:
                return value
        self.unsupported_tag(node)
        return value


class _TooBigError(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__("document too big")
        self.node = node


class _RecursiveError(Exception):
    def __init__(self, node: yaml.Node) -> None:
        super().__init__("recursive alias")
        self.node = node


def parse_yaml(text: str | bytes, path: str = "") -> tuple[Document | None, list[Problem]]:
    """Parse one YAML document into plain data with positions, or say why not."""
    try:
        node = yaml.compose(text, Loader=Yaml12SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        message = " ".join(part for part in (error.context, error.problem) if part)
        return None, [
            Problem(
                ProblemCode.YAML_SYNTAX,
                f"YAML syntax error: {message}",
                "Check indentation and quoting near this position; a value with ': ' or '#' needs quotes.",
                path,
                line,
                column,
            )
        ]
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as error:
        return None, [Problem(ProblemCode.YAML_SYNTAX, f"YAML syntax error: {error}", "", path, 1, 1)]
    except RecursionError:
        return None, [Problem(ProblemCode.YAML_SYNTAX, "YAML nested too deeply", "", path, 1, 1)]
    if node is None:
        return Document(None, SourceMap()), []
    builder = _Builder(path)
    try:
        data = builder.build(node, (), frozenset())
    except _TooBigError as error:
        pos = _pos(error.node)
        return None, [
            Problem(
                ProblemCode.YAML_UNSUPPORTED,
                f"document too big or nested too deeply (more than {MAX_NODES} values or {MAX_DEPTH} levels)",
                "Aliases are expanded every time they are used; avoid nesting them.",
                path,
                pos.line,
                pos.column,
            )
        ]
    except _RecursiveError as error:
        pos = _pos(error.node)
        return None, [
            Problem(ProblemCode.YAML_UNSUPPORTED, "an alias refers to itself", "", path, pos.line, pos.column)
        ]
    return Document(data, SourceMap(builder.values, builder.keys)), builder.problems


@functools.cache
def flow_schema_text() -> str:
    """Return the JSON Schema of the flow format, as shipped in the package."""
    return resources.files("lotse.engine").joinpath("flow.schema.json").read_text(encoding="utf-8")


@dataclass(frozen=True, slots=True)
class _Validator:
    """A ``jsonschema`` validator with the fast yes/no check of the same schema in front."""

    slow: jsonschema.protocols.Validator
    fast: Predicate | None

    def iter_errors(self, instance: Any) -> Iterator[ValidationError]:
        if self.fast is not None and self.fast(instance):
            return iter(())
        return self.slow.iter_errors(instance)


@functools.cache
def _validators() -> tuple[_Validator, dict[str, _Validator]]:
    """Return a validator of the document without step bodies, and one per step type.

    Validating each step against its own type's schema directly is several
    times faster than letting the full schema try eight ``if``/``then``
    branches per step, and gives the same errors. Each validator is compiled
    once per process, with :mod:`lotse.engine.fastschema` in front: only a
    part that is not valid goes through ``jsonschema``, for its messages.
    """
    schema = json.loads(flow_schema_text())
    cls = jsonschema.validators.validator_for(schema)
    outer = json.loads(flow_schema_text())
    outer["properties"]["steps"]["additionalProperties"] = {
        "type": "object",
        "required": ["type"],
        "properties": {"type": schema["$defs"]["step"]["properties"]["type"]},
    }
    per_type: dict[str, _Validator] = {}
    for kind in schema["$defs"]["step"]["properties"]["type"]["enum"]:
        sub = {"$schema": schema["$schema"], "$defs": schema["$defs"], "$ref": f"#/$defs/{kind}"}
        per_type[kind] = _Validator(cls(sub), compile_schema(sub))
    return _Validator(cls(outer), compile_schema(outer)), per_type


def _where(path: NodePath) -> str:
    if len(path) >= 2 and path[0] == "steps":
        rest = path[2:]
        inner = f" at '{'.'.join(str(p) for p in rest)}'" if rest else ""
        return f"in step '{path[1]}'{inner}"
    if not path:
        return "at the top level"
    return f"at '{'.'.join(str(p) for p in path)}'"


_TYPE_NAMES = {
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "null": "nothing",
}


def _describe(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "nothing" if value is None else type(value).__name__


def _leaf_errors(error: ValidationError) -> Iterator[ValidationError]:
    """Descend into anyOf/oneOf to the errors that explain the failure best."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        specific = [e for e in error.context if e.validator != "type"]
        if specific:
            best = max(specific, key=lambda e: len(e.absolute_path))
            depth = len(best.absolute_path)
            for sub in specific:
                if len(sub.absolute_path) == depth:
                    yield from _leaf_errors(sub)
            return
    yield error


def _schema_problems(data: Any, source: SourceMap, path: str) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[str, int, int]] = set()
    outer, per_type = _validators()
    errors: list[tuple[NodePath, ValidationError]] = [(( ), e) for e in outer.iter_errors(data)]
    steps = data.get("steps") if isinstance(data, dict) else None
    if isinstance(steps, dict):
        for step_id, step in steps.items():
            kind = step.get("type") if isinstance(step, dict) else None
            if isinstance(kind, str) and kind in per_type:
                errors.extend((("steps", step_id), e) for e in per_type[kind].iter_errors(step))
    for prefix, top in errors:
        for error in _leaf_errors(top):
            at: NodePath = (*prefix, *error.absolute_path)
            for problem in _schema_problem(error, at, source, path):
                key = (problem.message, problem.line, problem.column)
                if key not in seen:
                    seen.add(key)
                    problems.append(problem)
    return problems


def _schema_problem(error: ValidationError, at: NodePath, source: SourceMap, path: str) -> Iterator[Problem]:
    schema = error.schema if isinstance(error.schema, dict) else {}
    where = _where(at)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        for key in error.instance:
            if key not in allowed:
                pos = source.key_pos((*at, key))
                hint = f"Allowed here: {', '.join(allowed)}." if allowed else ""
                if error.instance[key] is None and " " in key:
                    hint = (
                        "A comma inside {...} starts a new key: put a text with a comma in quotes, "
                        'e.g. label: "Yes, used recently".'
                    )
                yield Problem(ProblemCode.UNKNOWN_KEY, f"unknown key '{key}' {where}", hint, path, pos.line, pos.column)
        return
    if error.validator == "required" and isinstance(error.validator_value, list) and isinstance(error.instance, dict):
        pos = source.pos(at)
        for key in error.validator_value:
            if key not in error.instance:
                yield Problem(
                    ProblemCode.MISSING_KEY,
                    f"missing required key '{key}' {where}",
                    "Add the key; FLOWS.md lists what each step needs.",
                    path,
                    pos.line,
                    pos.column,
                )
        return
    if error.validator == "propertyNames":
        name = error.instance
        pos = source.key_pos((*at, str(name)))
        yield Problem(
            ProblemCode.SCHEMA,
            f"'{name}' is not a valid name {where}",
            "Ids are lower-case words joined by '-' (step ids) or '-'/'_' (options, fields, inputs).",
            path,
            pos.line,
            pos.column,
        )
        return
    pos = source.pos(at)
    if error.validator == "type":
        expected = error.validator_value
        names = [_TYPE_NAMES.get(str(t), str(t)) for t in (expected if isinstance(expected, list) else [expected])]
        message = f"expected {' or '.join(names)} {where}, found {_describe(error.instance)}"
    elif error.validator == "enum" and isinstance(error.validator_value, list):
        choices = ", ".join(str(v) for v in error.validator_value)
        message = f"'{error.instance}' is not allowed {where}; use one of: {choices}"
    elif error.validator == "pattern":
        message = f"'{error.instance}' is not a valid id {where}"
        yield Problem(ProblemCode.SCHEMA, message, "Use lower-case words joined by '-'.", path, pos.line, pos.column)
        return
    elif error.validator == "minProperties":
        message = f"{where[0].upper()}{where[1:]}: needs at least one entry"
    elif error.validator == "minItems":
        message = f"{where[0].upper()}{where[1:]}: the list needs at least one entry"
    elif error.validator == "minLength":
        message = f"{where[0].upper()}{where[1:]}: the text must not be empty"
    else:
        message = f"{error.message} {where}"
    yield Problem(ProblemCode.SCHEMA, message, "", path, pos.line, pos.column)


# ---------------------------------------------------------------------------
# model construction (lenient: it also runs on schema-invalid data)


def _s(value: Any, default: str = "") -> str:
    return value if isinstance(value, str) else default


def _m(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _next(value: Any, node: NodePath, kind: TransitionKind, label: str) -> tuple[Transition, ...]:
    if isinstance(value, str):
        return (Transition(kind, label, value, None, node),)
    if isinstance(value, list):
        cases: list[Transition] = []
        for i, case in enumerate(value):
            if isinstance(case, dict) and isinstance(case.get("goto"), str):
                when = case.get("when")
                case_label = str(i + 1) if kind is TransitionKind.CASE else f"{label}/{i + 1}"
                cases.append(Transition(kind, case_label, case["goto"], when if isinstance(when, str) else None, (*node, i)))
        return tuple(cases)
    return ()


def _step(step_id: str, raw: Mapping[str, Any]) -> Step | None:
    at: NodePath = ("steps", step_id)
    kind = raw.get("type")
    text = _s(raw.get("text"))
    nxt = _next(raw.get("next"), (*at, "next"), TransitionKind.NEXT, "next")
    if isinstance(raw.get("next"), list):
        nxt = _next(raw.get("next"), (*at, "next"), TransitionKind.CASE, "")
    match kind:
        case StepType.INFO:
            return InfoStep(step_id, text, nxt)
        case StepType.QUESTION:
            options = tuple(
                Option(
                    oid,
                    _s(_m(o).get("label")),
                    _next(_m(o).get("next"), (*at, "options", oid, "next"), TransitionKind.OPTION, oid),
                    _m(o).get("when") if isinstance(_m(o).get("when"), str) else None,
                )
                for oid, o in _m(raw.get("options")).items()
            )
            answer = raw.get("answer")
            return QuestionStep(step_id, text, options, answer if isinstance(answer, str) else None)
        case StepType.FORM:
            fields = []
            for fid, f in _m(raw.get("fields")).items():
                f = _m(f)
                try:
                    ftype = FieldType(str(f.get("type")))
                except ValueError:
                    ftype = FieldType.STRING
                choices = f.get("choices")
                fields.append(
                    Field(
                        fid,
                        ftype,
                        _s(f.get("label")),
                        f.get("required") is not False,
                        f.get("pattern") if isinstance(f.get("pattern"), str) else None,
                        tuple(str(c) for c in choices) if isinstance(choices, list) else (),
                        _s(f.get("help")),
                    )
                )
            return FormStep(step_id, text, tuple(fields), nxt)
        case StepType.CHECKLIST:
            items = tuple(
                Item(iid, _s(_m(i).get("label")), _m(i).get("check") if isinstance(_m(i).get("check"), str) else None)
                for iid, i in _m(raw.get("items")).items()
            )
            return ChecklistStep(step_id, text, items, nxt)
        case StepType.ACTION:
            retry_raw = _m(raw.get("retry"))
            retry = None
            if isinstance(retry_raw.get("attempts"), int) and not isinstance(retry_raw.get("attempts"), bool):
                backoff = retry_raw.get("backoff_seconds", 1)
                retry = Retry(
                    max(1, min(10, retry_raw["attempts"])),
                    float(backoff) if isinstance(backoff, int | float) and not isinstance(backoff, bool) else 1.0,
                )
            on_error = tuple(
                Transition(TransitionKind.ERROR, code, target, None, (*at, "on_error", code))
                for code, target in _m(raw.get("on_error")).items()
                if isinstance(target, str)
            )
            confirm = raw.get("confirm")
            return ActionStep(
                step_id,
                _s(raw.get("action")),
                _m(raw.get("args")),
                confirm if isinstance(confirm, str) else None,
                text,
                nxt,
                on_error,
                retry,
            )
        case StepType.BRANCH:
            return BranchStep(step_id, _next(raw.get("next"), (*at, "next"), TransitionKind.CASE, ""))
        case StepType.SUBFLOW:
            outcomes = tuple(
                Transition(TransitionKind.OUTCOME, outcome, target, None, (*at, "next", outcome))
                for outcome, target in _m(raw.get("next")).items()
                if isinstance(target, str)
            )
            return SubflowStep(step_id, _s(raw.get("flow")), _m(raw.get("inputs")), outcomes)
        case StepType.END:
            try:
                outcome = Outcome(str(raw.get("outcome")))
            except ValueError:
                outcome = Outcome.NOT_RESOLVED
            return EndStep(step_id, outcome, text)
    return None


def build_flow(data: Any, source: SourceMap, path: str, content_hash: str) -> Flow | None:
    """Build the model from plain data, as far as the data allows."""
    if not isinstance(data, dict):
        return None
    steps: dict[str, Step] = {}
    for step_id, raw in _m(data.get("steps")).items():
        step = _step(step_id, _m(raw))
        if step is not None:
            steps[step_id] = step
    inputs = []
    for iid, raw in _m(data.get("inputs")).items():
        raw = _m(raw)
        try:
            itype = InputType(str(raw.get("type")))
        except ValueError:
            itype = InputType.STRING
        inputs.append(InputSpec(iid, itype, _s(raw.get("label"), iid), raw.get("required") is not False))
    facts = [
        FactRef(name, _s(_m(raw).get("fact")), _m(_m(raw).get("args")))
        for name, raw in _m(data.get("facts")).items()
    ]
    version = data.get("version")
    audience = data.get("audience")
    tags = data.get("tags")
    return Flow(
        id=_s(data.get("flow")),
        version=version if isinstance(version, int) and not isinstance(version, bool) else 0,
        title=_s(data.get("title")),
        description=_s(data.get("description")),
        audience=tuple(str(a) for a in audience) if isinstance(audience, list) else (),
        tags=tuple(str(t) for t in tags) if isinstance(tags, list) else (),
        inputs=tuple(inputs),
        facts=tuple(facts),
        start=_s(data.get("start")),
        steps=steps,
        path=path,
        content_hash=content_hash,
        source=source,
    )


@dataclass(frozen=True, slots=True)
class LoadResult:
    """A loaded flow (``None`` when the text is not a flow at all) and its problems."""

    flow: Flow | None
    problems: tuple[Problem, ...]
    schema_valid: bool


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a flow's objects are built.

    Building a flow allocates tens of thousands of objects that all stay
    alive; each allocation burst triggers collections that walk every object
    alive so far, which made loading and checking grow faster than the flow
    (×17 for ×10 steps at 5,000 steps). Nothing built here is cyclic garbage
    that must go at once; collection resumes afterwards. Leaves the collector
    off if it was off.
    """
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_flow(text: str | bytes, path: str = "") -> LoadResult:
    """Load a flow from its text; never raises for anything wrong in the text."""
    with gc_paused():
        return _load_flow(text, path)


def _load_flow(text: str | bytes, path: str) -> LoadResult:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    content_hash = hashlib.sha256(raw).hexdigest()
    document, problems = parse_yaml(raw, path)
    if document is None:
        return LoadResult(None, tuple(problems), False)
    if not isinstance(document.data, dict):
        problems.append(
            Problem(
                ProblemCode.SCHEMA,
                "a flow file must be a mapping with keys such as 'flow', 'version', 'steps'",
                "Start from the example in FLOWS.md.",
                path,
                1,
                1,
            )
        )
        return LoadResult(None, tuple(problems), False)
    schema_problems = _schema_problems(document.data, document.source, path)
    problems.extend(schema_problems)
    flow = build_flow(document.data, document.source, path, content_hash)
    return LoadResult(flow, tuple(problems), not schema_problems and not problems)


def load_flow_file(path: str) -> LoadResult:
    """Load a flow from a file; an unreadable file is a problem, not an exception."""
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except OSError as error:
        return LoadResult(
            None, (Problem(ProblemCode.FILE_UNREADABLE, f"cannot read the file: {error.strerror}", "", path, 0, 0),), False
        )
    return load_flow(text, path)
