"""Catalogues of actions and facts that do not need the platform.

The platform builds its catalogue from its registered actions; the engine's
own tests and ``python -m lotse.engine.cli --catalogue FILE`` use one of these:
:class:`InMemoryCatalogue` built in code, or :class:`FileCatalogue` read from
a YAML or JSON file of this shape::

    actions:
      account.reactivate:
        args: {type: object, properties: {account: {type: object}}, required: [account]}
        result: {type: object}
        errors: [not_permitted, not_found]
        permission: accounts.reactivate
        example: {reactivated: true}
        changes: true            # default; false for read-only actions (no confirm needed)
    facts:
      account.state:
        args: {type: object, properties: {account: {type: object}}}
        result: {enum: [recent, dormant, deactivated, missing]}
        example: recent
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from lotse.engine.ports import ActionSpec, FactSpec


class CatalogueError(Exception):
    """A catalogue file that cannot be read; a setup error, not a flow problem."""


class InMemoryCatalogue:
    """A catalogue held in memory."""

    def __init__(self, actions: Iterable[ActionSpec] = (), facts: Iterable[FactSpec] = ()) -> None:
        self._actions = {spec.name: spec for spec in actions}
        self._facts = {spec.name: spec for spec in facts}

    def action(self, name: str) -> ActionSpec | None:
        return self._actions.get(name)

    def fact(self, name: str) -> FactSpec | None:
        return self._facts.get(name)

    def actions(self) -> Iterable[ActionSpec]:
        return tuple(self._actions.values())

    def facts(self) -> Iterable[FactSpec]:
        return tuple(self._facts.values())


def _schema(raw: Any) -> Mapping[str, Any]:
    return raw if isinstance(raw, dict) else {"type": "object"}


class FileCatalogue(InMemoryCatalogue):
    """A catalogue read from a YAML or JSON file."""

    @classmethod
    def from_data(cls, data: Any) -> FileCatalogue:
        """Build a catalogue from already parsed data."""
        if not isinstance(data, dict):
            raise CatalogueError("a catalogue is a mapping with 'actions' and 'facts'")
        actions = []
        for name, raw in (data.get("actions") or {}).items():
            raw = raw or {}
            actions.append(
                ActionSpec(
                    name=str(name),
                    args_schema=_schema(raw.get("args")),
                    result_schema=raw.get("result") or {},
                    errors=tuple(str(e) for e in raw.get("errors") or ()),
                    permission=str(raw.get("permission", "")),
                    example_result=raw.get("example"),
                    changes=raw.get("changes", True) is not False,
                    description=str(raw.get("description", "")),
                )
            )
        facts = []
        for name, raw in (data.get("facts") or {}).items():
            raw = raw or {}
            facts.append(
                FactSpec(
                    name=str(name),
                    args_schema=_schema(raw.get("args")),
                    result_schema=raw.get("result") or {},
                    permission=str(raw.get("permission", "")),
                    example_result=raw.get("example"),
                    description=str(raw.get("description", "")),
                )
            )
        return cls(actions, facts)

    @classmethod
    def from_path(cls, path: str | Path) -> FileCatalogue:
        """Read a catalogue from a ``.yaml``/``.yml`` or ``.json`` file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
            data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        except (OSError, ValueError, yaml.YAMLError) as error:
            raise CatalogueError(f"cannot read the catalogue {path}: {error}") from error
        return cls.from_data(data)


def catalogue_to_data(catalogue: InMemoryCatalogue | Any) -> dict[str, Any]:
    """Return a catalogue as the data a catalogue file holds (for ``actions list`` and tests)."""
    return {
        "actions": {
            spec.name: {
                "args": dict(spec.args_schema),
                "result": dict(spec.result_schema),
                "errors": list(spec.errors),
                "permission": spec.permission,
                "example": spec.example_result,
                "changes": spec.changes,
            }
            for spec in catalogue.actions()
        },
        "facts": {
            spec.name: {
                "args": dict(spec.args_schema),
                "result": dict(spec.result_schema),
                "permission": spec.permission,
                "example": spec.example_result,
            }
            for spec in catalogue.facts()
        },
    }
