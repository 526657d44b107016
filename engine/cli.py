"""The authoring command line: ``lotse flows check|test|graph|run|extract|translations|schema``.

Mounting (the platform's ``lotse`` command does this with its own catalogue)::

    from lotse.engine.cli import make_flows_group
    cli.add_command(make_flows_group(load_catalogue=my_catalogue), name="flows")

``make_flows_group(load_catalogue, make_ports=None)``:

* ``load_catalogue() -> Catalogue | None`` is called when a command needs the
  actions and facts (``None`` skips the catalogue checks);
* ``make_ports(catalogue) -> Ports`` (optional) gives ``run`` real actions
  and facts; without it, or with ``--dry-run``, ``run`` uses each action's
  and fact's example result and calls nothing.

Every command takes ``--flows-dir`` (default ``flows``) and, where it reads
translations, ``--locales-dir`` (default ``locales``).

Standalone, before the platform is wired: ``python -m lotse.engine.cli
--catalogue catalogue.yaml check``.

Messages are English: this is a tool for content editors and developers;
what a flow shows to its users is translated through ``flows.po``.
"""

from __future__ import annotations

import asyncio
import html as html_lib
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import click
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from lotse.engine.catalogue import CatalogueError, FileCatalogue
from lotse.engine.checks import check_paths, flow_files
from lotse.engine.graph import GraphvizMissingError, to_dot, to_mermaid, to_svg
from lotse.engine.i18n import (
    LANGUAGES,
    PoTranslations,
    TranslationState,
    flow_messages,
    po_path,
    read_po_file,
    translation_status,
)
from lotse.engine.loader import LoadResult, flow_schema_text, load_flow_file, parse_yaml
from lotse.engine.local import DirectoryFlows, RecordingExecutor, StaticFacts, SystemClock
from lotse.engine.model import Flow
from lotse.engine.ports import Catalogue, Ports
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
from lotse.engine.testing import CaseResult, collect_cases, coverage, run_case
from lotse.engine.views import (
    AnyView,
    ChecklistView,
    ConfirmView,
    EndView,
    FormView,
    InfoView,
    QuestionView,
)

CatalogueLoader = Callable[[], Catalogue | None]
PortsFactory = Callable[[Catalogue | None], Ports]


def _flows_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--flows-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("flows"), show_default=True,
        help="Directory of the flow files.",
    )(f)  # fmt: skip


def _locales_dir_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--locales-dir", type=click.Path(file_okay=False, path_type=Path), default=Path("locales"), show_default=True,
        help="Directory of the gettext catalogues.",
    )(f)  # fmt: skip


def _plain(html: str) -> str:
    """Turn rendered HTML into terminal text."""
    text = re.sub(r"<br\s*/?>|</p>|</li>", "\n", html)
    text = re.sub(r"<[^>]+>", "", text)
    return html_lib.unescape(text).strip()


def _find_flow(flows_dir: Path, name: str) -> LoadResult:
    path = Path(name)
    if not (path.suffix in (".yaml", ".yml") and path.is_file()):
        path = flows_dir / f"{name}.yaml"
    return load_flow_file(str(path))


def _load_or_fail(flows_dir: Path, name: str) -> Flow:
    result = _find_flow(flows_dir, name)
    if result.flow is None or not result.schema_valid:
        for problem in result.problems:
            click.echo(problem.format(), err=True)
        raise click.ClickException(f"cannot load the flow '{name}'; run 'lotse flows check' for details")
    return result.flow


def _parse_json_or_file(value: str) -> Any:
    path = Path(value)
    if path.is_file():
        document, problems = parse_yaml(path.read_bytes(), str(path))
        if document is None:
            raise click.BadParameter("; ".join(p.format() for p in problems))
        return document.data
    try:
        return json.loads(value)
    except ValueError as error:
        raise click.BadParameter(f"neither a file nor JSON: {error}") from error


def make_flows_group(load_catalogue: CatalogueLoader, make_ports: PortsFactory | None = None) -> click.Group:
    """Return the ``flows`` command group, using the given catalogue (and ports for live runs)."""

    @click.group(name="flows", help="Check, test, draw, run and translate support flows.")
    def flows() -> None:
        pass

    @flows.command(help="Check flow files (default: every flow in --flows-dir).")
    @click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
    @click.option("--translations/--no-translations", default=True, show_default=True,
                  help="Report missing and fuzzy de/nl translations.")  # fmt: skip
    @_flows_dir_option
    @_locales_dir_option
    def check(paths: tuple[Path, ...], translations: bool, flows_dir: Path, locales_dir: Path) -> None:
        targets: list[Path] = list(paths) or ([flows_dir] if flows_dir.is_dir() else [])
        missing = [p for p in targets if not p.exists()]
        if missing:
            raise click.ClickException(f"no such file or directory: {', '.join(map(str, missing))}")
        results = check_paths(
            targets,
            catalogue=load_catalogue(),
            flows_dir=flows_dir,
            locales_dir=locales_dir if translations else None,
        )
        count = 0
        for problems in results.values():
            for problem in problems:
                click.echo(problem.format())
                count += 1
        files = len(results)
        if count:
            click.echo(f"{count} problem(s) in {sum(1 for p in results.values() if p)} of {files} flow file(s).", err=True)
            raise SystemExit(1)
        click.echo(f"{files} flow file(s) checked, no problems.", err=True)

    @flows.command(help="Run the scenario tests in <flows-dir>/tests (optionally only of some flows).")
    @click.argument("flow_ids", nargs=-1)
    @click.option("--coverage", "show_coverage", is_flag=True, help="Report steps and transitions walked per flow.")
    @click.option("--fail-under", type=click.FloatRange(0, 100), default=None,
                  help="Fail when a flow's step or transition coverage is below this percentage.")  # fmt: skip
    @_flows_dir_option
    def test(flow_ids: tuple[str, ...], show_coverage: bool, fail_under: float | None, flows_dir: Path) -> None:
        catalogue = load_catalogue()
        lookup = DirectoryFlows(flows_dir)
        cases = [c for c in collect_cases(flows_dir) if not flow_ids or c.flow_id in flow_ids]
        results: list[CaseResult] = []
        failed = 0
        for case in cases:
            flow = lookup.load(case.flow_id)
            if flow is None:
                click.echo(f"FAIL {case.id}\n    {case.file}:{case.line}: the flow '{case.flow_id}' does not load")
                failed += 1
                continue
            result = asyncio.run(run_case(case, flow, catalogue=catalogue, flows=lookup))
            results.append(result)
            if result.passed:
                click.echo(f"ok   {case.id}")
            else:
                failed += 1
                click.echo(f"FAIL {case.id}\n    {case.file}:{case.line}: {result.failure}")
        below = False
        if show_coverage or fail_under is not None:
            ids = list(flow_ids) or [p.stem for p in flow_files([flows_dir])] if flows_dir.is_dir() else list(flow_ids)
            click.echo(f"\n{'flow':40} {'steps':>8} {'transitions':>12}")
            for flow_id in ids:
                flow = lookup.load(flow_id)
                if flow is None:
                    continue
                cov = coverage(flow, results)
                click.echo(f"{flow_id:40} {cov.step_share:8.0%} {cov.transition_share:12.0%}")
                if show_coverage and cov.missing:
                    click.echo("    not walked: " + ", ".join(cov.missing))
                if fail_under is not None and min(cov.step_share, cov.transition_share) * 100 < fail_under - 1e-9:
                    below = True
        click.echo(f"\n{len(cases) - failed} passed, {failed} failed.", err=True)
        if failed or below:
            if below:
                click.echo(f"Coverage is below {fail_under:g} % for some flow.", err=True)
            raise SystemExit(1)

    @flows.command(help="Draw a flow as Mermaid, Graphviz dot or SVG.")
    @click.argument("flow_name")
    @click.option("--format", "fmt", type=click.Choice(["mermaid", "dot", "svg"]), default="mermaid", show_default=True)
    @click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to a file.")
    @_flows_dir_option
    def graph(flow_name: str, fmt: str, output: Path | None, flows_dir: Path) -> None:
        flow = _load_or_fail(flows_dir, flow_name)
        if fmt == "svg":
            try:
                text = to_svg(flow)
            except GraphvizMissingError as error:
                raise click.ClickException(str(error)) from error
        else:
            text = to_mermaid(flow) if fmt == "mermaid" else to_dot(flow)
        if output is not None:
            output.write_text(text, encoding="utf-8")
        else:
            click.echo(text, nl=False)

    @flows.command(help="Walk a flow in the terminal (type 'back' or 'back N' to go back).")
    @click.argument("flow_name")
    @click.option("--locale", type=click.Choice(["en", "de", "nl"]), default="en", show_default=True)
    @click.option("--dry-run", is_flag=True, help="Use each action's example result instead of calling anything.")
    @click.option("--answers", default=None, help="Answers as JSON or a YAML/JSON file (as in scenario tests); no prompts.")
    @click.option("--inputs", "inputs_arg", default=None, help="The flow's inputs as JSON or a YAML/JSON file.")
    @_flows_dir_option
    @_locales_dir_option
    def run(flow_name: str, locale: str, dry_run: bool, answers: str | None, inputs_arg: str | None,
            flows_dir: Path, locales_dir: Path) -> None:  # fmt: skip
        flow = _load_or_fail(flows_dir, flow_name)
        catalogue = load_catalogue()
        if make_ports is not None and not dry_run:
            ports = make_ports(catalogue)
        else:
            if not dry_run:
                click.echo("(no platform connection: actions and facts use their example results)", err=True)
            ports = Ports(RecordingExecutor(catalogue), StaticFacts({}, catalogue), DirectoryFlows(flows_dir), SystemClock())
        ports = Ports(ports.actions, ports.facts, ports.flows, ports.clock, PoTranslations(locales_dir))
        scripted = _parse_json_or_file(answers) if answers is not None else None
        if scripted is not None and not isinstance(scripted, list):
            raise click.BadParameter("--answers must be a list")
        inputs = _parse_json_or_file(inputs_arg) if inputs_arg is not None else None
        if inputs is None:
            inputs = {}
            for spec in flow.inputs:
                if scripted is not None:
                    continue
                raw = click.prompt(f"{spec.label} ({spec.type}, JSON or text)", default="", show_default=False)
                if raw:
                    try:
                        inputs[spec.id] = json.loads(raw)
                    except ValueError:
                        inputs[spec.id] = {"name": raw} if spec.type not in ("string", "email", "date") else raw
        if not isinstance(inputs, dict):
            raise click.BadParameter("--inputs must be a mapping")
        outcome = asyncio.run(_walk(flow, ports, inputs, locale, scripted))
        if outcome != "ok":
            raise SystemExit(1)

    @flows.command(help="Extract flow texts into locales/flows.pot and update the de/nl flows.po safely.")
    @_flows_dir_option
    @_locales_dir_option
    def extract(flows_dir: Path, locales_dir: Path) -> None:
        template, problems = build_template(flows_dir)
        if problems:
            for line in problems:
                click.echo(line, err=True)
            raise click.ClickException("extraction stopped: fix the flows above first (nothing was written)")
        written = update_catalogues(template, locales_dir)
        for path in written:
            click.echo(f"wrote {path}")
        click.echo(f"{len(template)} text(s) from {flows_dir}.", err=True)

    @flows.command(help="Show per flow and language how many texts are translated, missing or fuzzy.")
    @_flows_dir_option
    @_locales_dir_option
    def translations(flows_dir: Path, locales_dir: Path) -> None:
        po_files = {language: read_po_file(po_path(locales_dir, language)) for language in LANGUAGES}
        click.echo(f"{'flow':40} {'lang':5} {'texts':>6} {'done':>6} {'missing':>8} {'fuzzy':>6}")
        for path in flow_files([flows_dir]) if flows_dir.is_dir() else []:
            result = load_flow_file(str(path))
            if result.flow is None:
                click.echo(f"{path.stem:40} (does not load)")
                continue
            for language in LANGUAGES:
                states = [s.state for s in translation_status(result.flow, {language: po_files[language]})]
                click.echo(
                    f"{result.flow.id:40} {language:5} {len(states):6} {states.count(TranslationState.TRANSLATED):6} "
                    f"{states.count(TranslationState.MISSING):8} {states.count(TranslationState.FUZZY):6}"
                )

    @flows.command(help="Print the JSON Schema of the flow format (for editors' YAML language servers).")
    def schema() -> None:
        click.echo(flow_schema_text(), nl=False)

    return flows


# -- run --------------------------------------------------------------------------


def _show(view: AnyView) -> None:
    for notice in view.notices:
        click.echo(f"  ! {notice.text}")
    for problem in view.problems:
        click.echo(f"  ✗ {problem.message}")
    click.echo(f"\n[{view.flow} / {view.step}]")
    if view.text:
        click.echo(_plain(view.text))
    match view:
        case QuestionView(options=options):
            for number, option in enumerate(options, start=1):
                click.echo(f"  {number}. {_plain(option.label)}  ({option.id})")
            if view.suggested:
                click.echo(f"  (platform data suggests: {view.suggested})")
        case FormView(fields=fields):
            for f in fields:
                required = "" if f.required else " (optional)"
                click.echo(f"  - {_plain(f.label)}{required} [{f.type}]" + (f": {f.error}" if f.error else ""))
        case ChecklistView(items=items):
            for number, item in enumerate(items, start=1):
                click.echo(f"  {number}. [{'x' if item.ticked else ' '}] {_plain(item.label)}  ({item.id})")
        case ConfirmView():
            click.echo(f"  action: {view.action} {json.dumps(view.args, default=str)}")
            for notice in view.previous_runs:
                click.echo(f"  ! {notice.text}")
            click.echo(_plain(view.confirm))
        case EndView(outcome=outcome):
            click.echo(f"=== outcome: {outcome}")


def _prompt(view: AnyView) -> UserInput:
    while True:
        match view:
            case InfoView():
                raw = click.prompt("continue (enter) or back", default="", show_default=False)
                if not raw.strip():
                    return Continue(view.step)
            case QuestionView(options=options):
                raw = click.prompt("choose a number or option id, or back")
                if raw.isdigit() and 1 <= int(raw) <= len(options):
                    return Choose(options[int(raw) - 1].id, view.step)
                if raw in {o.id for o in options}:
                    return Choose(raw, view.step)
            case FormView(fields=fields):
                values: dict[str, Any] = {}
                for f in fields:
                    value = click.prompt(f"{_plain(f.label)}", default="", show_default=False)
                    if value.strip().startswith("back") and not values:
                        raw = value
                        break
                    values[f.id] = value
                else:
                    return Submit(values, view.step)
            case ChecklistView(items=items):
                raw = click.prompt("tick: numbers or ids separated by spaces, 'all', or back")
                if raw.strip() == "all":
                    return Tick((), True, view.step)
                if not raw.startswith("back"):
                    chosen = [items[int(p) - 1].id if p.isdigit() and 1 <= int(p) <= len(items) else p for p in raw.split()]
                    return Tick(tuple(chosen), False, view.step)
            case ConfirmView():
                raw = click.prompt("confirm, cancel or back")
                if raw in ("confirm", "y", "yes"):
                    return Confirm(view.step)
                if raw in ("cancel", "n", "no"):
                    return Cancel(view.step)
            case _:
                raw = ""
        words = raw.split()
        if words and words[0] == "back":
            return Back(int(words[1]) if len(words) > 1 and words[1].isdigit() else None)
        if raw == "history":
            for entry in view.history:
                click.echo(f"  {entry.visit}: {entry.flow}/{entry.step}{' (auto)' if entry.auto else ''}")
            continue
        click.echo("  (not understood; 'history' lists the steps 'back N' can return to)")


def _scripted_input(view: AnyView, answer: Any) -> UserInput | None:
    match view:
        case QuestionView():
            return Choose(str(answer), view.step)
        case FormView() if isinstance(answer, dict):
            return Submit(answer, view.step)
        case ChecklistView():
            return Tick((), True, view.step) if answer == "all" else Tick(tuple(map(str, answer or [])), False, view.step)
        case ConfirmView():
            return Confirm(view.step) if answer == "confirm" else Cancel(view.step) if answer == "cancel" else None
    if answer == "back":
        return Back()
    return None


async def _walk(flow: Flow, ports: Ports, inputs: dict[str, Any], locale: str, scripted: list[Any] | None) -> str:
    runner = Runner()
    try:
        state, view = await runner.start(flow, ports, session_id="terminal", inputs=inputs,
                                         user={"role": "content_editor", "name": "Terminal", "locale": locale},
                                         org={"name": "Terminal", "settings": {}}, locale=locale)  # fmt: skip
    except ValueError as error:
        click.echo(f"the inputs do not fit the flow: {error}", err=True)
        return "inputs"
    remaining = list(scripted) if scripted is not None else None
    while True:
        _show(view)
        if isinstance(view, EndView):
            return "ok"
        if isinstance(view, InfoView) and remaining is not None:
            given: UserInput | None = Continue(view.step)
        elif remaining is not None:
            if not remaining:
                click.echo("the answers ran out", err=True)
                return "answers"
            answer = remaining.pop(0)
            given = Back() if answer == "back" else _scripted_input(view, answer)
            click.echo(f"> {answer}")
            if given is None:
                click.echo(f"the answer {answer!r} does not fit this step", err=True)
                return "answers"
        else:
            given = _prompt(view)
        state, view = await runner.advance(flow, state, given, ports)
        _ = SessionState  # the state stays in memory for a terminal run


# -- extract ---------------------------------------------------------------------


def build_template(flows_dir: Path) -> tuple[Catalog, list[str]]:
    """Collect every text of every flow into a template; problems stop the extraction."""
    template = Catalog(project="lotse-flows", fuzzy=False)
    problems: list[str] = []
    for path in flow_files([flows_dir]) if flows_dir.is_dir() else []:
        result = load_flow_file(str(path))
        if result.flow is None or not result.schema_valid:
            problems.extend(p.format() for p in result.problems)
            continue
        for message in flow_messages(result.flow):
            template.add(message.msgid, context=message.context, locations=[(path.as_posix(), message.line)])
    return template, problems


def _write_atomically(path: Path, catalog: Catalog, **options: Any) -> None:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=100, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; catalogues are ordinary source files
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def update_catalogues(template: Catalog, locales_dir: Path, languages: Iterable[str] = LANGUAGES) -> list[Path]:
    """Write ``flows.pot`` and merge it into each language's ``flows.po``; old translations are kept.

    Everything is computed in memory first and each file replaced atomically,
    so a failure leaves the previous files intact.
    """
    updated: list[tuple[Path, Catalog]] = []
    for language in languages:
        path = po_path(locales_dir, language)
        if path.exists():
            with path.open("rb") as handle:
                catalog = read_po(handle, locale=language)
        else:
            catalog = Catalog(locale=language, project="lotse-flows", fuzzy=False)
        catalog.update(template)
        updated.append((path, catalog))
    pot = Path(locales_dir) / "flows.pot"
    _write_atomically(pot, template, omit_header=False)
    for path, catalog in updated:
        _write_atomically(path, catalog, include_previous=True)
    return [pot, *(path for path, _ in updated)]


# -- standalone ------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Run the flows commands without the platform: ``python -m lotse.engine.cli --catalogue FILE ...``."""
    chosen: dict[str, Path] = {}

    def load() -> Catalogue | None:
        path = chosen.get("path")
        if path is None:
            return None
        try:
            return FileCatalogue.from_path(path)
        except CatalogueError as error:
            raise click.ClickException(str(error)) from error

    flows = make_flows_group(load)

    def remember(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None:
            chosen["path"] = value
        return value

    flows.params.append(
        click.Option(
            ["--catalogue"], type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
            expose_value=False, callback=remember, is_eager=True,
            help="Catalogue of actions and facts (YAML or JSON); without it the catalogue checks are skipped.",
        )
    )
    flows(args=argv, prog_name="python -m lotse.engine.cli")


if __name__ == "__main__":
    main()
