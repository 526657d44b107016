"""JSON API of tasks under ``/api/v1/tasks``: "mine" and "my role's", create a follow-up, mark done.

Mounted by ``lotse.platform.caseload.api`` (nested blueprint). A task's
``text`` is made from its kind and data in the language of the request,
like on the page. Only follow-ups are created here; the other kinds are
made by the actions they belong to (a link request, a two-factor reset).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from quart import Blueprint
from quart_schema import tag, validate_request, validate_response

from lotse.platform.accounts.models import Account, Role
from lotse.platform.errors import NotFoundError, ValidationError
from lotse.platform.i18n import _l
from lotse.platform.tasks.actions import do_complete_task, do_create_task
from lotse.platform.tasks.models import Task, TaskKind
from lotse.platform.tasks.queries import describe_task, my_tasks
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("tasks_api", __name__, url_prefix="/tasks")

AssignableRole = Literal["therapist", "supervisor", "secretary", "app_admin", "content_editor"]


class TaskOut(BaseModel):
    id: int
    kind: str
    status: str
    text: str = Field(description="What the task asks, in the language of the request.")
    note: str
    assignee_id: int | None
    assignee_role: str | None
    client_id: int | None
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None

    @classmethod
    def of(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id, kind=task.kind.value, status=task.status.value, text=str(describe_task(task)),
            note=task.note, assignee_id=task.assignee_id,
            assignee_role=task.assignee_role.value if task.assignee_role else None,
            client_id=task.client_id, due_at=task.due_at, created_at=task.created_at,
            completed_at=task.completed_at,
        )


class TaskListsOut(BaseModel):
    mine: list[TaskOut]
    my_role: list[TaskOut]


@blueprint.get("")
@tag(["tasks"])
@validate_response(TaskListsOut)
@signed_in()
async def list_tasks() -> TaskListsOut:
    """List your open tasks and the open tasks of your role in your organisation, by due date."""
    lists = await my_tasks(actor("api"))
    return TaskListsOut(mine=[TaskOut.of(t) for t in lists.mine], my_role=[TaskOut.of(t) for t in lists.my_role])


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    assignee_id: StrictInt | None = Field(None, description="A person of your organisation; or give assignee_role.")
    assignee_role: AssignableRole | None = Field(None, description="Everyone with this role in your organisation.")
    client_id: StrictInt | None = Field(None, description="The client the task is about, if any.")
    due_at: datetime | None = None
    note: Annotated[str, Field(max_length=4000)] = ""


async def _account(account_id: int | None, field: str) -> Account | None:
    if account_id is None:
        return None
    account = await Account.get_or_none(id=account_id)
    if account is None:
        raise ValidationError(fields={field: _l("There is no such account.")})
    return account


@blueprint.post("")
@tag(["tasks"])
@validate_request(TaskIn)
@validate_response(TaskOut, 201)
@signed_in()
async def create_task(data: TaskIn) -> tuple[TaskOut, int]:
    """Create a follow-up task for a person or a role of your organisation (professionals).

    Exactly one of ``assignee_id`` and ``assignee_role``.
    """
    client = await _account(data.client_id, "client_id")
    if client is not None and client.role is not Role.CLIENT:
        raise ValidationError(fields={"client_id": _l("There is no such account.")})
    task = await do_create_task(
        services(), actor("api"), kind=TaskKind.FOLLOW_UP,
        assignee=await _account(data.assignee_id, "assignee_id"),
        assignee_role=Role(data.assignee_role) if data.assignee_role else None,
        client=client, due_at=data.due_at, note=data.note,
    )
    return TaskOut.of(task), 201


class CompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")


@blueprint.post("/<int:task_id>/complete")
@tag(["tasks"])
@validate_request(CompleteIn)
@validate_response(TaskOut)
@signed_in()
async def complete_task(task_id: int, data: CompleteIn) -> TaskOut:
    """Mark an open task done: your own, or one assigned to your role. Body: ``{}``.

    ``409 task_closed`` when it was closed already.
    """
    task = await Task.get_or_none(id=task_id)
    if task is None:
        raise NotFoundError()
    return TaskOut.of(await do_complete_task(services(), actor("api"), task))
