"""The engine's ports: everything it needs from the outside, as protocols.

The engine never imports the platform. The platform implements these
protocols (an adapter per port in ``lotse.platform.help``); the engine's
tests and the authoring command line use the small implementations in
:mod:`lotse.engine.catalogue` and :mod:`lotse.engine.testing`.

Ports that may touch a database or the network are ``async`` (the platform
runs the engine inside Quart request handlers); pure look-ups are sync.

Error model of an action: the executor does not raise for business errors;
it returns an :class:`ActionResult` carrying either the result or a stable
error code (the platform's ``PlatformError.code``) and whether the failure is
transient (worth a retry). A raised exception is a programming error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from lotse.engine.model import Flow


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """What the platform says about one action it offers to flows."""

    name: str
    args_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    result_schema: Mapping[str, Any] = field(default_factory=dict)
    errors: tuple[str, ...] = ()
    permission: str = ""
    example_result: Any = None
    changes: bool = True
    description: str = ""


@dataclass(frozen=True, slots=True)
class FactSpec:
    """What the platform says about one fact (a read-only query) it offers to flows."""

    name: str
    args_schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "object"})
    result_schema: Mapping[str, Any] = field(default_factory=dict)
    permission: str = ""
    example_result: Any = None
    description: str = ""


class Catalogue(Protocol):
    """The actions and facts a flow may use."""

    def action(self, name: str) -> ActionSpec | None: ...

    def fact(self, name: str) -> FactSpec | None: ...

    def actions(self) -> Iterable[ActionSpec]: ...

    def facts(self) -> Iterable[FactSpec]: ...


@dataclass(frozen=True, slots=True)
class ActionResult:
    """The outcome of one action run: ``value`` on success, else an error ``code``."""

    value: Any = None
    error: str | None = None
    transient: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None


class ActionExecutor(Protocol):
    """Runs a platform action on behalf of the session's user.

    The platform checks the user's permission for the subject inside the
    action (a flow never grants rights) and must honour ``idempotency_key``:
    a second call with the same key returns the recorded result without
    running the action again.
    """

    async def run_action(self, name: str, args: Mapping[str, Any], *, idempotency_key: str) -> ActionResult: ...


class FactResolver(Protocol):
    """Answers a fact query; returns ``None`` when the platform does not know."""

    async def resolve_fact(self, name: str, args: Mapping[str, Any]) -> Any: ...


class FlowLookup(Protocol):
    """Finds the flow a ``subflow`` step names (the published version)."""

    async def get_flow(self, flow_id: str) -> Flow | None: ...


class Translations(Protocol):
    """Looks up flow text by context; returns ``None`` when there is no translation."""

    def translate(self, locale: str, context: str, msgid: str) -> str | None: ...


class Clock(Protocol):
    """Time, injectable: tests move it instead of sleeping."""

    def now(self) -> datetime: ...

    async def sleep(self, seconds: float) -> None: ...


class SessionStore(Protocol):
    """Optional persistence of session state (JSON-ready dicts) by session id."""

    async def load(self, session_id: str) -> Mapping[str, Any] | None: ...

    async def save(self, session_id: str, state: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, slots=True)
class Ports:
    """Everything the runner reaches outside itself, bundled for one call."""

    actions: ActionExecutor
    facts: FactResolver
    flows: FlowLookup
    clock: Clock
    translations: Translations | None = None
