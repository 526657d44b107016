"""The authoring command line, through click's test runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from lotse.engine.catalogue import FileCatalogue
from lotse.engine.cli import main, make_flows_group
from lotse.engine.testing import load_scenarios, run_case_sync
from tests.engine.support import BROKEN, FLOWS, HERE, load

GROUP = make_flows_group(lambda: FileCatalogue.from_path(HERE / "catalogue.yaml"))
DIRS = ["--flows-dir", str(FLOWS)]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(GROUP, list(args))
    return result.exit_code, result.output


def test_check_clean_and_broken() -> None:
    assert invoke("check", "--no-translations", *DIRS)[0] == 0
    code, output = invoke("check", str(BROKEN / "unknown-step.yaml"), *DIRS)
    assert code == 1
    assert "unknown-step.yaml:12:27: step 'ask' goes to 'dome'" in output


def test_check_on_an_empty_flows_directory_succeeds(tmp_path: Path) -> None:
    assert invoke("check", "--flows-dir", str(tmp_path), "--locales-dir", str(tmp_path))[0] == 0
    assert invoke("check", "--flows-dir", str(tmp_path / "missing"))[0] == 0
    assert invoke("test", "--coverage", "--fail-under", "100", "--flows-dir", str(tmp_path))[0] == 0


def test_test_command_with_coverage() -> None:
    code, output = invoke("test", "--coverage", "--fail-under", "100", *DIRS)
    assert code == 0, output
    assert "features" in output
    assert "100%" in output


def test_failing_scenario_says_where_it_parted(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("broken"))
    path = tmp_path / "flows" / "tests" / "therapist-can-log-in.yaml"
    path.write_text(path.read_text().replace("path: [account-state, reactivate, can-log-in, done]", "path: [account-state, reactivate, done]"))
    code, output = invoke("test", "--flows-dir", str(tmp_path / "flows"), "therapist-can-log-in")
    assert code == 1
    assert "the path parted: at position 3 expected 'done' but walked 'can-log-in'" in output
    cases, problems = load_scenarios(path)
    assert problems == []
    cases[0] = type(cases[0])(**{**cases[0].__dict__, "answers": ("confirm",)})
    result = run_case_sync(cases[0], load("therapist-can-log-in"), flows={"login-help": load("login-help")})
    assert result.failure == "the answers ran out at step 'can-log-in' (question) in flow 'therapist-can-log-in'"


def test_coverage_below_threshold_fails(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows", ignore=shutil.ignore_patterns("broken"))
    path = tmp_path / "flows" / "tests" / "features.yaml"
    path.write_text(path.read_text().split("  - name: not urgent")[0])
    code, output = invoke("test", "--coverage", "--fail-under", "100", "--flows-dir", str(tmp_path / "flows"))
    assert code == 1
    assert "not walked: " in output
    assert "choose → option:stop" in output


@pytest.mark.parametrize(("fmt", "marker"), [("mermaid", "flowchart TD"), ("dot", "digraph"), ("svg", "<svg")])
def test_graph_formats(fmt: str, marker: str) -> None:
    if fmt == "svg" and shutil.which("dot") is None:
        pytest.skip("Graphviz is not installed")
    code, output = invoke("graph", "therapist-can-log-in", "--format", fmt, *DIRS)
    assert code == 0
    assert marker in output
    if fmt != "svg":
        assert "error: not_permitted" in output


def test_graph_svg_without_graphviz_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    code, output = invoke("graph", "login-help", "--format", "svg", *DIRS)
    assert code == 1
    assert "graphviz" in output


def test_schema_is_printed() -> None:
    code, output = invoke("schema")
    assert code == 0
    assert json.loads(output)["title"] == "Lotse support flow"


def test_run_with_scripted_answers_and_back() -> None:
    code, output = invoke(
        "run", "therapist-can-log-in", "--dry-run", *DIRS,
        "--inputs", json.dumps({"therapist": {"name": "Eva", "email": "e@x.org"}}),
        "--answers", json.dumps(["back", "dormant", "confirm", "yes"]),
    )  # fmt: skip
    assert code == 0, output
    assert "outcome: resolved" in output
    assert "mail.resend_welcome" in output


def test_run_interactively() -> None:
    result = CliRunner().invoke(
        GROUP,
        ["run", "features", "--dry-run", *DIRS, "--inputs", '{"client": {"name": "Ann"}}'],
        input="\nann@example.org\n\n2\nno\nmail\n\n\nnope\n2\n",
    )
    assert result.exit_code == 0, result.output
    assert "1. Search" in result.output
    assert "outcome: not_resolved" in result.output


def test_standalone_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--catalogue", str(HERE / "catalogue.yaml"), "check", "--no-translations", *DIRS])
    assert exit_info.value.code == 0
