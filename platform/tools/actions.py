"""The organisation's catalogue of tools and the tools assigned to clients."""

from __future__ import annotations

from dataclasses import dataclass

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.errors import ConflictError, NotFoundError, ValidationError
from lotse.platform.events import Event
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind


@dataclass(frozen=True)
class ToolAssigned(Event):
    name = "tool.assigned"
    assignment_id: int
    client_id: int
    tool_id: int
    supervisor_id: int | None


@dataclass(frozen=True)
class ToolArchived(Event):
    name = "tool.archived"
    assignment_id: int
    client_id: int


@dataclass(frozen=True)
class ToolProgressed(Event):
    name = "tool.progressed"
    assignment_id: int
    client_id: int
    steps_done: int


async def do_create_tool(
    svc: Services, actor: Actor, organisation: Organisation, *, kind: ToolKind, title: str,
    description: str = "", steps: int = 1,
) -> Tool:
    """Add a tool to the organisation's catalogue (application admins)."""
    title = " ".join(title.split())
    if not title:
        raise ValidationError(fields={"title": _l("Please enter a title.")})
    if steps < 1:
        raise ValidationError(fields={"steps": _l("A tool has at least one step.")})
    async with unit(svc, actor, "tool.create", Permission.TOOL_CATALOGUE, organisation) as u:
        if await Tool.filter(organisation_id=organisation.id, title=title).exists():
            raise ConflictError("tool_exists", _l("The catalogue already has a tool with this title."),
                                fields={"title": _l("The catalogue already has a tool with this title.")})
        tool = await Tool.create(organisation=organisation, kind=kind, title=title, description=description,
                                 steps=steps, created_at=u.now)
        u.audit(AuditType.CREATE, details={"tool_id": tool.id, "title": title})
    return tool


async def do_assign_tool(
    svc: Services, actor: Actor, client: Account, tool: Tool, *, supervisor: Account | None = None
) -> ToolAssignment:
    """Give a client a tool from the catalogue, supervised by the actor or another linked therapist."""
    async with unit(svc, actor, "tool.assign", Permission.TOOL_ASSIGN, client) as u:
        if tool.organisation_id != client.organisation_id or not tool.available:
            raise NotFoundError()
        supervisor_id = supervisor.id if supervisor is not None else actor.account_id
        if not await CaseloadLink.filter(client_id=client.id, professional_id=supervisor_id,
                                         kind=LinkKind.TREATING).exists():
            raise ValidationError(fields={"supervisor": _l("Only a therapist linked to this client can supervise a tool.")})
        if await ToolAssignment.filter(client_id=client.id, tool_id=tool.id, archived_at=None).exists():
            raise ConflictError("tool_already_assigned", _l("The client already works with this tool."))
        assignment = await ToolAssignment.create(
            tool=tool, client=client, supervisor_id=supervisor_id, assigned_at=u.now, assigned_by_id=actor.account_id,
            updated_at=u.now,
        )
        u.audit(AuditType.CREATE, subject=client, details={"tool_id": tool.id, "title": tool.title,
                                                           "assignment_id": assignment.id})
        u.event(ToolAssigned(assignment.id, client.id, tool.id, supervisor_id))
    return assignment


async def _assignment_of(client: Account, assignment_id: int) -> ToolAssignment:
    assignment = await ToolAssignment.get_or_none(id=assignment_id, client_id=client.id).select_related("tool")
    if assignment is None:
        raise NotFoundError()
    return assignment


async def do_archive_tool(svc: Services, actor: Actor, client: Account, assignment_id: int) -> ToolAssignment:
    """Archive a client's tool: it stays readable in the dossier, apart from the active ones."""
    async with unit(svc, actor, "tool.archive", Permission.TOOL_ASSIGN, client) as u:
        assignment = await _assignment_of(client, assignment_id)
        if assignment.is_archived:
            raise ConflictError("tool_archived", _l("This tool is already archived."))
        assignment.archived_at = u.now
        assignment.updated_at = u.now
        await assignment.save(update_fields=["archived_at", "updated_at"])
        u.audit(AuditType.UPDATE, subject=client, details={"assignment_id": assignment.id,
                                                           "title": assignment.tool.title})
        u.event(ToolArchived(assignment.id, client.id))
    return assignment


async def do_record_progress(
    svc: Services, actor: Actor, client: Account, assignment_id: int, steps_done: int
) -> ToolAssignment:
    """Record how far the client got in a tool (the client, working in it)."""
    async with unit(svc, actor, "tool.progress", Permission.OWN_ACCOUNT, client) as u:
        assignment = await _assignment_of(client, assignment_id)
        if assignment.is_archived:
            raise ConflictError("tool_archived", _l("This tool is already archived."))
        assignment.steps_done = max(0, min(steps_done, assignment.tool.steps))
        assignment.updated_at = u.now
        await assignment.save(update_fields=["steps_done", "updated_at"])
        u.audit(AuditType.UPDATE, subject=client, details={"assignment_id": assignment.id,
                                                           "steps_done": assignment.steps_done})
        u.event(ToolProgressed(assignment.id, client.id, assignment.steps_done))
    return assignment


async def supervised_tools(client: Account, professional: Account) -> list[ToolAssignment]:
    """Return the client's active tools that ``professional`` supervises."""
    return await ToolAssignment.filter(
        client_id=client.id, supervisor_id=professional.id, archived_at=None
    ).select_related("tool")


def can_supervise(professional: Account) -> bool:
    return professional.role is Role.THERAPIST
