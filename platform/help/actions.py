"""Help sessions: start, advance, abandon; and the anonymous-safe unblock link.

A session step is not one database transaction: the engine may run a
platform action in the middle of it, and that action must commit on its own
(its audit row, its mail) whatever happens to the session afterwards. So
``do_advance_session`` runs the engine first and then saves the new state in
one small unit, guarded by the session's ``revision``: of two requests that
raced, the second saves nothing and shows where the first one left the
session (the action itself ran once, by its idempotency key).
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from lotse.engine.model import Flow, Outcome
from lotse.engine.runner import InputsError, Runner, SessionState, UserInput
from lotse.engine.views import AnyView
from lotse.platform.accounts.models import Account
from lotse.platform.actions import Services, record, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.audit.models import Outcome as AuditOutcome
from lotse.platform.auth.actions import do_send_unblock_link  # noqa: F401  (moved to auth; still importable from here)
from lotse.platform.db import written_update
from lotse.platform.errors import NotFoundError, NotPermittedError, ValidationError
from lotse.platform.events import Event
from lotse.platform.help.adapters import ANONYMOUS_FLOWS, FlowRepository, make_ports
from lotse.platform.help.models import HelpSession, SessionStatus
from lotse.platform.i18n import LANGUAGES, _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor

RUNNER = Runner()


@dataclass(frozen=True)
class HelpSessionStarted(Event):
    name: ClassVar[str] = "help.session_started"
    session_id: int
    flow_id: str
    version: int


@dataclass(frozen=True)
class HelpSessionEnded(Event):
    name: ClassVar[str] = "help.session_ended"
    session_id: int
    flow_id: str
    version: int
    outcome: str


def flow_repository(svc: Services) -> FlowRepository:
    """Return the app's flow repository (one per app, made on first use)."""
    repo = svc.extras.get("help.flows")
    if not isinstance(repo, FlowRepository) or repo.flows_dir != svc.settings.flows_dir:
        repo = svc.extras["help.flows"] = FlowRepository(svc.settings.flows_dir)
    return repo


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def may_start(actor: Actor, flow: Flow) -> bool:
    """Whether the actor's role is in the flow's audience (signed out: only the sign-in help)."""
    if actor.role is None:
        return flow.id in ANONYMOUS_FLOWS
    return actor.role.value in flow.audience


async def _organisation(actor: Actor) -> Organisation | None:
    return await Organisation.get_or_none(id=actor.organisation_id) if actor.organisation_id else None


def _user_data(actor: Actor, locale: str) -> dict[str, Any]:
    return {"id": actor.account_id, "role": actor.role.value if actor.role else "anonymous", "name": actor.name,
            "locale": locale}


def _org_data(organisation: Organisation | None) -> dict[str, Any]:
    if organisation is None:
        return {"settings": {}, "name": "", "url": ""}
    return {"settings": organisation.settings_dict(), "name": organisation.name, "url": organisation.url}


def _pinned(state: SessionState) -> dict[str, str]:
    return {frame.flow_id: frame.content_hash for frame in state.frames}


def _subject_id(flow: Flow, inputs: Mapping[str, Any]) -> int | None:
    for spec in flow.inputs:
        value = inputs.get(spec.id)
        if isinstance(value, Mapping) and isinstance(value.get("id"), int):
            return int(value["id"])
    return None


def _summary(state: SessionState) -> tuple[list[str], list[dict[str, Any]]]:
    path = [f"{state.frames[v.frame].flow_id}/{v.step}" if v.frame else v.step for v in state.visits]
    results = [
        {"step": e.step, "action": e.action, "at": e.at, "error": e.error, "ok": e.error is None}
        for e in state.executions
    ]
    return path, results


async def do_start_session(
    svc: Services,
    actor: Actor,
    flow: Flow,
    *,
    inputs: Mapping[str, Any],
    locale: str,
    anonymous_key: str | None = None,
    organisation: Organisation | None = None,
) -> tuple[HelpSession, AnyView]:
    """Start a help session of ``flow`` (pinned to this exact version) and run it to its first question.

    ``organisation``: the actor's organisation when the caller has it at hand (else it is loaded).
    """
    if not may_start(actor, flow):
        await record(svc, actor, "help.session.start", AuditType.CREATE, outcome=AuditOutcome.REFUSED,
                     details={"flow": flow.id})
        raise NotPermittedError()
    if actor.role is None and not anonymous_key:
        raise NotPermittedError()
    repo = flow_repository(svc)
    if organisation is None or organisation.id != actor.organisation_id:
        organisation = await _organisation(actor)
    locale = locale if locale in LANGUAGES else (organisation.default_language if organisation else LANGUAGES[0])
    subject = _subject_id(flow, inputs)
    # Read before the transaction: on SQLite a transaction holds the one connection, and every
    # other request waits for it. Pinning a version is idempotent and may happen outside it.
    version = await repo.pin(flow, svc.now())
    subject_account = await Account.get_or_none(id=subject) if subject is not None else None
    async with unit(svc, actor, "help.session.start", None) as u:
        session = await HelpSession.create(
            public_id=secrets.token_urlsafe(24), flow_id=flow.id, flow_version=version, version=flow.version,
            organisation_id=actor.organisation_id, account_id=actor.account_id,
            anonymous_key_hash=hash_key(anonymous_key) if anonymous_key and actor.account_id is None else None,
            subject_id=subject, role=actor.role.value if actor.role else "anonymous", locale=locale,
            started_at=u.now, updated_at=u.now,
        )
        u.audit(AuditType.CREATE, subject=subject_account,
                details={"flow": flow.id, "version": flow.version, "help_session": session.id})
        u.event(HelpSessionStarted(session.id, flow.id, flow.version))
    ports = make_ports(svc, actor, repo, session_id=session.id, flow_id=flow.id, locale=locale,
                       pinned={flow.id: flow.content_hash}, organisation=organisation)
    try:
        state, view = await RUNNER.start(flow, ports, session_id=str(session.id), inputs=dict(inputs),
                                         user=_user_data(actor, locale), org=_org_data(organisation), locale=locale)
    except InputsError as error:
        await session.delete()
        raise ValidationError(fields={p.message.split("'")[1] if "'" in p.message else "inputs":
                                      _l("Please fill in this field.") for p in error.problems}) from error
    await _save(svc, actor, session, state, revision=0)
    return session, view


async def load_flow_of(svc: Services, session: HelpSession) -> Flow:
    """Return the flow version the session is pinned to."""
    repo = flow_repository(svc)
    flow = repo.by_version_id(session.flow_version_id)
    if flow is not None:
        return flow
    version = await session.flow_version
    flow = repo.from_version(version)
    if flow is None:
        raise NotFoundError()
    return flow


async def do_advance_session(
    svc: Services, actor: Actor, session: HelpSession, user_input: UserInput | None, *, locale: str | None = None,
    organisation: Organisation | None = None,
) -> tuple[HelpSession, SessionState, AnyView]:
    """Apply one input to a session (``None``: show where it stands) and save the new state.

    ``locale``: the language to show it in now (the person may have switched since the start).
    ``organisation``: the actor's organisation when the caller has it at hand (the actions then need not load it).
    """
    flow = await load_flow_of(svc, session)
    state = SessionState.from_dict(session.state)
    if locale in LANGUAGES and locale != state.locale:
        state = dataclasses.replace(state, locale=locale)
    repo = flow_repository(svc)
    ports = make_ports(svc, actor, repo, session_id=session.id, flow_id=session.flow_id, locale=state.locale,
                       pinned=_pinned(state), organisation=organisation)
    if not session.is_active:
        user_input = None
    new_state, view = await RUNNER.advance(flow, state, user_input, ports)
    if user_input is None or (new_state.transcript == state.transcript and new_state.visits == state.visits):
        return session, new_state, view
    saved = await _save(svc, actor, session, new_state, revision=session.revision)
    if not saved:
        # Another request moved the session first: show where it stands now.
        fresh = await HelpSession.get(id=session.id)
        state = SessionState.from_dict(fresh.state)
        if locale in LANGUAGES:
            state = dataclasses.replace(state, locale=locale)
        ports = make_ports(svc, actor, repo, session_id=fresh.id, flow_id=fresh.flow_id, locale=state.locale,
                           pinned=_pinned(state), organisation=organisation)
        state, view = await RUNNER.advance(flow, state, None, ports)
        return fresh, state, view
    return session, new_state, view


async def _save(svc: Services, actor: Actor, session: HelpSession, state: SessionState, *, revision: int) -> bool:
    """Store the state if nobody saved since ``revision``; record the outcome when the session ended."""
    data = state.to_dict()
    ended = state.outcome is not None and session.status is SessionStatus.ACTIVE
    if not ended:
        # A step in the middle writes one row and nothing else (no audit row, no mail, no event):
        # a single guarded UPDATE is atomic on its own, and skipping BEGIN/COMMIT saves two
        # database round trips on every click.
        now = svc.now()
        changes: dict[str, Any] = {"state": data, "revision": revision + 1, "step": state.position.step,
                                   "updated_at": now}
        if not await _update_if_unchanged(session.id, revision, changes):
            return False
        for name, value in changes.items():
            setattr(session, name, value)
        return True
    async with unit(svc, actor, "help.session.advance", None) as u:
        changes = {"state": data, "revision": revision + 1, "step": state.position.step, "updated_at": u.now}
        if ended:
            path, results = _summary(state)
            changes.update(status=SessionStatus.FINISHED, outcome=state.outcome.value if state.outcome else None,
                           path=path, action_results=results, finished_at=u.now)
        updated = await HelpSession.filter(id=session.id, revision=revision).update(**changes)
        if not updated:
            return False
        for name, value in changes.items():
            setattr(session, name, value)
        if ended:
            u.audit(AuditType.UPDATE, action="help.session.end",
                    details={"flow": session.flow_id, "version": session.version, "help_session": session.id,
                             "outcome": session.outcome})
            u.event(HelpSessionEnded(session.id, session.flow_id, session.version, session.outcome or ""))
    return True


async def _update_if_unchanged(session_id: int, revision: int, changes: Mapping[str, Any]) -> int:
    """``UPDATE help_session SET ... WHERE id = ? AND revision = ?`` (written out: it runs on every click)."""
    return await written_update(HelpSession, changes, {"id": session_id, "revision": revision})


async def do_abandon_session(svc: Services, actor: Actor, session: HelpSession, *, reason: str = "") -> bool:
    """Mark an active session abandoned (outcome ``abandoned``); False when it was no longer active."""
    state = SessionState.from_dict(session.state) if session.state else None
    async with unit(svc, actor, "help.session.abandon", None) as u:
        path, results = _summary(state) if state is not None else ([], [])
        updated = await HelpSession.filter(id=session.id, status=SessionStatus.ACTIVE).update(
            status=SessionStatus.ABANDONED, outcome=Outcome.ABANDONED.value, path=path, action_results=results,
            finished_at=u.now, updated_at=u.now, revision=session.revision + 1,
        )
        if not updated:
            return False
        u.audit(AuditType.UPDATE, details={"flow": session.flow_id, "version": session.version,
                                           "help_session": session.id, "outcome": "abandoned"},
                reason=reason or None)
        u.event(HelpSessionEnded(session.id, session.flow_id, session.version, Outcome.ABANDONED.value))
    return True

