"""Draw a flow: Mermaid and Graphviz dot text, SVG through Graphviz's ``dot``.

Steps are drawn by type (questions as diamonds, actions as subroutines,
branches as hexagons, ends as rounded boxes coloured by outcome); edges are
labelled with the option, case, error code or outcome they stand for, so the
drawing reads like the file. Node ids are generated (``s0``, ``s1``...)
because step ids may contain characters Mermaid treats specially.
"""

from __future__ import annotations

import shutil
import subprocess

from lotse.engine.model import (
    EndStep,
    Flow,
    Outcome,
    Step,
    StepType,
    Transition,
    TransitionKind,
    transitions,
)

_OUTCOME_COLOURS = {
    Outcome.RESOLVED: "#c8e6c9",
    Outcome.ESCALATED: "#ffe0b2",
    Outcome.NOT_RESOLVED: "#ffcdd2",
    Outcome.ABANDONED: "#e0e0e0",
}


class GraphvizMissingError(RuntimeError):
    """Graphviz's ``dot`` is not installed."""


def _edge_label(step: Step, transition: Transition) -> str:
    match transition.kind:
        case TransitionKind.NEXT:
            return ""
        case TransitionKind.CASE:
            return f"if {transition.when}" if transition.when else "otherwise"
        case TransitionKind.OPTION:
            option = transition.label.split("/")[0]
            return f"{option}: {transition.when}" if transition.when else option
        case TransitionKind.ERROR:
            return f"error: {transition.label}"
        case TransitionKind.OUTCOME:
            return transition.label
    return ""  # pragma: no cover


def _title(step: Step) -> str:
    match step.type:
        case StepType.ACTION:
            return f"{step.id}\n{getattr(step, 'action', '')}"
        case StepType.SUBFLOW:
            return f"{step.id}\n→ {getattr(step, 'flow', '')}"
        case StepType.END:
            return f"{step.id}\n{getattr(step, 'outcome', '')}"
    return step.id


def _mermaid_text(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", "<br/>") + '"'


def to_mermaid(flow: Flow) -> str:
    """Return the flow as a Mermaid flowchart."""
    ids = {step_id: f"s{i}" for i, step_id in enumerate(flow.steps)}
    shapes = {
        StepType.INFO: ("[", "]"),
        StepType.QUESTION: ("{", "}"),
        StepType.FORM: ("[/", "/]"),
        StepType.CHECKLIST: ("[\\", "\\]"),
        StepType.ACTION: ("[[", "]]"),
        StepType.BRANCH: ("{{", "}}"),
        StepType.SUBFLOW: ("[[", "]]"),
        StepType.END: ("([", "])"),
    }
    lines = ["flowchart TD", f"  start((start)) --> {ids.get(flow.start, 'missing')}"]
    for step in flow.steps.values():
        left, right = shapes[step.type]
        lines.append(f"  {ids[step.id]}{left}{_mermaid_text(_title(step))}{right}")
    for step in flow.steps.values():
        for transition in transitions(step):
            target = ids.get(transition.target)
            if target is None:
                continue
            label = _edge_label(step, transition)
            arrow = f"-- {_mermaid_text(label)} -->" if label else "-->"
            lines.append(f"  {ids[step.id]} {arrow} {target}")
    for outcome, colour in _OUTCOME_COLOURS.items():
        lines.append(f"  classDef {outcome.value} fill:{colour}")
    for step in flow.steps.values():
        if isinstance(step, EndStep):
            lines.append(f"  class {ids[step.id]} {step.outcome.value}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(flow: Flow) -> str:
    """Return the flow as a Graphviz digraph."""
    shapes = {
        StepType.INFO: "box",
        StepType.QUESTION: "diamond",
        StepType.FORM: "parallelogram",
        StepType.CHECKLIST: "folder",
        StepType.ACTION: "box3d",
        StepType.BRANCH: "hexagon",
        StepType.SUBFLOW: "component",
        StepType.END: "box",
    }
    lines = [
        f"digraph {_dot_text(flow.id)} {{",
        "  rankdir=TB;",
        '  node [fontname="Helvetica" fontsize=10];',
        '  edge [fontname="Helvetica" fontsize=9];',
        '  "__start" [shape=circle label="start" width=0.5];',
    ]
    if flow.start in flow.steps:
        lines.append(f'  "__start" -> {_dot_text(flow.start)};')
    for step in flow.steps.values():
        extra = ""
        if isinstance(step, EndStep):
            extra = f' style="rounded,filled" fillcolor="{_OUTCOME_COLOURS[step.outcome]}"'
        lines.append(f"  {_dot_text(step.id)} [shape={shapes[step.type]} label={_dot_text(_title(step))}{extra}];")
    for step in flow.steps.values():
        for transition in transitions(step):
            if transition.target not in flow.steps:
                continue
            label = _edge_label(step, transition)
            style = " style=dashed" if transition.kind is TransitionKind.ERROR else ""
            attrs = f" [label={_dot_text(label)}{style}]" if label or style else ""
            lines.append(f"  {_dot_text(step.id)} -> {_dot_text(transition.target)}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_svg(flow: Flow, timeout: float = 30.0) -> str:
    """Render the flow to SVG with Graphviz's ``dot``; raises :class:`GraphvizMissingError` without it."""
    dot = shutil.which("dot")
    if dot is None:
        raise GraphvizMissingError(
            "Graphviz's 'dot' program is not installed; install the 'graphviz' package "
            "(e.g. 'apt-get install graphviz'), or use --format mermaid or dot."
        )
    completed = subprocess.run(  # noqa: S603 - fixed program, text on stdin
        [dot, "-Tsvg"], input=to_dot(flow), capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"dot failed: {completed.stderr.strip()}")
    return completed.stdout
