"""Linking professionals to clients, link requests, unlinking with hand-over.

Who may link whom, by the organisation's settings:

- a therapist linked to the client (not read-only), or a secretary, links
  other therapists and supervisors (``do_link_professional``);
- with link policy *self-link*, a therapist who found a client outside the
  caseload links themself, with the motivation of that search
  (``do_self_link``);
- with link policy *client consent*, the therapist sends a link request; the
  client gets a mail and a task, accepts or rejects it in their own account,
  and the therapist gets a task with the answer. Unanswered requests expire
  after 14 days (``expire_link_requests``, a job);
- with link policy *read-only*, none of the above: the professional asks a
  linked colleague or a secretary.

Unlinking hands the tools the leaving professional supervises to another
linked therapist, or unlinks the tools (the client keeps working in them,
without contact); it is refused while tools would be left without a choice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from lotse.platform.accounts.actions import mail_language
from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import MailSpec, Services, Unit, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.caseload.search import normalise
from lotse.platform.errors import ConflictError, NotFoundError, ValidationError
from lotse.platform.events import Event
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission
from lotse.platform.tasks.actions import add_task, close_tasks
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus
from lotse.platform.tools.models import ToolAssignment

LINK_REQUEST_LIFETIME = timedelta(days=14)
MOTIVATION_MIN_LENGTH = 10


@dataclass(frozen=True)
class ProfessionalLinked(Event):
    name = "caseload.linked"
    client_id: int
    professional_id: int
    kind: str


@dataclass(frozen=True)
class ProfessionalUnlinked(Event):
    name = "caseload.unlinked"
    client_id: int
    professional_id: int
    tools_handed_to_id: int | None
    tools_unlinked: int


@dataclass(frozen=True)
class LinkRequested(Event):
    name = "caseload.link_requested"
    request_id: int
    client_id: int
    professional_id: int


@dataclass(frozen=True)
class LinkRequestAnswered(Event):
    name = "caseload.link_request_answered"
    request_id: int
    client_id: int
    professional_id: int
    status: str


# What a motivation must not hold: it is kept in the audit trail, which outlives an erasure.
_EMAIL = re.compile(r"\S@\S")
_DATE = re.compile(r"\d{1,2}\s*[-./]\s*\d{1,2}\s*[-./]\s*\d{2,4}")
# Shorter terms ("de", "li") are words of every sentence, not what identifies someone.
_IDENTIFYING_TERM = 3
_IDENTIFYING_FRAGMENT = 4


def _names_someone(motivation: str, terms: Iterable[str]) -> bool:
    text = normalise(motivation)
    if _EMAIL.search(text) or _DATE.search(text):
        return True
    words = set(re.findall(r"\w+", text))
    for term in terms:
        for part in re.findall(r"\w+", normalise(term)):
            if len(part) >= _IDENTIFYING_TERM and part in words:
                return True
            if len(part) >= _IDENTIFYING_FRAGMENT and part in text:
                return True
    return False


def check_motivation(motivation: str, terms: Iterable[str] = ()) -> str:
    """Return the trimmed motivation, or raise when it is too short or names someone.

    The motivation is kept in the audit log for the application admins, so it
    says why, not whom: it must not repeat ``terms`` (what was searched, or
    the client's name and e-mail address), an e-mail address or a date.
    """
    motivation = " ".join(motivation.split())
    if len(motivation) < MOTIVATION_MIN_LENGTH:
        raise ValidationError(fields={"motivation": _l(
            "Please explain why you need this client's account, in at least %(min)s characters.",
            min=MOTIVATION_MIN_LENGTH,
        )})
    if _names_someone(motivation, terms):
        raise ValidationError(fields={"motivation": _l(
            "Explain why without the search terms, names, e-mail addresses or dates of birth: "
            "the motivation is kept in the audit log."
        )})
    return motivation


def _client_terms(client: Account) -> list[str]:
    return [client.first_name, client.last_name, client.email, client.client_ref or ""]


async def _organisation(account: Account) -> Organisation:
    return await Organisation.get(id=account.organisation_id)


async def add_link(u: Unit, client: Account, professional: Account, kind: LinkKind = LinkKind.TREATING) -> CaseloadLink:
    """Link inside the running unit ``u`` (e.g. the creator of a new client account); no permission check."""
    if professional.role is Role.SUPERVISOR:
        kind = LinkKind.SUPERVISING
    existing = await CaseloadLink.get_or_none(client_id=client.id, professional_id=professional.id)
    if existing is not None:
        return existing
    link = await CaseloadLink.create(client=client, professional=professional, kind=kind, created_at=u.now)
    u.event(ProfessionalLinked(client.id, professional.id, kind.value))
    return link


def _check_linkable(client: Account, professional: Account) -> None:
    if client.role is not Role.CLIENT:
        raise NotFoundError()
    if (
        professional.organisation_id != client.organisation_id
        or professional.role not in (Role.THERAPIST, Role.SUPERVISOR)
    ):
        raise ValidationError(fields={"professional": _l("Only therapists and supervisors of this organisation can be linked.")})
    if professional.status is not AccountStatus.ACTIVE:
        raise ValidationError(fields={"professional": _l("This professional's account is deactivated.")})


async def do_link_professional(
    svc: Services, actor: Actor, client: Account, professional: Account, kind: LinkKind = LinkKind.TREATING
) -> CaseloadLink:
    """Link a therapist (treating, or read-only as supervisor) or a supervisor to a client."""
    async with unit(svc, actor, "caseload.link", Permission.CASELOAD_LINK, client) as u:
        _check_linkable(client, professional)
        if await CaseloadLink.filter(client_id=client.id, professional_id=professional.id).exists():
            raise ConflictError("already_linked", _l("This professional is already linked to this client."))
        link = await add_link(u, client, professional, kind)
        u.audit(AuditType.UPDATE, subject=client, details={"professional_id": professional.id,
                                                           "kind": link.kind.value})
    return link


async def do_self_link(svc: Services, actor: Actor, client: Account, motivation: str) -> CaseloadLink:
    """Link yourself to a client found outside your caseload (link policy self-link)."""
    async with unit(svc, actor, "caseload.self_link", Permission.CASELOAD_SELF_LINK, client) as u:
        motivation = check_motivation(motivation, _client_terms(client))
        professional = await Account.get(id=actor.account_id)
        _check_linkable(client, professional)
        if await CaseloadLink.filter(client_id=client.id, professional_id=professional.id).exists():
            raise ConflictError("already_linked", _l("You are already linked to this client."))
        link = await add_link(u, client, professional, LinkKind.TREATING)
        u.audit(AuditType.UPDATE, subject=client, reason=motivation,
                details={"professional_id": professional.id, "kind": link.kind.value})
    return link


async def do_request_link(svc: Services, actor: Actor, client: Account, motivation: str = "") -> LinkRequest:
    """Ask a client to accept you as their therapist (link policy client consent): a mail and a task for the client."""
    async with unit(svc, actor, "caseload.request_link", Permission.CASELOAD_REQUEST_LINK, client) as u:
        professional = await Account.get(id=actor.account_id)
        _check_linkable(client, professional)
        if await CaseloadLink.filter(client_id=client.id, professional_id=professional.id).exists():
            raise ConflictError("already_linked", _l("You are already linked to this client."))
        if await LinkRequest.filter(client_id=client.id, professional_id=professional.id,
                                    status=LinkRequestStatus.PENDING, expires_at__gt=u.now).exists():
            raise ConflictError("link_request_pending", _l("You have already sent this client a link request."))
        organisation = await _organisation(client)
        request = await LinkRequest.create(
            organisation_id=organisation.id, client=client, professional=professional,
            motivation=" ".join(motivation.split())[:2000], created_at=u.now,
            expires_at=u.now + LINK_REQUEST_LIFETIME,
        )
        await add_task(u, organisation_id=organisation.id, kind=TaskKind.LINK_REQUEST, assignee=client,
                       client=client, due_at=request.expires_at,
                       data={"link_request_id": request.id, "professional": professional.name})
        u.mail(MailSpec(
            kind="link_request", to=client.email, language=mail_language(client, organisation),
            context={"client_name": client.first_name, "professional_name": professional.name,
                     "organisation_name": organisation.name, "expires_at": request.expires_at},
            account_id=client.id, organisation_id=organisation.id,
        ))
        u.audit(AuditType.CREATE, subject=client, details={"link_request_id": request.id,
                                                           "professional_id": professional.id})
        u.event(LinkRequested(request.id, client.id, professional.id))
    return request


async def do_answer_link_request(svc: Services, actor: Actor, request: LinkRequest, *, accept: bool) -> LinkRequest:
    """Accept or reject a link request (the client, in their own account); the professional learns the answer."""
    client = await Account.get(id=request.client_id)
    action = "caseload.link_request_accept" if accept else "caseload.link_request_reject"
    async with unit(svc, actor, action, Permission.OWN_ACCOUNT, client) as u:
        request = await LinkRequest.get(id=request.id).select_related("professional")
        if request.status is not LinkRequestStatus.PENDING:
            raise ConflictError("link_request_answered", _l("This request has already been answered."))
        if u.now >= request.expires_at:
            raise ConflictError("link_request_expired", _l("This request has expired."))
        professional: Account = request.professional
        request.status = LinkRequestStatus.ACCEPTED if accept else LinkRequestStatus.REJECTED
        request.answered_at = u.now
        await request.save(update_fields=["status", "answered_at"])
        if accept and professional.status is AccountStatus.ACTIVE:
            await add_link(u, client, professional, LinkKind.TREATING)
        await _close_request_task(u, request)
        organisation = await _organisation(client)
        await add_task(u, organisation_id=organisation.id, kind=TaskKind.LINK_REQUEST_ANSWERED, assignee=professional,
                       client=client, data={"link_request_id": request.id, "client": client.name,
                                            "answer": request.status.value})
        u.mail(MailSpec(
            kind="link_request_answered", to=professional.email, language=mail_language(professional, organisation),
            context={"professional_name": professional.first_name, "client_name": client.name,
                     "accepted": accept, "client_id": client.id},
            account_id=professional.id, organisation_id=organisation.id,
        ))
        u.audit(AuditType.UPDATE, subject=client, details={"link_request_id": request.id,
                                                           "professional_id": professional.id,
                                                           "answer": request.status.value})
        u.event(LinkRequestAnswered(request.id, client.id, professional.id, request.status.value))
    return request


async def _close_request_task(u: Unit, request: LinkRequest, status: TaskStatus = TaskStatus.DONE) -> None:
    for task in await Task.filter(assignee_id=request.client_id, kind=TaskKind.LINK_REQUEST,
                                  status=TaskStatus.OPEN):
        if task.data.get("link_request_id") == request.id:
            await close_tasks(u, status, id=task.id)


async def expire_link_requests(svc: Services) -> int:
    """Expire link requests left unanswered for 14 days; the professional gets a task. Return how many."""
    actor = Actor.system("job", reason="link requests expire after 14 days")
    count = 0
    pending = await LinkRequest.filter(status=LinkRequestStatus.PENDING, expires_at__lte=svc.now()).select_related(
        "client", "professional"
    )
    for request in pending:
        async with unit(svc, actor, "caseload.link_request_expire", None) as u:
            updated = await LinkRequest.filter(id=request.id, status=LinkRequestStatus.PENDING).update(
                status=LinkRequestStatus.EXPIRED, answered_at=u.now
            )
            if not updated:
                continue
            client: Account = request.client
            await _close_request_task(u, request, TaskStatus.CANCELLED)
            await add_task(u, organisation_id=request.organisation_id, kind=TaskKind.LINK_REQUEST_EXPIRED,
                           assignee=request.professional, client=client,
                           data={"link_request_id": request.id, "client": client.name})
            u.audit(AuditType.UPDATE, subject=client, details={"link_request_id": request.id,
                                                               "professional_id": request.professional.id,
                                                               "answer": "expired"})
            u.event(LinkRequestAnswered(request.id, client.id, request.professional.id, "expired"))
            count += 1
    return count


async def do_unlink_professional(
    svc: Services,
    actor: Actor,
    client: Account,
    professional: Account,
    *,
    hand_over_to: Account | None = None,
    unlink_tools: bool = False,
) -> int:
    """Unlink a professional (yourself or a colleague), handing over or unlinking the tools they supervise.

    Returns how many tools changed hands (or were unlinked). Refused with
    ``tools_need_supervisor`` when the professional supervises tools and
    neither a successor nor "unlink the tools" was chosen.
    """
    yourself = professional.id == actor.account_id
    permission = Permission.CLIENT_VIEW if yourself else Permission.CASELOAD_LINK
    async with unit(svc, actor, "caseload.unlink", permission, client) as u:
        link = await CaseloadLink.get_or_none(client_id=client.id, professional_id=professional.id)
        if link is None:
            raise NotFoundError("not_linked", _l("This professional is not linked to this client."))
        tools = await ToolAssignment.filter(client_id=client.id, supervisor_id=professional.id, archived_at=None)
        successor_id: int | None = None
        if tools:
            if hand_over_to is not None:
                if hand_over_to.id == professional.id or not await CaseloadLink.filter(
                    client_id=client.id, professional_id=hand_over_to.id, kind=LinkKind.TREATING
                ).exists():
                    raise ValidationError(fields={"hand_over_to": _l(
                        "Choose another therapist linked to this client to take over the tools."
                    )})
                successor_id = hand_over_to.id
            elif not unlink_tools:
                raise ConflictError("tools_need_supervisor", _l(
                    "This professional supervises tools of this client. Hand them over to another linked "
                    "therapist, or unlink the tools, before unlinking."
                ), data={"tools": len(tools)})
            await ToolAssignment.filter(id__in=[tool.id for tool in tools]).update(
                supervisor_id=successor_id, updated_at=u.now
            )
        await link.delete()
        u.audit(AuditType.UPDATE, subject=client, details={
            "professional_id": professional.id, "tools": len(tools), "handed_to_id": successor_id,
            "tools_unlinked": bool(tools) and successor_id is None,
        })
        u.event(ProfessionalUnlinked(client.id, professional.id, successor_id,
                                     len(tools) if successor_id is None else 0))
    return len(tools)
