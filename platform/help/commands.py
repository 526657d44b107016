"""``lotse flows ...`` (the engine's authoring commands, with the platform's catalogue) and ``lotse actions list``.

``lotse flows run`` stays a dry run against the real catalogue: actions and
facts answer with their example results and nothing touches the database.
Real sessions run in the browser (``/help``), where the person's own
permissions apply.
"""

from __future__ import annotations

import json
from typing import Any

import click

from lotse.engine.cli import make_flows_group
from lotse.engine.ports import Catalogue
from lotse.platform.help.catalogue import platform_catalogue


def _load_catalogue() -> Catalogue:
    return platform_catalogue()


def flows() -> click.Group:
    """Return the ``flows`` group bound to the platform's catalogue."""
    return make_flows_group(load_catalogue=_load_catalogue, make_ports=None)


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=False)


def _describe_args(schema: Any) -> list[str]:
    properties = schema.get("properties", {}) if isinstance(schema, dict) else {}
    required = set(schema.get("required", [])) if isinstance(schema, dict) else set()
    lines = []
    for name, sub in properties.items():
        mark = "" if name in required else "?"
        text = sub.get("description") or _compact({k: v for k, v in sub.items() if k != "description"})
        lines.append(f"      {name}{mark}: {text}")
    return lines or ["      (none)"]


@click.group(name="actions")
def actions() -> None:
    """The actions and facts flows may use."""


@actions.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON (the catalogue-file shape).")
def list_actions(as_json: bool) -> None:
    """Print every action and fact with arguments, result, error codes, permission and example."""
    catalogue = platform_catalogue()
    if as_json:
        from lotse.engine.catalogue import catalogue_to_data

        click.echo(json.dumps(catalogue_to_data(catalogue), indent=2, ensure_ascii=False))
        return
    click.echo("ACTIONS\n")
    for spec in catalogue.actions():
        click.echo(f"{spec.name}{'' if spec.changes else '   (read-only, no confirmation needed)'}")
        if spec.description:
            click.echo(f"  {spec.description}")
        click.echo("  args:")
        for line in _describe_args(spec.args_schema):
            click.echo(line)
        click.echo(f"  result: {_compact(spec.result_schema)}")
        click.echo(f"  errors: {', '.join(spec.errors) or '-'} (and cancelled)")
        click.echo(f"  permission: {spec.permission or '-'}")
        click.echo(f"  example: {_compact(spec.example_result)}\n")
    click.echo("FACTS\n")
    for fact in catalogue.facts():
        click.echo(fact.name)
        if fact.description:
            click.echo(f"  {fact.description}")
        click.echo("  args:")
        for line in _describe_args(fact.args_schema):
            click.echo(line)
        click.echo(f"  result: {_compact(fact.result_schema)}")
        click.echo(f"  permission: {fact.permission or '-'}")
        click.echo(f"  example: {_compact(fact.example_result)}\n")
