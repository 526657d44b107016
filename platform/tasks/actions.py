"""Creating and completing tasks.

``add_task`` and ``close_tasks`` are building blocks for other actions: they
write inside the caller's unit (its transaction, permission and audit), e.g.
a link request that gives the client a task. ``do_create_task`` and
``do_complete_task`` are the actions people and flows call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services, Unit, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.errors import ConflictError, ValidationError
from lotse.platform.events import Event
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus


@dataclass(frozen=True)
class TaskCreated(Event):
    name = "task.created"
    task_id: int
    organisation_id: int
    kind: str
    assignee_id: int | None
    assignee_role: str | None
    client_id: int | None


@dataclass(frozen=True)
class TaskCompleted(Event):
    name = "task.completed"
    task_id: int
    organisation_id: int
    completed_by_id: int | None


async def add_task(
    u: Unit,
    *,
    organisation_id: int,
    kind: TaskKind,
    assignee: Account | None = None,
    assignee_role: Role | None = None,
    client: Account | None = None,
    due_at: datetime | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
) -> Task:
    """Write a task inside the running unit ``u``; exactly one of ``assignee`` / ``assignee_role``."""
    if (assignee is None) == (assignee_role is None):
        raise ValidationError(fields={"assignee": _l("Choose a person or a role to assign the task to.")})
    if assignee is not None and assignee.organisation_id != organisation_id:
        raise ValidationError(fields={"assignee": _l("This person does not work in this organisation.")})
    task = await Task.create(
        organisation_id=organisation_id, assignee=assignee, assignee_role=assignee_role, client=client,
        kind=kind, note=note.strip()[:4000], data=data or {}, due_at=due_at, created_at=u.now,
        created_by_id=u.actor.account_id,
    )
    u.event(TaskCreated(task.id, organisation_id, kind.value, assignee.id if assignee else None,
                        assignee_role.value if assignee_role else None, client.id if client else None))
    return task


async def close_tasks(u: Unit, status: TaskStatus = TaskStatus.DONE, **filters: Any) -> int:
    """Close the open tasks matching ``filters`` inside the running unit; return how many."""
    tasks = await Task.filter(status=TaskStatus.OPEN, **filters)
    for task in tasks:
        task.status = status
        task.completed_at = u.now
        task.completed_by_id = u.actor.account_id
        await task.save(update_fields=["status", "completed_at", "completed_by_id"])
        u.event(TaskCompleted(task.id, task.organisation_id, u.actor.account_id))
    return len(tasks)


async def do_create_task(
    svc: Services,
    actor: Actor,
    *,
    kind: TaskKind,
    assignee: Account | None = None,
    assignee_role: Role | None = None,
    client: Account | None = None,
    due_at: datetime | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
    organisation: Organisation | None = None,
) -> Task:
    """Create a task for a person or for a role in the actor's organisation, optionally about a client.

    ``organisation``: the actor's organisation when the caller has it at hand (else it is loaded when needed).
    """
    subject: Account | Organisation | None = client
    if subject is None and actor.organisation_id is not None:
        if organisation is not None and organisation.id == actor.organisation_id:
            subject = organisation
        else:
            subject = await Organisation.get_or_none(id=actor.organisation_id)
    organisation_id = actor.organisation_id or (client.organisation_id if client else None)
    if organisation_id is None and assignee is not None:
        organisation_id = assignee.organisation_id
    if organisation_id is None:
        raise ValidationError(fields={"assignee": _l("Choose a person or a role to assign the task to.")})
    async with unit(svc, actor, "task.create", Permission.TASK_CREATE, subject) as u:
        task = await add_task(
            u, organisation_id=organisation_id, kind=kind, assignee=assignee, assignee_role=assignee_role,
            client=client, due_at=due_at, note=note, data=data,
        )
        u.audit(AuditType.CREATE, subject=client, details={"task_id": task.id, "kind": kind.value})
    return task


# Tasks closed by answering them in their own action, never by "done": a client's
# link request stays pending (and is hidden from their list) if its task is just closed.
ANSWERED_ELSEWHERE = frozenset({TaskKind.LINK_REQUEST})


async def do_complete_task(svc: Services, actor: Actor, task: Task) -> Task:
    """Mark an open task done (its assignee, or anyone holding the role it is assigned to).

    Refused with ``task_needs_answer`` for a link request: the client accepts
    or rejects it, and that answer closes the task.
    """
    async with unit(svc, actor, "task.complete", Permission.TASK_COMPLETE, task) as u:
        fresh = await Task.get(id=task.id)
        if not fresh.is_open:
            raise ConflictError("task_closed", _l("This task has already been closed."))
        if fresh.kind in ANSWERED_ELSEWHERE:
            raise ConflictError("task_needs_answer", _l("Answer the request: accept or reject it."))
        await close_tasks(u, id=task.id)
        client = await Account.get_or_none(id=fresh.client_id) if fresh.client_id else None
        u.audit(AuditType.UPDATE, subject=client, details={"task_id": task.id, "kind": fresh.kind.value})
    return await Task.get(id=task.id)
