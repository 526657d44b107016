"""The task list: "mine" and "my role's", with a button to mark a task done."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, flash, redirect, url_for

from lotse.platform.errors import NotFoundError
from lotse.platform.i18n import _
from lotse.platform.tasks.actions import do_complete_task
from lotse.platform.tasks.models import Task
from lotse.platform.tasks.queries import describe_task, my_tasks
from lotse.platform.web import actor, form_data, render, services, signed_in

blueprint = Blueprint("tasks", __name__)


@blueprint.get("/tasks")
@signed_in()
async def index() -> Any:
    lists = await my_tasks(actor())
    return await render("tasks/index.html", lists=lists, describe_task=describe_task)


@blueprint.post("/tasks/<int:task_id>/complete")
@signed_in()
async def complete(task_id: int) -> Any:
    await form_data()
    task = await Task.get_or_none(id=task_id)
    if task is None:
        raise NotFoundError()
    await do_complete_task(services(), actor(), task)
    await flash(_("The task is done."), "ok")
    return redirect(url_for("tasks.index"))
