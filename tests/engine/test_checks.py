"""Each check of FLOWS.md §Checks against a flow broken in exactly that way.

Each file under ``flows/broken/`` marks the lines where problems are expected
with ``# expect: <code> [<code>...]``; the check must report exactly those
codes at exactly those lines, nothing else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.checks import check_paths
from lotse.engine.problems import ProblemCode
from tests.engine.support import BROKEN, FLOWS

BROKEN_FILES = sorted(BROKEN.glob("*.yaml"))


def expected(path: Path) -> list[tuple[str, int]]:
    found = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        match = re.search(r"# expect: ([a-z_ ]+)$", line)
        if match:
            found.extend((code, number) for code in match.group(1).split())
    return sorted(found)


@pytest.mark.parametrize("path", BROKEN_FILES, ids=[p.stem for p in BROKEN_FILES])
def test_broken_flow_reports_exactly_its_problem(path: Path, catalogue: FileCatalogue) -> None:
    problems = check_paths([path], catalogue=catalogue, flows_dir=FLOWS)[str(path)]
    assert sorted((str(p.code), p.line) for p in problems) == expected(path), [p.format() for p in problems]
    assert all(p.column >= 1 and p.path == str(path) for p in problems)


def test_every_check_code_has_a_broken_flow() -> None:
    covered = {code for path in BROKEN_FILES for code, _ in expected(path)}
    not_from_checks = {
        ProblemCode.FILE_UNREADABLE, ProblemCode.YAML_UNSUPPORTED, ProblemCode.EXPRESSION_FAILED,
        ProblemCode.INVALID_INPUT, ProblemCode.STUCK,
        ProblemCode.MISSING_TRANSLATION, ProblemCode.FUZZY_TRANSLATION,  # see test_i18n
    }  # fmt: skip
    assert {str(c) for c in ProblemCode} - {str(c) for c in not_from_checks} <= covered


def test_example_flows_are_clean(catalogue: FileCatalogue) -> None:
    results = check_paths([FLOWS], catalogue=catalogue, flows_dir=FLOWS)
    assert results
    assert all(problems == [] for problems in results.values()), results


def test_all_problems_of_a_file_in_one_run(tmp_path: Path, catalogue: FileCatalogue) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(
        "flow: many\nversion: 0\ntitle: T\naudience: [nobody]\nstart: a\nsteps:\n"
        "  a: {type: info, text: '{{ nope }}', next: b}\n  a: {type: end, outcome: resolved}\n"
    )
    codes = {p.code for p in check_paths([path], catalogue=catalogue)[str(path)]}
    assert {ProblemCode.SCHEMA, ProblemCode.DUPLICATE_STEP, ProblemCode.UNKNOWN_STEP, ProblemCode.UNKNOWN_NAME} <= codes


def test_problem_lines_are_formatted_for_editors(catalogue: FileCatalogue) -> None:
    path = BROKEN / "unknown-step.yaml"
    (problem,) = check_paths([path], catalogue=catalogue, flows_dir=FLOWS)[str(path)]
    assert problem.format().startswith(f"{path}:12:27: step 'ask' goes to 'dome', which does not exist")
    assert "Did you mean 'done'?" in problem.hint


def test_yaml_11_booleans_stay_strings(tmp_path: Path) -> None:
    from lotse.engine.loader import load_flow

    result = load_flow(
        "flow: b\nversion: 1\ntitle: T\naudience: [client]\nstart: q\nsteps:\n"
        "  q: {type: question, text: Q, options: {yes: {label: Yes, next: e}, no: {label: No, next: e},"
        " on: {label: On, next: e}, off: {label: Off, next: e}}}\n  e: {type: end, outcome: resolved, text: '10:30'}\n",
        "b.yaml",
    )
    assert result.problems == ()
    assert result.flow is not None
    step = result.flow.steps["q"]
    assert [o.id for o in step.options] == ["yes", "no", "on", "off"]  # type: ignore[union-attr]
    assert [o.label for o in step.options] == ["Yes", "No", "On", "Off"]  # type: ignore[union-attr]
    assert result.flow.steps["e"].text == "10:30"  # type: ignore[union-attr]


def test_alias_bomb_is_a_problem_not_a_hang() -> None:
    from lotse.engine.loader import load_flow

    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]\n"
        for i in range(8)
    )
    result = load_flow(bomb, "bomb.yaml")
    assert result.flow is None
    assert result.problems[0].code is ProblemCode.YAML_UNSUPPORTED


def test_comma_in_flow_mapping_label_gets_a_hint(tmp_path: Path) -> None:
    from lotse.engine.loader import load_flow

    result = load_flow(
        "flow: c\nversion: 1\ntitle: T\naudience: [client]\nstart: q\nsteps:\n"
        "  q: {type: question, text: Q, options: {a: {label: Yes, used recently, next: e}}}\n"
        "  e: {type: end, outcome: resolved}\n",
        "c.yaml",
    )
    (problem,) = result.problems
    assert problem.code is ProblemCode.UNKNOWN_KEY
    assert "quotes" in problem.hint
