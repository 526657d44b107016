"""Access-checked, audited reads of the caseload: searches, the dossier, contact history.

Every search writes an audit row: ``search`` inside the caseload,
``emergency_access`` with the motivation as reason outside it. A dossier page
opened by someone linked (or a secretary) writes ``read``; a client found
outside the caseload is shown in a limited form (name, date of birth, linked
professionals) and that opening writes ``emergency_access`` with the
motivation of the search it came from. That search covers only the clients it
found (their ids are kept in its audit row) and only for an hour: any other
client is refused, and the refusal is audited too.

Audit details hold ids, counts and flags, never what was typed: the trail
outlives an erasure, so it must not hold a client's name, e-mail address or
date of birth. The motivation (``reason``) stays, because the application
admins must be able to read it; ``check_motivation`` refuses one that repeats
the search terms, an e-mail address or a date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from lotse.platform.accounts.models import PROFESSIONAL_ROLES, Account, AccountStatus, Role
from lotse.platform.actions import Services, record, require
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.actions import check_motivation
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.caseload.search import ParsedQuery, find_client_ids, parse_query
from lotse.platform.errors import NotFoundError, NotPermittedError, ValidationError
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission, allowed
from lotse.platform.tools.models import ToolAssignment

SEARCH_LIMIT = 50
# How long the motivation of an outside search covers opening its results.
OUTSIDE_SEARCH_VALIDITY = timedelta(hours=1)


@dataclass(frozen=True)
class LinkedProfessional:
    id: int
    name: str
    role: Role
    kind: LinkKind
    email: str = ""


@dataclass(frozen=True)
class ClientHit:
    id: int
    name: str
    email: str
    date_of_birth: date | None
    client_ref: str | None
    active: bool


@dataclass(frozen=True)
class OutsideHit:
    """What a search outside the caseload may show: never clinical content."""

    id: int
    name: str
    date_of_birth: date | None
    active: bool
    professionals: list[LinkedProfessional]
    in_caseload: bool


@dataclass
class SearchResult:
    hits: list[Any]
    truncated: bool
    audit_id: int | None = None
    query: str = ""
    include_inactive: bool = False


@dataclass
class OutsideView:
    client: Account
    organisation: Organisation
    professionals: list[LinkedProfessional]
    motivation: str
    search_id: int
    pending_request: LinkRequest | None = None
    linked: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


async def _organisation(actor: Actor) -> Organisation:
    organisation = await Organisation.get_or_none(id=actor.organisation_id) if actor.organisation_id else None
    if organisation is None:
        raise NotPermittedError()
    return organisation


def _check_query(raw: str) -> str:
    raw = " ".join(raw.split())[:200]
    parsed = parse_query(raw)
    if parsed.invalid_date:
        raise ValidationError(fields={"q": _l("Type a date of birth as DD-MM-YYYY, for example 17-05-1990.")})
    return raw


async def search_caseload(
    svc: Services, actor: Actor, raw: str, *, include_inactive: bool = False, limit: int = SEARCH_LIMIT
) -> SearchResult:
    """Search the actor's own caseload (a secretary's is the whole organisation); audited as a search."""
    organisation = await _organisation(actor)
    await require(svc, actor, Permission.CASELOAD_SEARCH, organisation, "caseload.search")
    raw = _check_query(raw)
    professional_id = None if actor.role is Role.SECRETARY else actor.account_id
    parsed = parse_query(raw)
    if raw:
        ids = await find_client_ids(parsed, organisation_id=organisation.id,
                                    professional_id=professional_id, include_inactive=include_inactive,
                                    limit=limit + 1)
        accounts = {a.id: a for a in await Account.filter(id__in=ids)}
        ordered = [accounts[i] for i in ids if i in accounts]
    else:
        # No search term: the caseload itself, by name.
        query = Account.filter(organisation_id=organisation.id, role=Role.CLIENT)
        if professional_id is not None:
            query = query.filter(professional_links__professional_id=professional_id)
        if not include_inactive:
            query = query.filter(status=AccountStatus.ACTIVE)
        ordered = await query.order_by("last_name", "first_name", "id").limit(limit + 1)
    hits = [ClientHit(a.id, a.name, a.email, a.date_of_birth, a.client_ref, a.is_active) for a in ordered[:limit]]
    row = await _record_search(svc, actor, "caseload.search", AuditType.SEARCH, parsed, include_inactive,
                               [hit.id for hit in hits], reason=None)
    return SearchResult(hits, len(ordered) > limit, row.id, raw, include_inactive)


async def search_outside_caseload(
    svc: Services, actor: Actor, raw: str, motivation: str, *, include_inactive: bool = False,
    limit: int = SEARCH_LIMIT,
) -> SearchResult:
    """Search the organisation's clients beyond the caseload, with a motivation; audited as emergency access."""
    organisation = await _organisation(actor)
    await require(svc, actor, Permission.CASELOAD_SEARCH_OUTSIDE, organisation, "caseload.search_outside")
    raw = _check_query(raw)
    parsed = parse_query(raw)
    motivation = check_motivation(motivation, parsed.terms)
    if not raw:
        raise ValidationError(fields={"q": _l("Please enter a name, e-mail address, client ID or date of birth.")})
    ids = await find_client_ids(parsed, organisation_id=organisation.id,
                                include_inactive=include_inactive, limit=limit + 1)
    ids = ids[:limit + 1]
    accounts = {a.id: a for a in await Account.filter(id__in=ids)}
    professionals = await professionals_of_many(list(accounts))
    hits = [
        OutsideHit(
            a.id, a.name, a.date_of_birth, a.is_active, professionals.get(a.id, []),
            any(p.id == actor.account_id for p in professionals.get(a.id, [])),
        )
        for a in (accounts[i] for i in ids[:limit] if i in accounts)
    ]
    # The ids found are what this search (and its motivation) lets the actor open.
    row = await _record_search(svc, actor, "caseload.search_outside", AuditType.EMERGENCY_ACCESS, parsed,
                               include_inactive, [hit.id for hit in hits], reason=motivation, keep_hits=True)
    return SearchResult(hits, len(ids) > limit, row.id, raw, include_inactive)


async def _record_search(
    svc: Services, actor: Actor, action: str, event_type: AuditType, parsed: ParsedQuery, include_inactive: bool,
    hits: list[int], *, reason: str | None, keep_hits: bool = False,
) -> AuditEvent:
    """Audit a search by its shape (how many terms, whether by date), never by its text."""
    from lotse.platform.actions import audit_row

    details: dict[str, Any] = {"terms": len(parsed.terms), "by_date": parsed.date_of_birth is not None,
                               "include_inactive": include_inactive, "results": len(hits)}
    if keep_hits:
        details["hits"] = hits
    row = audit_row(actor, action, event_type, svc.now(), reason=reason, details=details)
    await row.save()
    return row


async def professionals_of(client: Account) -> list[LinkedProfessional]:
    """Return who is linked to a client, therapists first."""
    return (await professionals_of_many([client.id])).get(client.id, [])


async def professionals_of_many(client_ids: list[int]) -> dict[int, list[LinkedProfessional]]:
    if not client_ids:
        return {}
    links = await CaseloadLink.filter(client_id__in=client_ids).select_related("professional")
    found: dict[int, list[LinkedProfessional]] = {}
    for link in links:
        p: Account = link.professional
        found.setdefault(link.client_id, []).append(
            LinkedProfessional(p.id, p.name, p.role, link.kind, p.email))
    for people in found.values():
        people.sort(key=lambda p: (p.kind is not LinkKind.TREATING, p.name))
    return found


async def get_client(client_id: int) -> Account:
    """Return a client account by id, or raise ``NotFoundError``.

    No access check: the action or ``open_dossier`` that follows checks the
    actor's permission (and organisation) and audits a refusal.
    """
    client = await Account.get_or_none(id=client_id, role=Role.CLIENT)
    if client is None:
        raise NotFoundError()
    return client


async def open_dossier(svc: Services, actor: Actor, client_id: int, page: str = "dashboard") -> Account:
    """Return a client for a dossier page, when the actor may see it; audited as a read."""
    client = await get_client(client_id)
    if actor.role is Role.CLIENT:
        # Clients see their own account through their own pages, never as a dossier.
        await record(svc, actor, "caseload.view", AuditType.READ, subject=client, outcome=Outcome.REFUSED,
                     details={"page": page})
        raise NotPermittedError()
    permission = Permission.CLIENT_TOOLS_VIEW if page in ("dashboard", "tools") else Permission.CLIENT_VIEW
    if page == "dashboard" and not await allowed(actor, permission, client):
        # A secretary's dashboard shows no tool content; opening it still needs the dossier right.
        permission = Permission.CLIENT_VIEW
    await require(svc, actor, permission, client, "caseload.view")
    await record(svc, actor, "caseload.view", AuditType.READ, subject=client, details={"page": page})
    return client


async def outside_search_row(actor: Actor, search_id: int, now: Any) -> AuditEvent | None:
    """Return the actor's own outside search by its audit id while it is valid (an hour), else None."""
    if actor.account_id is None:
        return None
    row = await AuditEvent.get_or_none(id=search_id, action="caseload.search_outside", outcome=Outcome.SUCCESS,
                                       event_type=AuditType.EMERGENCY_ACCESS, actor_id=actor.account_id)
    if row is None or now - row.at > OUTSIDE_SEARCH_VALIDITY:
        return None
    return row


async def outside_search_for(svc: Services, actor: Actor, search_id: int, client_id: int, action: str) -> AuditEvent:
    """Return the actor's recent outside search that found ``client_id``, or refuse (audited).

    Only the clients a motivated search returned may be opened, linked or
    asked under its motivation: one search does not open the organisation.
    """
    row = await outside_search_row(actor, search_id, svc.now())
    if row is not None and client_id in (row.details or {}).get("hits", []):
        return row
    client = await Account.get_or_none(id=client_id, role=Role.CLIENT,
                                       organisation_id=actor.organisation_id) if actor.organisation_id else None
    await record(svc, actor, action, AuditType.EMERGENCY_ACCESS, subject=client, outcome=Outcome.REFUSED,
                 details={"search_id": search_id if row is not None else None, "client_id": client_id,
                          "refused": "not_found_by_search" if row is not None else "no_recent_search"})
    if row is None:
        raise NotPermittedError("outside_search_needed", _l(
            "Search outside your caseload again, with a motivation, to open this client."))
    raise NotPermittedError("not_found_by_search", _l(
        "Your search did not find this client. Search for this client, with a motivation, to open their account."))


async def open_from_outside(svc: Services, actor: Actor, client_id: int, search_id: int) -> OutsideView:
    """Show a client found outside the caseload, limited to who is linked; audited as emergency access."""
    organisation = await _organisation(actor)
    await require(svc, actor, Permission.CASELOAD_SEARCH_OUTSIDE, organisation, "caseload.open_outside")
    search = await outside_search_for(svc, actor, search_id, client_id, "caseload.open_outside")
    client = await get_client(client_id)
    if client.organisation_id != organisation.id:
        raise NotFoundError()
    await record(svc, actor, "caseload.open_outside", AuditType.EMERGENCY_ACCESS, subject=client,
                 reason=search.reason, details={"search_id": search.id})
    professionals = await professionals_of(client)
    pending = await LinkRequest.filter(client_id=client.id, professional_id=actor.account_id,
                                       status=LinkRequestStatus.PENDING, expires_at__gt=svc.now()).first()
    return OutsideView(client, organisation, professionals, search.reason, search.id, pending,
                       any(p.id == actor.account_id for p in professionals))


async def client_tools(svc: Services, actor: Actor, client: Account) -> list[ToolAssignment]:
    """Return a client's tools, active first (no audit row: the dossier page opening is the read)."""
    await require(svc, actor, Permission.CLIENT_TOOLS_VIEW, client, "caseload.view")
    return await ToolAssignment.filter(client_id=client.id).select_related("tool", "supervisor").order_by(
        "archived_at", "-assigned_at")


async def contact_history(svc: Services, actor: Actor, client: Account, limit: int = 200) -> list[Any]:
    """Return what happened in a client's account, newest first, for the dossier or the client's own page."""
    from lotse.platform.audit.queries import AuditFilters, list_events

    await require(svc, actor, Permission.CLIENT_VIEW, client, "caseload.history")
    await record(svc, actor, "caseload.history", AuditType.READ, subject=client)
    filters = AuditFilters(organisation_id=client.organisation_id, client=client.pseudonym)
    return await list_events(filters, limit=limit)


async def pending_requests_for(client: Account, now: Any) -> list[LinkRequest]:
    """Return a client's open link requests (their own, for their account page)."""
    return await LinkRequest.filter(client_id=client.id, status=LinkRequestStatus.PENDING,
                                    expires_at__gt=now).select_related("professional").order_by("created_at")


async def list_professionals(svc: Services, actor: Actor, role: Role | None = None) -> list[Account]:
    """Return the organisation's active professionals, optionally of one role (to find the secretaries)."""
    organisation = await _organisation(actor)
    await require(svc, actor, Permission.PROFESSIONALS_LIST, organisation, "organisation.professionals")
    roles = [role] if role is not None else [r for r in PROFESSIONAL_ROLES if r is not Role.SERVICEDESK]
    return await Account.filter(organisation_id=organisation.id, role__in=roles,
                                status=AccountStatus.ACTIVE).order_by("last_name", "first_name")


async def linkable_professionals(client: Account) -> list[Account]:
    """Return the therapists and supervisors of the client's organisation not yet linked to the client."""
    linked = await CaseloadLink.filter(client_id=client.id).values_list("professional_id", flat=True)
    return await Account.filter(
        organisation_id=client.organisation_id,
        role__in=[Role.THERAPIST, Role.SUPERVISOR], status=AccountStatus.ACTIVE,
    ).exclude(id__in=list(linked)).order_by("last_name", "first_name")
