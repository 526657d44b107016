"""Implementations of the ports that need no platform.

Used by the authoring command line (``lotse flows run --dry-run``, ``lotse
flows test``) and by the engine's own tests: fakes, not mocks. The platform
brings its own adapters for real sessions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lotse.engine.loader import load_flow_file
from lotse.engine.model import Flow
from lotse.engine.ports import ActionResult, Catalogue


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that moves only when told to (or when the runner sleeps)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 3, 5, 10, 42, tzinfo=UTC)
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.current += timedelta(seconds=seconds)


class RecordingExecutor:
    """An action executor that answers from a function and honours idempotency keys.

    ``respond(name, args, attempt)`` returns the :class:`ActionResult`; by default
    the catalogue's example result. Every real run is appended to ``runs``;
    a repeated key returns the recorded result without a run. Transient
    failures are not recorded under the key, so a retry runs again.
    """

    def __init__(
        self,
        catalogue: Catalogue | None = None,
        respond: Callable[[str, Mapping[str, Any], int], ActionResult] | None = None,
    ) -> None:
        self._catalogue = catalogue
        self._respond = respond
        self.runs: list[tuple[str, Mapping[str, Any], str]] = []
        self._by_key: dict[str, ActionResult] = {}
        self._attempts: dict[str, int] = {}

    async def run_action(self, name: str, args: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        recorded = self._by_key.get(idempotency_key)
        if recorded is not None:
            return recorded
        attempt = self._attempts.get(idempotency_key, 0) + 1
        self._attempts[idempotency_key] = attempt
        self.runs.append((name, args, idempotency_key))
        if self._respond is not None:
            result = self._respond(name, args, attempt)
        else:
            spec = self._catalogue.action(name) if self._catalogue is not None else None
            result = ActionResult(value=spec.example_result if spec is not None else None)
        if not result.transient:
            self._by_key[idempotency_key] = result
        return result


class StaticFacts:
    """A fact resolver answering from a mapping of fact name → value (or a function)."""

    def __init__(
        self,
        values: Mapping[str, Any] | None = None,
        catalogue: Catalogue | None = None,
    ) -> None:
        self._values = dict(values or {})
        self._catalogue = catalogue
        self.asked: list[tuple[str, Mapping[str, Any]]] = []

    async def resolve_fact(self, name: str, args: Mapping[str, Any]) -> Any:
        self.asked.append((name, args))
        if name in self._values:
            value = self._values[name]
            return value(args) if callable(value) else value
        spec = self._catalogue.fact(name) if self._catalogue is not None else None
        return spec.example_result if spec is not None else None


class DictFlows:
    """A flow look-up over flows held in memory."""

    def __init__(self, flows: Mapping[str, Flow] | None = None) -> None:
        self._flows = dict(flows or {})

    def add(self, flow: Flow) -> None:
        self._flows[flow.id] = flow

    async def get_flow(self, flow_id: str) -> Flow | None:
        return self._flows.get(flow_id)


class DirectoryFlows:
    """A flow look-up reading ``<dir>/<id>.yaml`` (only flows that load without problems)."""

    def __init__(self, directory: str | Path) -> None:
        self._dir = Path(directory)
        self._cache: dict[str, Flow | None] = {}

    def load(self, flow_id: str) -> Flow | None:
        if flow_id not in self._cache:
            path = self._dir / f"{flow_id}.yaml"
            result = load_flow_file(str(path)) if path.is_file() and "/" not in flow_id else None
            self._cache[flow_id] = result.flow if result is not None and result.schema_valid else None
        return self._cache[flow_id]

    async def get_flow(self, flow_id: str) -> Flow | None:
        return self.load(flow_id)
