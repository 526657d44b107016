"""Reading tasks: "mine", "my role's", and a client's open tasks.

A task's text is made from its kind and data when it is shown, in the
reader's language (``describe_task``).
"""

from __future__ import annotations

from dataclasses import dataclass

from lotse.platform.accounts.models import Account
from lotse.platform.actions import Services, record, require
from lotse.platform.audit.models import AuditType
from lotse.platform.i18n import LazyText, _l
from lotse.platform.permissions import Actor, Permission
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus

# Parameters are filled in when a task is shown (``describe_task``).
_TEXTS: dict[TaskKind, LazyText] = {
    TaskKind.LINK_REQUEST: _l("%(professional)s asks to be linked to you as your therapist."),
    TaskKind.LINK_REQUEST_ANSWERED: _l("%(client)s answered your link request: %(answer)s."),
    TaskKind.LINK_REQUEST_EXPIRED: _l("%(client)s did not answer your link request within 14 days."),
    TaskKind.TWO_FACTOR_RESET: _l("Reset the two-factor authentication of %(client)s."),
    TaskKind.MESSAGE_PURGE: _l("Permanently purge a removed message."),
    TaskKind.ERASURE: _l("Handle an erasure request."),
    TaskKind.FOLLOW_UP: _l("Follow up."),
}
_ANSWERS = {"accepted": _l("accepted"), "rejected": _l("rejected")}


def describe_task(task: Task) -> LazyText:
    """Return what the task asks, in words, from its kind and data."""
    params = {
        "professional": task.data.get("professional", ""),
        "client": task.data.get("client", ""),
        "answer": _ANSWERS.get(str(task.data.get("answer", "")), task.data.get("answer", "")),
    }
    return LazyText(_TEXTS.get(task.kind, _TEXTS[TaskKind.FOLLOW_UP]).msgid, params)


@dataclass(frozen=True)
class TaskLists:
    mine: list[Task]
    my_role: list[Task]


async def my_tasks(actor: Actor, *, include_closed: bool = False) -> TaskLists:
    """Return the actor's own open tasks and the open tasks of the actor's role in the organisation."""
    status = {} if include_closed else {"status": TaskStatus.OPEN}
    mine = await Task.filter(assignee_id=actor.account_id, **status).prefetch_related("client")
    role: list[Task] = []
    if actor.role is not None and actor.organisation_id is not None:
        role = await Task.filter(
            assignee_id=None, assignee_role=actor.role, organisation_id=actor.organisation_id, **status
        ).prefetch_related("client")
    return TaskLists(mine, role)


async def client_tasks(svc: Services, actor: Actor, client: Account) -> list[Task]:
    """Return the open tasks about or for a client (dossier "tasks"), audited as a read."""
    await require(svc, actor, Permission.CLIENT_VIEW, client, "task.read")
    tasks = await Task.filter(status=TaskStatus.OPEN, client_id=client.id).prefetch_related("assignee")
    own = await Task.filter(status=TaskStatus.OPEN, assignee_id=client.id, client_id=None)
    await record(svc, actor, "task.read", AuditType.READ, subject=client)
    return [*tasks, *own]
