"""The platform's implementations of the engine's ports.

- :class:`FlowRepository` — the published flows (the files in
  ``settings.flows_dir``) and the pinned versions (``FlowVersion`` rows);
- :class:`SessionFlows` — the ``FlowLookup`` of one session: flows the
  session already entered load in their pinned version, new sub-flows in the
  published one (and get pinned);
- :class:`PlatformActions` — the ``ActionExecutor``: validates the arguments
  against the catalogue, calls the platform's own ``do_*`` actions as the
  person running the session (``via="flow"``, the session named in the audit
  reason) and keeps each run under its idempotency key (``ActionRun``);
- :class:`PlatformFacts` — the ``FactResolver``: read-only answers, limited
  to what the person may see;
- :class:`PlatformClock` — the app's clock.

Adapters never write to the database for another domain: every change goes
through that domain's action.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
from tortoise.exceptions import IntegrityError, OperationalError

from lotse.engine.i18n import PoTranslations
from lotse.engine.loader import load_flow
from lotse.engine.model import Flow
from lotse.engine.ports import ActionResult, ActionSpec, Ports
from lotse.platform.accounts import actions as account_actions
from lotse.platform.accounts.models import Account, AccountStatus, Role, Token, TokenPurpose
from lotse.platform.accounts.queries import view_permission
from lotse.platform.accounts.validation import normalise_email
from lotse.platform.actions import Services, record
from lotse.platform.audit.models import AuditType, Outcome
from lotse.platform.auth import actions as auth_actions
from lotse.platform.caseload import actions as caseload_actions
from lotse.platform.caseload import queries as caseload_queries
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.db import Prepared, written_insert, written_update
from lotse.platform.errors import NotFoundError, NotPermittedError, PlatformError
from lotse.platform.help.catalogue import platform_catalogue
from lotse.platform.help.models import ActionRun, FlowVersion
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, allowed
from lotse.platform.tasks import actions as task_actions
from lotse.platform.tasks.models import TaskKind
from lotse.platform.tools.models import ToolAssignment

#: Flows a signed-out person may start (from the sign-in page), and the only actions they may run.
ANONYMOUS_FLOWS: frozenset[str] = frozenset({"login-help"})
ANONYMOUS_ACTIONS: frozenset[str] = frozenset({"account.send_password_reset", "account.send_unblock_link"})
DORMANT_AFTER = timedelta(days=90)
WAIT_FOR_OTHER_RUN = 10.0  # seconds a doubled request waits for the first run's result

CATALOGUE = platform_catalogue()


# --- flows ----------------------------------------------------------------------


@dataclass
class _Cached:
    stamp: tuple[int, int]
    flow: Flow | None
    text: str


class FlowRepository:
    """Published flows from a directory, and pinned versions from the database (both cached)."""

    def __init__(self, flows_dir: Path) -> None:
        self.flows_dir = Path(flows_dir)
        self._files: dict[str, _Cached] = {}
        self._by_hash: dict[str, Flow] = {}
        self._pinned: dict[tuple[str, str], FlowVersion] = {}
        self._by_version: dict[int, Flow] = {}

    def _read(self, path: Path) -> _Cached | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._files.get(path.stem)
        if cached is not None and cached.stamp == stamp:
            return cached
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return None
        result = load_flow(text, str(path))
        flow = result.flow if result.flow is not None and result.schema_valid and result.flow.id == path.stem else None
        cached = _Cached(stamp, flow, text)
        self._files[path.stem] = cached
        if flow is not None:
            self._by_hash.setdefault(flow.content_hash, flow)
        return cached

    def published(self) -> dict[str, Flow]:
        """Return every flow file that loads, by id."""
        found: dict[str, Flow] = {}
        if not self.flows_dir.is_dir():
            return found
        for path in sorted(self.flows_dir.glob("*.yaml")):
            cached = self._read(path)
            if cached is not None and cached.flow is not None:
                found[cached.flow.id] = cached.flow
        return found

    def published_flow(self, flow_id: str) -> Flow | None:
        if "/" in flow_id or "\\" in flow_id or flow_id.startswith("."):
            return None
        cached = self._read(self.flows_dir / f"{flow_id}.yaml")
        return cached.flow if cached is not None else None

    async def pin(self, flow: Flow, now: datetime) -> FlowVersion:
        """Return the ``FlowVersion`` row of this exact flow text, creating it when first seen."""
        key = (flow.id, flow.content_hash)
        known = self._pinned.get(key)
        if known is not None:
            return known  # version rows never change once written
        row = await FlowVersion.get_or_none(flow_id=flow.id, content_hash=flow.content_hash)
        if row is None:
            cached = self._files.get(flow.id)
            text = cached.text if cached is not None and cached.flow is flow else None
            if text is None:
                raise LookupError(f"the source of flow {flow.id} is not at hand")
            try:
                row = await FlowVersion.create(flow_id=flow.id, version=flow.version, content_hash=flow.content_hash,
                                               source=text, title=flow.title[:300], first_seen_at=now)
            except IntegrityError:
                row = await FlowVersion.get(flow_id=flow.id, content_hash=flow.content_hash)
        self._pinned[key] = row
        return row

    def by_version_id(self, version_id: int) -> Flow | None:
        """Return the flow of a pinned version already loaded in this process, by row id."""
        return self._by_version.get(version_id)

    def from_version(self, row: FlowVersion) -> Flow | None:
        """Return the flow of a pinned version (parsed once per content hash)."""
        flow = self._by_version.get(row.id) or self._by_hash.get(row.content_hash)
        if flow is None:
            result = load_flow(row.source, f"{row.flow_id}.yaml")
            flow = result.flow
            if flow is None:
                return None
            self._by_hash[row.content_hash] = flow
        self._by_version[row.id] = flow
        return flow

    def cached(self, content_hash: str) -> Flow | None:
        """Return a flow already parsed with this content hash, if any."""
        return self._by_hash.get(content_hash)

    async def pinned(self, flow_id: str, content_hash: str) -> Flow | None:
        flow = self._by_hash.get(content_hash)
        if flow is not None and flow.id == flow_id:
            return flow
        row = await FlowVersion.get_or_none(flow_id=flow_id, content_hash=content_hash)
        return self.from_version(row) if row is not None else None


class SessionFlows:
    """The flow look-up of one session: entered flows pinned, new sub-flows published (and pinned)."""

    def __init__(self, repo: FlowRepository, pinned: Mapping[str, str], now: Callable[[], datetime]) -> None:
        self._repo = repo
        self._pinned = dict(pinned)
        self._now = now

    async def get_flow(self, flow_id: str) -> Flow | None:
        content_hash = self._pinned.get(flow_id)
        if content_hash is not None:
            found = await self._repo.pinned(flow_id, content_hash)
            if found is not None:
                return found
        flow = self._repo.published_flow(flow_id)
        if flow is not None:
            await self._repo.pin(flow, self._now())
            self._pinned[flow_id] = flow.content_hash
        return flow


class PlatformClock:
    def __init__(self, svc: Services) -> None:
        self._svc = svc

    def now(self) -> datetime:
        return self._svc.now()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(min(seconds, 5.0))


# --- values -------------------------------------------------------------------------


def account_ref(account: Account) -> dict[str, Any]:
    """Return an account as flows see it."""
    return {"id": account.id, "name": account.name, "email": account.email, "role": account.role.value}


def ref_id(value: Any) -> int | None:
    """Return the account id of a reference (``{id: ...}`` or an integer), else None."""
    if isinstance(value, Mapping):
        value = value.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def jsonable(value: Any) -> Any:
    """Return ``value`` with dates, enums and tuples turned into JSON data."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(v) for v in value]
    if hasattr(value, "value") and isinstance(getattr(value, "value", None), str):
        return value.value
    return value


# The account a reference names: read on every action and fact about an account (built once).
_ACCOUNT_BY_ID = Prepared(Account, lambda account_id: Account.filter(id=account_id), numeric=True)


async def _account(account_id: int | None) -> Account | None:
    return await _ACCOUNT_BY_ID.one_or_none(account_id) if account_id is not None else None


async def _account_in_org(actor: Actor, value: Any, *, role: Role | None = None) -> Account:
    """Load the account a reference names, if it is in the actor's organisation (the action checks the rest)."""
    account = await _account(ref_id(value))
    if account is None or actor.organisation_id is None or account.organisation_id != actor.organisation_id:
        raise NotFoundError()
    if role is not None and account.role is not role:
        raise NotFoundError()
    return account


# --- actions -----------------------------------------------------------------------


@dataclass
class ActionContext:
    svc: Services
    actor: Actor
    session_id: int
    flow_id: str
    # The actor's organisation when the request has it at hand (the session look-up loads it), else None.
    organisation: Organisation | None = None


Handler = Callable[[ActionContext, Mapping[str, Any]], Awaitable[Any]]


async def _reactivate(c: ActionContext, a: Mapping[str, Any]) -> Any:
    account = await _account_in_org(c.actor, a["account"])
    await account_actions.do_reactivate_account(c.svc, c.actor, account, organisation=c.organisation)
    return {"account": account_ref(account), "status": "active"}


async def _resend_welcome(c: ActionContext, a: Mapping[str, Any]) -> Any:
    account = await _account_in_org(c.actor, a["account"])
    await account_actions.do_resend_welcome(c.svc, c.actor, account)
    return {"account": account_ref(account), "sent_to": account.email, "valid_days": 7}


async def _send_password_reset(c: ActionContext, a: Mapping[str, Any]) -> Any:
    email = a.get("email")
    if a.get("account") is not None:
        account = await _account_in_org(c.actor, a["account"])
        if account.id != c.actor.account_id and not await allowed(c.actor, view_permission(account), account):
            raise NotFoundError()
        email = account.email
    await auth_actions.do_request_password_reset(c.svc, c.actor, str(email or ""))
    return {"requested": True}


async def _send_unblock_link(c: ActionContext, a: Mapping[str, Any]) -> Any:
    from lotse.platform.auth.actions import do_send_unblock_link

    await do_send_unblock_link(c.svc, c.actor, str(a["email"]))
    return {"requested": True}


async def _unblock(c: ActionContext, a: Mapping[str, Any]) -> Any:
    account = await _account_in_org(c.actor, a["account"])
    await account_actions.do_unblock_account(c.svc, c.actor, account)
    return {"account": account_ref(account), "blocked": False}


async def _reset_two_factor(c: ActionContext, a: Mapping[str, Any]) -> Any:
    account = await _account_in_org(c.actor, a["account"])
    await account_actions.do_reset_two_factor(c.svc, c.actor, account)
    return {"account": account_ref(account), "two_factor": "off"}


_CLIENT_FIELDS = ("first_name", "last_name", "email", "gender", "date_of_birth", "phone", "client_ref", "label",
                  "package", "locale")


async def _create_client(c: ActionContext, a: Mapping[str, Any]) -> Any:
    organisation = await Organisation.get_or_none(id=c.actor.organisation_id) if c.actor.organisation_id else None
    if organisation is None:
        raise NotPermittedError()
    data = {name: a[name] for name in _CLIENT_FIELDS if a.get(name) not in (None, "")}
    therapist = ref_id(a.get("therapist"))
    client = await account_actions.do_create_client(c.svc, c.actor, organisation, data, therapist_id=therapist)
    return {"client": account_ref(client), "welcome_sent": True}


async def _update_email(c: ActionContext, a: Mapping[str, Any]) -> Any:
    account = await _account_in_org(c.actor, a["account"])
    changed = await account_actions.do_update_account(c.svc, c.actor, account, {"email": a["email"]})
    return {"account": account_ref(account), "changed": bool(changed)}


async def _search(c: ActionContext, a: Mapping[str, Any]) -> Any:
    include = bool(a.get("include_inactive", False))
    if a.get("outside"):
        result = await caseload_queries.search_outside_caseload(
            c.svc, c.actor, str(a["query"]), str(a.get("motivation") or ""), include_inactive=include)
        clients = [
            {"id": hit.id, "name": hit.name, "role": "client", "active": hit.active, "in_caseload": hit.in_caseload,
             "professionals": [{"id": p.id, "name": p.name, "email": p.email, "role": p.role.value,
                                "kind": p.kind.value} for p in hit.professionals]}
            for hit in result.hits
        ]
        # search_id: what a link or a link request under this search's motivation needs (_outside_motivation).
        return {"count": len(clients), "truncated": result.truncated, "clients": clients, "search_id": result.audit_id}
    result = await caseload_queries.search_caseload(c.svc, c.actor, str(a["query"]), include_inactive=include)
    clients = [
        {"id": hit.id, "name": hit.name, "email": hit.email, "role": "client", "active": hit.active,
         "in_caseload": True, "date_of_birth": jsonable(hit.date_of_birth)}
        for hit in result.hits
    ]
    return {"count": len(clients), "truncated": result.truncated, "clients": clients}


async def _link_professional(c: ActionContext, a: Mapping[str, Any]) -> Any:
    client = await _account_in_org(c.actor, a["client"], role=Role.CLIENT)
    professional = await _account_in_org(c.actor, a["professional"])
    kind = LinkKind(a.get("kind") or LinkKind.TREATING.value)
    link = await caseload_actions.do_link_professional(c.svc, c.actor, client, professional, kind)
    return {"client": account_ref(client), "professional": account_ref(professional), "kind": link.kind.value}


async def _outside_motivation(c: ActionContext, a: Mapping[str, Any], client: Account, action: str) -> str:
    """The motivation of the actor's outside search that found ``client``; refused (and audited) otherwise.

    The same rule as the caseload pages: one motivated search lets a therapist
    link or ask only the clients it returned, never any client a flow names.
    """
    row = await caseload_queries.outside_search_for(c.svc, c.actor, int(a["search"]), client.id, action)
    return str(row.reason or "")


async def _link_self(c: ActionContext, a: Mapping[str, Any]) -> Any:
    client = await _account_in_org(c.actor, a["client"], role=Role.CLIENT)
    motivation = await _outside_motivation(c, a, client, "caseload.self_link")
    link = await caseload_actions.do_self_link(c.svc, c.actor, client, motivation)
    return {"client": account_ref(client), "kind": link.kind.value}


async def _request_link(c: ActionContext, a: Mapping[str, Any]) -> Any:
    client = await _account_in_org(c.actor, a["client"], role=Role.CLIENT)
    motivation = await _outside_motivation(c, a, client, "caseload.request_link")
    request = await caseload_actions.do_request_link(c.svc, c.actor, client, motivation)
    return {"client": account_ref(client), "request_id": request.id, "expires_at": jsonable(request.expires_at)}


async def _unlink(c: ActionContext, a: Mapping[str, Any]) -> Any:
    client = await _account_in_org(c.actor, a["client"], role=Role.CLIENT)
    professional = await _account_in_org(c.actor, a["professional"])
    successor = await _account_in_org(c.actor, a["hand_over_to"]) if a.get("hand_over_to") is not None else None
    tools = await caseload_actions.do_unlink_professional(
        c.svc, c.actor, client, professional, hand_over_to=successor, unlink_tools=bool(a.get("unlink_tools")))
    return {"client": account_ref(client), "professional": account_ref(professional), "tools": tools,
            "handed_over_to": account_ref(successor) if successor is not None and tools else None}


async def _create_task(c: ActionContext, a: Mapping[str, Any]) -> Any:
    assignee = await _account_in_org(c.actor, a["assignee"]) if a.get("assignee") is not None else None
    role = Role(a["to_role"]) if a.get("to_role") and assignee is None else None
    client = await _account_in_org(c.actor, a["client"], role=Role.CLIENT) if a.get("client") is not None else None
    task = await task_actions.do_create_task(
        c.svc, c.actor, kind=TaskKind.FOLLOW_UP, assignee=assignee, assignee_role=role, client=client,
        note=str(a["note"]), data={"help_session": c.session_id, "flow": c.flow_id}, organisation=c.organisation,
    )
    return {"task_id": task.id, "to": assignee.name if assignee is not None else (role.value if role else "")}


async def _start_conversation(c: ActionContext, a: Mapping[str, Any]) -> Any:
    from lotse.platform.conversations.adapter import start_conversation

    return await start_conversation(c, a)


HANDLERS: dict[str, Handler] = {
    "account.reactivate": _reactivate,
    "account.resend_welcome_mail": _resend_welcome,
    "account.send_password_reset": _send_password_reset,
    "account.send_unblock_link": _send_unblock_link,
    "account.unblock": _unblock,
    "account.reset_two_factor": _reset_two_factor,
    "account.create_client": _create_client,
    "account.update_email": _update_email,
    "caseload.search": _search,
    "caseload.link_professional": _link_professional,
    "caseload.link_self": _link_self,
    "caseload.request_link": _request_link,
    "caseload.unlink_professional": _unlink,
    "tasks.create": _create_task,
    "conversations.start": _start_conversation,
}

_validators: dict[str, Any] = {}


def argument_problem(spec: ActionSpec, args: Mapping[str, Any]) -> str | None:
    """Return what is wrong with an action's arguments, or None."""
    validator = _validators.get(spec.name)
    if validator is None:
        schema = dict(spec.args_schema)
        validator = _validators[spec.name] = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(jsonable(args)))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path)
    return f"{where}: {error.message}" if where else error.message


async def _claim_run(session_id: int, key: str, action: str, now: datetime) -> None:
    """Insert the run of ``key`` (not done yet); ``IntegrityError`` when another request has it.

    Every action step claims, finishes (and on failure forgets) its run: the
    statements are written out (``db.written_insert``/``written_update``).
    """
    await written_insert(ActionRun, {"key": key, "action": action, "done": False, "value": None, "error": None,
                                     "message": "", "started_at": now, "finished_at": None, "session_id": session_id})


async def _finish_run(key: str, result: ActionResult, now: datetime) -> None:
    """Record the result of the run of ``key``."""
    await written_update(ActionRun, {"done": True, "value": result.value, "error": result.error,
                                     "message": result.message, "finished_at": now}, {"key": key})


async def _forget_run(key: str) -> None:
    """Delete the run of ``key`` (the action failed on something transient or unexpected)."""
    await ActionRun.filter(key=key).delete()


class PlatformActions:
    """The ``ActionExecutor`` port: real platform actions, once per idempotency key."""

    def __init__(self, svc: Services, actor: Actor, session_id: int, flow_id: str, locale: str,
                 organisation: Organisation | None = None) -> None:
        if organisation is not None and organisation.id != actor.organisation_id:
            organisation = None
        self.context = ActionContext(svc, actor.with_(via="flow", reason=f"help session {session_id}"), session_id,
                                     flow_id, organisation)
        self.locale = locale

    async def run_action(self, name: str, args: Mapping[str, Any], *, idempotency_key: str) -> ActionResult:
        spec = CATALOGUE.action(name)
        handler = HANDLERS.get(name)
        if spec is None or handler is None:
            return ActionResult(error="unknown_action", message=name)
        problem = argument_problem(spec, args)
        if problem is not None:
            return ActionResult(error="invalid_arguments", message=problem)
        key = idempotency_key[:255]
        # The unique key decides who runs it: a second request with the same key (double click,
        # retry) fails to insert and waits for the first one's result. No look-up beforehand.
        try:
            await _claim_run(self.context.session_id, key, name, self.context.svc.now())
        except IntegrityError:
            return await self._wait_for(await ActionRun.get(key=key))
        actor = self.context.actor
        try:
            if actor.role is None and name not in ANONYMOUS_ACTIONS:
                await record(self.context.svc, actor, name, AuditType.UPDATE, outcome=Outcome.REFUSED,
                             details={"flow": self.context.flow_id})
                raise NotPermittedError()
            value = jsonable(await handler(self.context, args))
            result = ActionResult(value=value)
        except PlatformError as error:
            result = ActionResult(error=error.code, message=error.message.render(self.locale))
        except OperationalError as error:
            await _forget_run(key)
            return ActionResult(error="unavailable", transient=True, message=str(error)[:200])
        except BaseException:
            await _forget_run(key)
            raise
        await _finish_run(key, result, self.context.svc.now())
        return result

    async def _wait_for(self, run: ActionRun) -> ActionResult:
        """Return the result of a run under the same key, waiting while the first request still runs it."""
        waited = 0.0
        while not run.done and waited < WAIT_FOR_OTHER_RUN:
            await asyncio.sleep(0.02)
            waited += 0.02
            fresh = await ActionRun.get_or_none(id=run.id)
            if fresh is None:
                return ActionResult(error="unavailable", transient=True)
            run = fresh
        if not run.done:
            return ActionResult(error="action_in_progress", message=str(_l("This action is still running.")))
        return ActionResult(value=run.value, error=run.error, message=run.message)


# --- facts ------------------------------------------------------------------------


@dataclass
class FactContext:
    svc: Services
    actor: Actor
    audited: set[int] = field(default_factory=set)


async def _visible_account(c: FactContext, value: Any) -> Account | None:
    """The account a reference names, if the person may see it (a client read is audited once per request)."""
    if c.actor.role is None:
        return None
    account = await _account(ref_id(value))
    if account is None or account.organisation_id != c.actor.organisation_id:
        return None
    if account.id != c.actor.account_id and not await allowed(c.actor, view_permission(account), account):
        return None
    if account.role is Role.CLIENT and account.id not in c.audited:
        c.audited.add(account.id)
        await record(c.svc, c.actor, "help.fact", AuditType.READ, subject=account)
    return account


async def account_state(account: Account | None, now: datetime) -> str:
    """recent / dormant / deactivated / invited / invite_expired / blocked / missing."""
    if account is None:
        return "missing"
    if account.status is AccountStatus.DEACTIVATED:
        return "deactivated"
    if account.blocked_at is not None:
        return "blocked"
    if account.password_hash is None:
        valid = await Token.filter(account_id=account.id, purpose=TokenPurpose.WELCOME, used_at=None,
                                   revoked_at=None, expires_at__gt=now).exists()
        return "invited" if valid else "invite_expired"
    if account.last_login_at is None or now - account.last_login_at > DORMANT_AFTER:
        return "dormant"
    return "recent"


async def _fact_state(c: FactContext, a: Mapping[str, Any]) -> Any:
    return await account_state(await _visible_account(c, a.get("account")), c.svc.now())


async def _fact_two_factor(c: FactContext, a: Mapping[str, Any]) -> Any:
    account = await _visible_account(c, a.get("account"))
    if account is None:
        return None
    if account.two_factor_enabled:
        return "enabled"
    organisation = await Organisation.get(id=account.organisation_id)
    return "required_not_enrolled" if organisation.two_factor.value == "required" else "off"


async def _fact_external(c: FactContext, a: Mapping[str, Any]) -> Any:
    account = await _visible_account(c, a.get("account"))
    return None if account is None else bool(account.externally_managed)


async def _fact_find_by_email(c: FactContext, a: Mapping[str, Any]) -> Any:
    if c.actor.role is None or not isinstance(a.get("email"), str):
        return None
    email = normalise_email(a["email"])
    account = await Account.get_or_none(email=email)
    if account is None:
        return "none"
    if account.id == c.actor.account_id:
        return "in_caseload"
    if account.organisation_id == c.actor.organisation_id and await allowed(
        c.actor, view_permission(account), account
    ):
        return "in_caseload"
    return "elsewhere"


async def _fact_client_by_email(c: FactContext, a: Mapping[str, Any]) -> Any:
    if c.actor.role is None or not isinstance(a.get("email"), str):
        return None
    account = await Account.get_or_none(email=normalise_email(a["email"]), role=Role.CLIENT)
    visible = await _visible_account(c, account.id) if account is not None else None
    return account_ref(visible) if visible is not None else None


async def _professional_id(c: FactContext, value: Any) -> int | None:
    return ref_id(value) if value is not None else c.actor.account_id


async def _fact_is_linked(c: FactContext, a: Mapping[str, Any]) -> Any:
    if c.actor.role is None or c.actor.role is Role.CLIENT:
        return None
    client_id = ref_id(a.get("client"))
    client = await Account.get_or_none(id=client_id, role=Role.CLIENT) if client_id is not None else None
    if client is None or client.organisation_id != c.actor.organisation_id:
        return None
    professional_id = await _professional_id(c, a.get("professional"))
    return await CaseloadLink.filter(client_id=client.id, professional_id=professional_id).exists()


async def _fact_linked(c: FactContext, a: Mapping[str, Any]) -> Any:
    client = await _visible_account(c, a.get("client"))
    if client is None or client.role is not Role.CLIENT:
        return None
    return [{"id": p.id, "name": p.name, "email": p.email, "role": p.role.value, "kind": p.kind.value}
            for p in await caseload_queries.professionals_of(client)]


async def _fact_supervised_tools(c: FactContext, a: Mapping[str, Any]) -> Any:
    client = await _visible_account(c, a.get("client"))
    if client is None or client.role is not Role.CLIENT:
        return None
    professional_id = await _professional_id(c, a.get("professional"))
    return await ToolAssignment.filter(client_id=client.id, supervisor_id=professional_id, archived_at=None).count()


async def _fact_pending_request(c: FactContext, a: Mapping[str, Any]) -> Any:
    if c.actor.role is None or c.actor.role is Role.CLIENT:
        return None
    client_id = ref_id(a.get("client"))
    if client_id is None:
        return None
    return await LinkRequest.filter(client_id=client_id, professional_id=c.actor.account_id,
                                    organisation_id=c.actor.organisation_id, status=LinkRequestStatus.PENDING,
                                    expires_at__gt=c.svc.now()).exists()


async def _fact_org_settings(c: FactContext, a: Mapping[str, Any]) -> Any:
    if c.actor.organisation_id is None:
        return None
    organisation = await Organisation.get_or_none(id=c.actor.organisation_id)
    return organisation.settings_dict() if organisation is not None else None


FACTS: dict[str, Callable[[FactContext, Mapping[str, Any]], Awaitable[Any]]] = {
    "account.state": _fact_state,
    "account.two_factor": _fact_two_factor,
    "account.externally_managed": _fact_external,
    "account.find_by_email": _fact_find_by_email,
    "caseload.client_by_email": _fact_client_by_email,
    "caseload.is_linked": _fact_is_linked,
    "caseload.linked_professionals": _fact_linked,
    "caseload.supervised_tools": _fact_supervised_tools,
    "caseload.pending_link_request": _fact_pending_request,
    "org.settings": _fact_org_settings,
}


class PlatformFacts:
    """The ``FactResolver`` port; answers are cached for the duration of one request."""

    def __init__(self, svc: Services, actor: Actor) -> None:
        self.context = FactContext(svc, actor)
        self._cache: dict[str, Any] = {}

    async def resolve_fact(self, name: str, args: Mapping[str, Any]) -> Any:
        resolver = FACTS.get(name)
        if resolver is None:
            return None
        key = name + json.dumps(jsonable(args), sort_keys=True, default=str)
        if key not in self._cache:
            try:
                self._cache[key] = jsonable(await resolver(self.context, args))
            except PlatformError:
                self._cache[key] = None
        return self._cache[key]


# --- putting them together -----------------------------------------------------------


_translations: dict[str, PoTranslations] = {}


def flow_translations(locales_dir: Path) -> PoTranslations:
    """Return the (shared, lazily read) flows.po translations of a locales folder."""
    key = str(locales_dir)
    if key not in _translations:
        _translations[key] = PoTranslations(locales_dir)
    return _translations[key]


def make_ports(
    svc: Services, actor: Actor, repo: FlowRepository, *, session_id: int, flow_id: str, locale: str,
    pinned: Mapping[str, str] | None = None, organisation: Organisation | None = None,
) -> Ports:
    """Return the engine's ports for one request of one session.

    ``organisation``: the actor's organisation when the caller has it at hand (actions then need not load it).
    """
    return Ports(
        actions=PlatformActions(svc, actor, session_id, flow_id, locale, organisation),
        facts=PlatformFacts(svc, actor),
        flows=SessionFlows(repo, pinned or {}, svc.now),
        clock=PlatformClock(svc),
        translations=flow_translations(svc.settings.locales_dir),
    )
