"""Reads of help sessions: access-checked look-ups, lists, transcripts, outcome statistics, subject pickers.

A session is readable only by the person who runs it (signed out: the
browser holding its cookie key). Exporting a transcript is audited as an
export; the outcome statistics are for application admins and name no one.
"""

from __future__ import annotations

import hmac
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from lotse.engine.model import Flow, InputType
from lotse.engine.runner import SessionState
from lotse.platform.accounts import queries as account_queries
from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services, record, require
from lotse.platform.audit.models import AuditType
from lotse.platform.db import Prepared
from lotse.platform.errors import NotFoundError
from lotse.platform.help.actions import hash_key
from lotse.platform.help.adapters import account_ref
from lotse.platform.help.models import HelpSession, SessionStatus
from lotse.platform.i18n import _
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission, allowed

_BY_PUBLIC_ID = Prepared(HelpSession, lambda public_id: HelpSession.filter(public_id=public_id))


async def get_session_for(actor: Actor, public_id: str, anonymous_key: str | None = None) -> HelpSession:
    """Return the session behind a resume link if it is the actor's own (else 404)."""
    session = await _BY_PUBLIC_ID.one_or_none(public_id[:64]) if public_id else None
    if session is None:
        raise NotFoundError()
    if session.account_id is not None:
        if session.account_id != actor.account_id:
            raise NotFoundError()
    elif not (anonymous_key and session.anonymous_key_hash
              and hmac.compare_digest(session.anonymous_key_hash, hash_key(anonymous_key))):
        raise NotFoundError()
    return session


async def my_sessions(actor: Actor, anonymous_key: str | None = None, *, active_only: bool = False,
                      limit: int = 100) -> list[HelpSession]:
    """Return the actor's help sessions, most recently used first."""
    if actor.account_id is not None:
        query = HelpSession.filter(account_id=actor.account_id)
    elif anonymous_key:
        query = HelpSession.filter(anonymous_key_hash=hash_key(anonymous_key), account_id=None)
    else:
        return []
    if active_only:
        query = query.filter(status=SessionStatus.ACTIVE)
    return await query.order_by("-updated_at", "-id").limit(limit)


async def sessions_about(actor: Actor, subject_id: int, *, limit: int = 20) -> list[HelpSession]:
    """Return the actor's own sessions about one account (for the dossier)."""
    if actor.account_id is None:
        return []
    return await HelpSession.filter(account_id=actor.account_id, subject_id=subject_id).order_by("-updated_at").limit(limit)


# --- transcripts --------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptLine:
    at: str
    kind: str
    flow: str
    step: str
    text: str
    step_text: str = ""


class TranscriptNames(Protocol):
    """What a transcript calls things: steps, options, fields, actions and outcomes in the reader's language."""

    def step(self, flow_id: str, step_id: str) -> str: ...
    def option(self, flow_id: str, step_id: str, option_id: str) -> str: ...
    def field(self, flow_id: str, step_id: str, field_id: str) -> str: ...
    def action(self, name: str) -> str: ...
    def outcome(self, value: str) -> str: ...
    def status(self, value: str) -> str: ...
    def flow(self, flow_id: str) -> str: ...


class RawNames:
    """Ids as they are (when nothing better is at hand)."""

    def step(self, flow_id: str, step_id: str) -> str:
        return step_id

    def option(self, flow_id: str, step_id: str, option_id: str) -> str:
        return option_id

    def field(self, flow_id: str, step_id: str, field_id: str) -> str:
        return field_id

    def action(self, name: str) -> str:
        return name

    def outcome(self, value: str) -> str:
        return value

    def status(self, value: str) -> str:
        return value

    def flow(self, flow_id: str) -> str:
        return flow_id


def transcript_lines(state: SessionState, names: TranscriptNames | None = None) -> list[TranscriptLine]:
    """Return the session's story: questions answered, values given, actions with results, with times."""
    n = names or RawNames()
    lines = []
    for event in state.transcript:
        data: Mapping[str, Any] = event.data
        flow, step = event.flow, event.step

        def items(ids: Any, flow: str = flow, step: str = step) -> str:
            return ", ".join(n.option(flow, step, str(i)) for i in (ids or []))

        match event.kind:
            case "started":
                text = _("started (version %(version)s)", version=data.get("version"))
            case "answered":
                if "option" in data:
                    text = _("answered: %(answer)s", answer=n.option(flow, step, str(data["option"])))
                elif "values" in data:
                    text = _("filled in: %(values)s", values="; ".join(
                        f"{n.field(flow, step, str(k))}: {v}" for k, v in dict(data["values"]).items()))
                else:
                    text = _("ticked: %(items)s", items=items(data.get("ticked")))
            case "answered_from_data":
                answer = n.option(flow, step, str(data["option"])) if data.get("option") else items(data.get("ticked"))
                text = _("answered from platform data: %(answer)s", answer=answer)
            case "action":
                action = n.action(str(data.get("action")))
                if data.get("error"):
                    text = _("%(action)s: did not succeed (%(code)s)", action=action, code=data.get("error"))
                else:
                    text = _("%(action)s: done", action=action)
            case "cancelled":
                text = _("%(action)s: not confirmed", action=n.action(str(data.get("action"))))
            case "back":
                text = _("went back (from: %(step)s)", step=n.step(flow, str(data.get("from"))))
            case "ended" | "subflow_ended":
                text = _("ended: %(outcome)s", outcome=n.outcome(str(data.get("outcome"))))
            case "subflow_started":
                text = _("entered %(flow)s (version %(version)s)", flow=n.flow(str(data.get("flow"))),
                         version=data.get("version"))
            case "abandoned":
                text = _("abandoned")
            case _:
                text = str(data.get("message") or event.kind)
        lines.append(TranscriptLine(event.at, event.kind, flow, step, text, n.step(flow, step)))
    return lines


def _md(text: Any) -> str:
    escaped = str(text).replace("\\", "\\\\")
    for char in "*_`[]<>#|":
        escaped = escaped.replace(char, "\\" + char)
    return escaped.replace("\n", " ")


async def export_transcript(svc: Services, actor: Actor, session: HelpSession, title: str,
                            names: TranscriptNames | None = None) -> str:
    """Return the transcript as Markdown (``names``: how to call steps and answers); audited as an export."""
    state = SessionState.from_dict(session.state)
    subject = await Account.get_or_none(id=session.subject_id) if session.subject_id else None
    await record(svc, actor, "help.transcript.export", AuditType.EXPORT, subject=subject,
                 details={"help_session": session.id, "flow": session.flow_id})
    n = names or RawNames()
    out = [
        f"# {_md(title)}",
        "",
        "- " + _md(_("Flow: %(flow)s, version %(version)s", flow=session.flow_id, version=session.version)),
        "- " + _md(_("Help session: %(id)s", id=session.id)),
        "- " + _md(_("Started: %(when)s", when=session.started_at.isoformat())),
        "- " + _md(_("Status: %(status)s", status=n.status(session.status.value))
                   + (f", {n.outcome(session.outcome)}" if session.outcome else "")),
        "",
        "| " + " | ".join(_md(h) for h in (_("Time"), _("Step"), _("What happened"))) + " |",
        "|---|---|---|",
    ]
    for line in transcript_lines(state, n):
        step = line.step_text
        if line.flow != session.flow_id:
            step = f"{n.flow(line.flow)}: {step}"
        out.append(f"| {_md(line.at)} | {_md(step)} | {_md(line.text)} |")
    for execution in state.executions:
        if execution.value is not None:
            out.append("")
            out.append(_md(_("Result of %(action)s (%(when)s):", action=n.action(execution.action),
                                when=execution.at))
                       + " `" + json.dumps(execution.value, ensure_ascii=False, default=str).replace("`", "") + "`")
    return "\n".join(out) + "\n"


# --- outcomes -----------------------------------------------------------------------


@dataclass
class FlowOutcomes:
    flow_id: str
    started: int = 0
    active: int = 0
    resolved: int = 0
    escalated: int = 0
    not_resolved: int = 0
    abandoned: int = 0
    versions: Counter[int] = field(default_factory=Counter)
    reached: Counter[str] = field(default_factory=Counter)   # step -> sessions that got there
    left_at: Counter[str] = field(default_factory=Counter)   # step -> sessions abandoned there


async def flow_outcomes(svc: Services, actor: Actor) -> dict[str, FlowOutcomes]:
    """Return per flow how many sessions started, resolved, escalated, were abandoned, and where people left."""
    organisation = await Organisation.get_or_none(id=actor.organisation_id) if actor.organisation_id else None
    await require(svc, actor, Permission.HELP_OUTCOMES, organisation, "help.outcomes")
    result: dict[str, FlowOutcomes] = {}
    assert organisation is not None
    rows = await HelpSession.filter(organisation_id=organisation.id).values(
        "flow_id", "version", "status", "outcome", "step", "path")
    for row in rows:
        stats = result.setdefault(row["flow_id"], FlowOutcomes(row["flow_id"]))
        stats.started += 1
        stats.versions[row["version"]] += 1
        if row["status"] == SessionStatus.ACTIVE:
            stats.active += 1
        elif row["outcome"] in ("resolved", "escalated", "not_resolved", "abandoned"):
            setattr(stats, row["outcome"], getattr(stats, row["outcome"]) + 1)
        if row["status"] == SessionStatus.ABANDONED:
            stats.left_at[row["step"]] += 1
        for step in dict.fromkeys(row["path"] or [row["step"]]):
            stats.reached[step] += 1
    return result


# --- choosing what a flow is about ------------------------------------------------


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    ref: dict[str, Any]


ACCOUNT_TYPES = {InputType.CLIENT, InputType.PROFESSIONAL, InputType.ACCOUNT}

# With more accounts than this to pick from, the start page asks for part of a
# name or an e-mail address first and offers only what matches (a list of
# thousands helps nobody, and costs every page view).
PICK_LIMIT = 100


@dataclass(frozen=True)
class Pick:
    """What the start page offers for one account input."""

    choices: list[Choice]
    search: str = ""  # what the list was narrowed by
    too_many: int = 0  # how many match when over PICK_LIMIT (then nothing is offered yet)

    @property
    def asks_to_search(self) -> bool:
        return bool(self.search or self.too_many)


def narrow(choices: list[Choice], search: str, limit: int | None = None) -> Pick:
    """Offer the choices whose label holds every word of ``search``; none while more than ``limit`` match."""
    limit = PICK_LIMIT if limit is None else limit
    words = search.lower().split()
    matching = [c for c in choices if all(word in c.label.lower() for word in words)] if words else choices
    if len(matching) > limit:
        return Pick([], search, len(matching))
    return Pick(matching, search)


def choices(accounts: list[Account]) -> list[Choice]:
    return [Choice(str(a.id), f"{a.name} ({a.email})", account_ref(a)) for a in accounts]


def _row_choice(row: Mapping[str, Any]) -> Choice:
    name = f"{row['first_name']} {row['last_name']}".strip()
    role = row["role"].value if hasattr(row["role"], "value") else str(row["role"])
    return Choice(str(row["id"]), f"{name} ({row['email']})",
                  {"id": row["id"], "name": name, "email": row["email"], "role": role})


async def subject_choices(
    svc: Services, actor: Actor, flow: Flow, organisation: Organisation | None = None,
    find: Mapping[str, str] | None = None,
) -> dict[str, Pick]:
    """Return, per account input of the flow, the accounts the actor may pick (only those they may see).

    ``find`` narrows an input's list by part of a name or an e-mail address;
    a list longer than :data:`PICK_LIMIT` is offered only once narrowed.
    """
    if actor.role is None or actor.organisation_id is None:
        return {}
    needed = {spec.type for spec in flow.inputs if spec.type in ACCOUNT_TYPES}
    if not needed:
        return {}
    if organisation is None or organisation.id != actor.organisation_id:
        organisation = await Organisation.get(id=actor.organisation_id)
    clients: list[Choice] = []
    professionals: list[Choice] = []
    if needed & {InputType.CLIENT, InputType.ACCOUNT} and await allowed(actor, Permission.CASELOAD_SEARCH,
                                                                         organisation):
        clients = choices(await account_queries.list_clients(svc, actor, organisation))
    if needed & {InputType.PROFESSIONAL, InputType.ACCOUNT}:
        query = None
        if actor.role is Role.APP_ADMIN:
            await require(svc, actor, Permission.PROFESSIONAL_CREATE, organisation, "account.list_professionals")
            query = Account.filter(organisation_id=organisation.id).exclude(role=Role.CLIENT)
        elif await allowed(actor, Permission.PROFESSIONALS_LIST, organisation):
            query = Account.filter(organisation_id=organisation.id, status=AccountStatus.ACTIVE).exclude(
                role__in=[Role.CLIENT, Role.SERVICEDESK])
        rows = await query.order_by("last_name", "first_name", "id").values(
            "id", "first_name", "last_name", "email", "role") if query is not None else []
        professionals = [_row_choice(row) for row in rows]
        if actor.account_id is not None and all(p.ref["id"] != actor.account_id for p in professionals):
            me = await Account.get_or_none(id=actor.account_id)
            if me is not None and me.role is not Role.CLIENT:
                professionals.extend(choices([me]))
    if actor.role is Role.CLIENT and actor.account_id is not None:
        clients = choices([await Account.get(id=actor.account_id)])

    found: dict[str, Pick] = {}
    for spec in flow.inputs:
        if spec.type is InputType.CLIENT:
            offered = clients
        elif spec.type is InputType.PROFESSIONAL:
            offered = professionals
        elif spec.type is InputType.ACCOUNT:
            offered = professionals + clients
        else:
            continue
        found[spec.id] = narrow(offered, (find or {}).get(spec.id, ""))
    return found


async def choice_for(
    actor: Actor, input_type: InputType, raw: str, organisation: Organisation | None = None
) -> Choice | None:
    """Return the account an id names if the actor could have picked it for an input of this type."""
    if actor.role is None or actor.organisation_id is None or not raw.isdigit():
        return None
    account = await Account.get_or_none(id=int(raw), organisation_id=actor.organisation_id)
    if account is None:
        return None
    if account.role is Role.CLIENT:
        ok = input_type in (InputType.CLIENT, InputType.ACCOUNT) and await allowed(
            actor, Permission.CLIENT_VIEW, account)
    else:
        if organisation is None or organisation.id != actor.organisation_id:
            organisation = await Organisation.get(id=actor.organisation_id)
        ok = input_type in (InputType.PROFESSIONAL, InputType.ACCOUNT) and (
            account.id == actor.account_id
            or actor.role is Role.APP_ADMIN
            or (account.is_active and account.role is not Role.SERVICEDESK
                and await allowed(actor, Permission.PROFESSIONALS_LIST, organisation))
        )
    return Choice(str(account.id), account.name, account_ref(account)) if ok else None


async def posted_choices(
    actor: Actor, flow: Flow, values: Mapping[str, str], organisation: Organisation | None = None
) -> dict[str, list[Choice]]:
    """Like :func:`subject_choices`, but only for the values sent (no lists to load on a POST).

    A value naming an account the actor could not have picked yields a list
    without it (refused as "not one of the offered values"); a value that is
    not an id yields an empty list (a name only, as when there is nothing to pick).
    """
    found: dict[str, list[Choice]] = {}
    for spec in flow.inputs:
        if spec.type not in ACCOUNT_TYPES:
            continue
        raw = values.get(spec.id, "")
        if raw.isdigit():
            choice = await choice_for(actor, spec.type, raw, organisation)
            found[spec.id] = [choice] if choice is not None else [Choice("", "", {})]
        else:
            found[spec.id] = []
    return found
