"""The semantic checks of FLOWS.md §Checks, one small function each.

Every check takes a :class:`CheckContext` and yields problems with the
position of what it complains about and a hint. :func:`check_flow` runs the
loader's problems and all checks; :func:`check_paths` does it for files and
directories the way ``lotse flows check`` needs (sub-flows are looked up
among the flows found next to each other).

The graph checks (reachability, ends, cycles) only run on a schema-valid
flow: on a broken one they would report the consequences of the schema
problem instead of the problem.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema

from lotse.engine.expressions import CONTEXT_ROOTS, Analysis, Evaluator, helpers
from lotse.engine.i18n import (
    LANGUAGES,
    PoFile,
    TranslationState,
    po_path,
    read_po_file,
    translation_status,
)
from lotse.engine.loader import LoadResult, gc_paused, load_flow_file
from lotse.engine.model import (
    INTERRUPTING,
    ActionStep,
    ChecklistStep,
    EndStep,
    Flow,
    FormStep,
    InfoStep,
    NodePath,
    QuestionStep,
    Step,
    StepType,
    SubflowStep,
    Transition,
    TransitionKind,
    transitions,
)
from lotse.engine.ports import Catalogue
from lotse.engine.problems import Problem, ProblemCode

#: Error codes the engine itself produces, valid in every ``on_error``.
ENGINE_ERROR_CODES = frozenset({"default", "cancelled", "invalid_arguments"})


@dataclass(frozen=True)
class CheckContext:
    """Everything a check may look at."""

    flow: Flow
    catalogue: Catalogue | None = None
    flows: Mapping[str, Flow] = field(default_factory=dict)
    evaluator: Evaluator = field(default_factory=Evaluator)
    po_files: Mapping[str, PoFile] | None = None
    schema_valid: bool = True

    def problem(self, code: ProblemCode, message: str, node: NodePath, hint: str = "", *, key: bool = False) -> Problem:
        """Return a problem positioned at a node (or at the key naming it)."""
        pos = self.flow.source.key_pos(node) if key else self.flow.source.pos(node)
        return Problem(code, message, hint, self.flow.path, pos.line, pos.column)


Check = Callable[[CheckContext], Iterator[Problem]]


def _similar(word: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1)
    return f"Did you mean '{close[0]}'?" if close else ""


def _step_node(step_id: str) -> NodePath:
    return ("steps", step_id)


# -- identity --------------------------------------------------------------


def check_flow_id(ctx: CheckContext) -> Iterator[Problem]:
    """The ``flow`` id must equal the file name without ``.yaml``."""
    if not ctx.flow.path:
        return
    stem = Path(ctx.flow.path).name.removesuffix(".yaml").removesuffix(".yml")
    if ctx.flow.id and ctx.flow.id != stem:
        yield ctx.problem(
            ProblemCode.FLOW_ID_MISMATCH,
            f"the flow id '{ctx.flow.id}' does not match the file name '{stem}.yaml'",
            ("flow",),
            f"Rename the file to '{ctx.flow.id}.yaml' or set 'flow: {stem}'.",
        )


# -- references and graph ----------------------------------------------------


def check_targets(ctx: CheckContext) -> Iterator[Problem]:
    """``start`` and every next, option, case, error mapping and outcome must name a step."""
    steps = ctx.flow.steps
    if ctx.flow.start and ctx.flow.start not in steps:
        yield ctx.problem(
            ProblemCode.UNKNOWN_STEP,
            f"'start' names a step '{ctx.flow.start}' that does not exist",
            ("start",),
            _similar(ctx.flow.start, steps),
        )
    for step in steps.values():
        for transition in transitions(step):
            if transition.target not in steps:
                node = (*transition.node, "goto") if transition.kind is TransitionKind.CASE or "/" in transition.label else transition.node
                yield ctx.problem(
                    ProblemCode.UNKNOWN_STEP,
                    f"step '{step.id}' goes to '{transition.target}', which does not exist",
                    node,
                    _similar(transition.target, steps) or "Add the step or correct the id.",
                )


def _edges(flow: Flow) -> dict[str, list[str]]:
    return {
        step.id: [t.target for t in transitions(step) if t.target in flow.steps] for step in flow.steps.values()
    }


def _reachable(flow: Flow) -> set[str]:
    if flow.start not in flow.steps:
        return set()
    edges = _edges(flow)
    seen = {flow.start}
    todo = [flow.start]
    while todo:
        for target in edges[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def check_reachable(ctx: CheckContext) -> Iterator[Problem]:
    """Every step must be reachable from ``start``."""
    if not ctx.schema_valid or ctx.flow.start not in ctx.flow.steps:
        return
    reached = _reachable(ctx.flow)
    for step_id in ctx.flow.steps:
        if step_id not in reached:
            yield ctx.problem(
                ProblemCode.UNREACHABLE_STEP,
                f"no path from 'start' reaches step '{step_id}'",
                _step_node(step_id),
                "Link it from another step's next or option, or remove it.",
                key=True,
            )


def check_end_reachable(ctx: CheckContext) -> Iterator[Problem]:
    """From every reachable step some ``end`` must be reachable."""
    if not ctx.schema_valid:
        return
    flow = ctx.flow
    reverse: dict[str, list[str]] = {step_id: [] for step_id in flow.steps}
    for source, targets in _edges(flow).items():
        for target in targets:
            reverse[target].append(source)
    ending = {step.id for step in flow.steps.values() if isinstance(step, EndStep)}
    todo = list(ending)
    while todo:
        for source in reverse[todo.pop()]:
            if source not in ending:
                ending.add(source)
                todo.append(source)
    order = {step_id: i for i, step_id in enumerate(flow.steps)}
    for step_id in sorted(_reachable(flow) - ending, key=order.__getitem__):
        yield ctx.problem(
            ProblemCode.NO_END_REACHABLE,
            f"no 'end' step can be reached from step '{step_id}'",
            _step_node(step_id),
            "Every path must be able to finish: add a way to an end step.",
            key=True,
        )


def _strong_components(nodes: list[str], edges: Mapping[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iteratively (flows of thousands of steps exceed the recursion limit)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            targets = edges.get(node, [])
            if i < len(targets):
                work.append((node, i + 1))
                target = targets[i]
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node] = min(low[node], index[target])
                continue
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                result.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    return result


def check_cycles(ctx: CheckContext) -> Iterator[Problem]:
    """A cycle must pass a ``question``, ``form`` or ``checklist``, or it never stops."""
    if not ctx.schema_valid:
        return
    flow = ctx.flow
    free = [s.id for s in flow.steps.values() if s.type not in INTERRUPTING]
    free_set = set(free)
    edges = {s: [t for t in targets if t in free_set] for s, targets in _edges(flow).items() if s in free_set}
    order = {step_id: i for i, step_id in enumerate(flow.steps)}
    for component in _strong_components(free, edges):
        if len(component) == 1 and component[0] not in edges[component[0]]:
            continue
        members = sorted(component, key=order.__getitem__)
        shown = " → ".join([*members, members[0]])
        yield ctx.problem(
            ProblemCode.UNINTERRUPTED_CYCLE,
            f"the steps {shown} form a cycle that no question, form or checklist interrupts",
            _step_node(members[0]),
            "Put a question in the loop, or make one of the cases leave it.",
            key=True,
        )


def _case_lists(step: Step) -> Iterator[tuple[tuple[Transition, ...], str]]:
    match step:
        case QuestionStep(options=options):
            for option in options:
                yield option.next, f"option '{option.id}'"
        case ActionStep() | InfoStep() | FormStep() | ChecklistStep():
            yield step.next, "next"
        case _ if step.type is StepType.BRANCH:
            yield transitions(step), "next"


def check_default_case(ctx: CheckContext) -> Iterator[Problem]:
    """A list of cases must end with one without ``when`` (the default)."""
    for step in ctx.flow.steps.values():
        for cases, what in _case_lists(step):
            if cases and cases[-1].when is not None:
                yield ctx.problem(
                    ProblemCode.NO_DEFAULT_CASE,
                    f"the cases of {what} in step '{step.id}' have no default: the last case has a 'when'",
                    cases[-1].node,
                    "End the list with a case without 'when', e.g. '- goto: ask-admin'.",
                )


def check_subflow_outcomes(ctx: CheckContext) -> Iterator[Problem]:
    """A ``subflow`` step must map ``default`` unless it maps every outcome."""
    for step in ctx.flow.steps.values():
        if isinstance(step, SubflowStep) and step.next:
            labels = {t.label for t in step.next}
            if "default" not in labels and not {"resolved", "escalated", "not_resolved"} <= labels:
                yield ctx.problem(
                    ProblemCode.MISSING_OUTCOME_DEFAULT,
                    f"step '{step.id}' maps no 'default' outcome",
                    (*_step_node(step.id), "next"),
                    "Add 'default: <step>' for the outcomes not listed.",
                    key=True,
                )


# -- actions, facts, sub-flows ------------------------------------------------


def _args_problems(ctx: CheckContext, schema: Mapping[str, Any], args: Mapping[str, Any], node: NodePath, what: str) -> Iterator[Problem]:
    properties = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    assert isinstance(properties, dict)
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    assert isinstance(required, list)
    for name in required:
        if name not in args:
            yield ctx.problem(
                ProblemCode.BAD_ARGUMENTS,
                f"{what} needs the argument '{name}'",
                node,
                f"Arguments of {what}: {', '.join(sorted(properties)) or 'none'}.",
                key=True,
            )
    for name, value in args.items():
        if schema.get("additionalProperties") is False and name not in properties:
            yield ctx.problem(
                ProblemCode.BAD_ARGUMENTS,
                f"{what} has no argument '{name}'",
                (*node, name),
                _similar(name, properties) or f"Arguments of {what}: {', '.join(sorted(properties)) or 'none'}.",
                key=True,
            )
            continue
        sub = properties.get(name)
        if not isinstance(sub, dict) or _has_template(value):
            continue
        try:
            errors = list(jsonschema.validators.validator_for(sub)(sub).iter_errors(value))
        except jsonschema.exceptions.SchemaError:
            continue
        if errors:
            yield ctx.problem(
                ProblemCode.BAD_ARGUMENTS,
                f"the argument '{name}' of {what} does not fit: {errors[0].message}",
                (*node, name),
            )


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, Mapping):
        return any(_has_template(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    return False


def check_actions(ctx: CheckContext) -> Iterator[Problem]:
    """Actions must exist in the catalogue, get fitting arguments and map known error codes."""
    if ctx.catalogue is None:
        return
    names = [spec.name for spec in ctx.catalogue.actions()]
    for step in ctx.flow.steps.values():
        if not isinstance(step, ActionStep):
            continue
        at = _step_node(step.id)
        spec = ctx.catalogue.action(step.action)
        if spec is None:
            yield ctx.problem(
                ProblemCode.UNKNOWN_ACTION,
                f"unknown action '{step.action}' in step '{step.id}'",
                (*at, "action"),
                _similar(step.action, names) or "'lotse actions list' shows the actions there are.",
            )
            continue
        yield from _args_problems(ctx, spec.args_schema, step.args, (*at, "args"), f"action '{step.action}'")
        known = set(spec.errors) | ENGINE_ERROR_CODES
        for transition in step.on_error:
            if transition.label not in known:
                yield ctx.problem(
                    ProblemCode.UNKNOWN_ERROR_CODE,
                    f"action '{step.action}' never fails with '{transition.label}'",
                    transition.node,
                    f"Its error codes: {', '.join(spec.errors) or 'none'} (and 'cancelled').",
                    key=True,
                )


def check_action_confirm(ctx: CheckContext) -> Iterator[Problem]:
    """An action that changes something needs a ``confirm`` text."""
    for step in ctx.flow.steps.values():
        if isinstance(step, ActionStep) and not step.confirm:
            spec = ctx.catalogue.action(step.action) if ctx.catalogue is not None else None
            if spec is None or spec.changes:
                yield ctx.problem(
                    ProblemCode.MISSING_CONFIRM,
                    f"action step '{step.id}' has no 'confirm' text",
                    _step_node(step.id),
                    "Say what will happen, e.g. 'confirm: Reactivate the account of {{ inputs.therapist.name }}?'.",
                    key=True,
                )


def check_action_default(ctx: CheckContext) -> Iterator[Problem]:
    """Every action step must map ``on_error.default``."""
    for step in ctx.flow.steps.values():
        if isinstance(step, ActionStep) and not any(t.label == "default" for t in step.on_error):
            node = (*_step_node(step.id), "on_error") if step.on_error else _step_node(step.id)
            yield ctx.problem(
                ProblemCode.MISSING_ERROR_DEFAULT,
                f"action step '{step.id}' has no 'on_error' default",
                node,
                "Add 'on_error: {default: <step>}' for errors not mapped one by one.",
                key=True,
            )


def check_facts(ctx: CheckContext) -> Iterator[Problem]:
    """Declared facts must exist in the catalogue and get fitting arguments."""
    if ctx.catalogue is None:
        return
    names = [spec.name for spec in ctx.catalogue.facts()]
    for ref in ctx.flow.facts:
        spec = ctx.catalogue.fact(ref.fact)
        if spec is None:
            yield ctx.problem(
                ProblemCode.UNKNOWN_FACT,
                f"unknown fact '{ref.fact}'",
                ("facts", ref.name, "fact"),
                _similar(ref.fact, names) or "'lotse actions list' shows the facts there are.",
            )
            continue
        yield from _args_problems(ctx, spec.args_schema, ref.args, ("facts", ref.name, "args"), f"fact '{ref.fact}'")


def check_subflows(ctx: CheckContext) -> Iterator[Problem]:
    """Sub-flows must exist and get the inputs they declare."""
    for step in ctx.flow.steps.values():
        if not isinstance(step, SubflowStep):
            continue
        at = _step_node(step.id)
        sub = ctx.flows.get(step.flow)
        if sub is None:
            yield ctx.problem(
                ProblemCode.UNKNOWN_SUBFLOW,
                f"unknown sub-flow '{step.flow}' in step '{step.id}'",
                (*at, "flow"),
                _similar(step.flow, ctx.flows) or "The flow must exist as flows/<id>.yaml.",
            )
            continue
        declared = {spec.id: spec for spec in sub.inputs}
        for spec in sub.inputs:
            if spec.required and spec.id not in step.inputs:
                yield ctx.problem(
                    ProblemCode.BAD_SUBFLOW_INPUTS,
                    f"sub-flow '{sub.id}' needs the input '{spec.id}'",
                    (*at, "inputs") if step.inputs else at,
                    f"Its inputs: {', '.join(declared)}.",
                    key=True,
                )
        for name in step.inputs:
            if name not in declared:
                yield ctx.problem(
                    ProblemCode.BAD_SUBFLOW_INPUTS,
                    f"sub-flow '{sub.id}' has no input '{name}'",
                    (*at, "inputs", name),
                    _similar(name, declared) or f"Its inputs: {', '.join(declared) or 'none'}.",
                    key=True,
                )


# -- expressions -------------------------------------------------------------


def _texts(flow: Flow) -> Iterator[tuple[NodePath, str, bool]]:
    """Yield (node, source, is_template) for every expression and template in the flow."""
    yield ("title",), flow.title, True
    yield ("description",), flow.description, True
    for step in flow.steps.values():
        at = _step_node(step.id)
        text = getattr(step, "text", "")
        if text:
            yield (*at, "text"), text, True
        match step:
            case QuestionStep():
                if step.answer:
                    yield (*at, "answer"), step.answer, True
                for option in step.options:
                    yield (*at, "options", option.id, "label"), option.label, True
                    if option.when:
                        yield (*at, "options", option.id, "when"), option.when, False
            case FormStep():
                for f in step.fields:
                    yield (*at, "fields", f.id, "label"), f.label, True
                    yield (*at, "fields", f.id, "help"), f.help, True
            case ChecklistStep():
                for item in step.items:
                    yield (*at, "items", item.id, "label"), item.label, True
                    if item.check:
                        yield (*at, "items", item.id, "check"), item.check, False
            case ActionStep():
                if step.confirm:
                    yield (*at, "confirm"), step.confirm, True
        for transition in transitions(step):
            if transition.when:
                yield (*transition.node, "when"), transition.when, False


def _value_templates(ctx: CheckContext) -> Iterator[tuple[NodePath, Analysis, frozenset[str]]]:
    """Yield the templates inside args, sub-flow inputs and fact args with the names they may not use."""
    ev = ctx.evaluator
    for step in ctx.flow.steps.values():
        at = _step_node(step.id)
        if isinstance(step, ActionStep):
            for sub, analysis in ev.analyse_value(dict(step.args)):
                yield (*at, "args", *sub), analysis, frozenset()
        elif isinstance(step, SubflowStep):
            for sub, analysis in ev.analyse_value(dict(step.inputs)):
                yield (*at, "inputs", *sub), analysis, frozenset()
    for ref in ctx.flow.facts:
        for sub, analysis in ev.analyse_value(dict(ref.args)):
            yield ("facts", ref.name, "args", *sub), analysis, frozenset({"facts"})


def check_expressions(ctx: CheckContext) -> Iterator[Problem]:
    """Expressions must parse, stay within the sandbox and use only names of the context."""
    analysed: list[tuple[NodePath, Analysis, frozenset[str]]] = []
    for node, source, template in _texts(ctx.flow):
        if template and "{{" not in source and "{%" not in source:
            continue
        analysed.append((node, ctx.evaluator.analyse(source, template=template), frozenset()))
    analysed.extend(_value_templates(ctx))
    allowed = CONTEXT_ROOTS | frozenset(helpers())
    flow = ctx.flow
    inputs = {spec.id for spec in flow.inputs}
    facts = {ref.name for ref in flow.facts}
    action_steps = {s.id for s in flow.steps.values() if isinstance(s, ActionStep)}
    known_by_root: dict[str, set[str]] = {
        "inputs": inputs,
        "facts": facts,
        "answers": set(flow.steps),
        "results": action_steps,
    }
    for node, analysis, forbidden in analysed:
        pos = flow.source.pos(node)
        if analysis.error is not None:
            code = ProblemCode.EXPRESSION_SYNTAX if analysis.error.syntax else ProblemCode.FORBIDDEN_EXPRESSION
            yield Problem(
                code,
                f"expression problem: {analysis.error.message}",
                "Expressions are Jinja-style: {{ inputs.therapist.name }}, results['step'].count > 0.",
                flow.path,
                pos.line,
                pos.column,
            )
            continue
        for name in sorted(analysis.names):
            if name not in allowed or name in forbidden:
                yield Problem(
                    ProblemCode.UNKNOWN_NAME,
                    f"unknown name '{name}' in expression",
                    f"Expressions may use: {', '.join(sorted(allowed - forbidden))}." + (
                        f" {_similar(name, allowed)}" if _similar(name, allowed) else ""
                    ),
                    flow.path,
                    pos.line,
                    pos.column,
                )
        for ref in analysis.references:
            known = known_by_root.get(ref.root)
            if known is not None and ref.key not in known and ref.root not in forbidden:
                what = {"inputs": "input", "facts": "fact", "answers": "step", "results": "action step"}[ref.root]
                yield Problem(
                    ProblemCode.UNKNOWN_NAME,
                    f"unknown {what} '{ref.key}' in '{ref.root}'",
                    _similar(ref.key, known) or f"Declare it under '{ref.root}'." if ref.root in ("inputs", "facts") else _similar(ref.key, known),
                    flow.path,
                    pos.line,
                    pos.column,
                )


# -- translations --------------------------------------------------------------


def check_translations(ctx: CheckContext) -> Iterator[Problem]:
    """Every text needs a German and a Dutch translation that is not fuzzy."""
    if ctx.po_files is None:
        return
    for status in translation_status(ctx.flow, ctx.po_files):
        if status.state is TranslationState.TRANSLATED:
            continue
        code = ProblemCode.MISSING_TRANSLATION if status.state is TranslationState.MISSING else ProblemCode.FUZZY_TRANSLATION
        what = "no" if status.state is TranslationState.MISSING else "an outdated (fuzzy)"
        yield Problem(
            code,
            f"{what} {status.language} translation of '{status.message.context}'",
            "Run 'lotse flows extract', translate in locales/"
            f"{status.language}/LC_MESSAGES/flows.po and remove the fuzzy flag.",
            ctx.flow.path,
            status.message.line,
            1,
        )


CHECKS: tuple[Check, ...] = (
    check_flow_id,
    check_targets,
    check_reachable,
    check_end_reachable,
    check_cycles,
    check_default_case,
    check_subflow_outcomes,
    check_actions,
    check_action_confirm,
    check_action_default,
    check_facts,
    check_subflows,
    check_expressions,
    check_translations,
)


def check_flow(
    result: LoadResult,
    *,
    catalogue: Catalogue | None = None,
    flows: Mapping[str, Flow] | None = None,
    evaluator: Evaluator | None = None,
    po_files: Mapping[str, PoFile] | None = None,
) -> list[Problem]:
    """Return every problem of a loaded flow: the loader's and all checks', ordered by position."""
    problems = list(result.problems)
    if result.flow is not None:
        known = dict(flows or {})
        ctx = CheckContext(
            result.flow,
            catalogue,
            known,
            evaluator or Evaluator(),
            po_files,
            schema_valid=result.schema_valid,
        )
        with gc_paused():
            for check in CHECKS:
                problems.extend(check(ctx))
    return sorted(problems, key=lambda p: (p.path, p.line, p.column))


def flow_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to the ``*.yaml`` flow files directly inside them (not ``tests/``)."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()))
        else:
            files.append(path)
    return files


def load_po_files(locales_dir: str | Path | None) -> dict[str, PoFile] | None:
    """Read the flows catalogues of all languages (``None`` when there is no locales directory)."""
    if locales_dir is None or not Path(locales_dir).is_dir():
        return None
    return {language: read_po_file(po_path(locales_dir, language)) for language in LANGUAGES}


def check_paths(
    paths: Iterable[str | Path],
    *,
    catalogue: Catalogue | None,
    flows_dir: str | Path | None = None,
    locales_dir: str | Path | None = None,
    evaluator: Evaluator | None = None,
) -> dict[str, list[Problem]]:
    """Check flow files and directories; return problems per file (empty lists for clean files)."""
    evaluator = evaluator or Evaluator()
    files = flow_files(paths)
    results = {str(path): load_flow_file(str(path)) for path in files}
    known: dict[str, Flow] = {}
    if flows_dir is not None and Path(flows_dir).is_dir():
        for path in flow_files([flows_dir]):
            if str(path) not in results:
                other = load_flow_file(str(path))
                if other.flow is not None and other.flow.id:
                    known[other.flow.id] = other.flow
    for result in results.values():
        if result.flow is not None and result.flow.id:
            known.setdefault(result.flow.id, result.flow)
    po_files = load_po_files(locales_dir)
    return {
        path: check_flow(result, catalogue=catalogue, flows=known, evaluator=evaluator, po_files=po_files)
        for path, result in results.items()
    }
