"""Tasks: created for a person or a role, completed by the assignee or the role, listed as "mine" and "my role's"."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.errors import ConflictError, NotPermittedError
from lotse.platform.permissions import Actor
from lotse.platform.tasks.actions import do_complete_task, do_create_task
from lotse.platform.tasks.models import TaskKind, TaskStatus
from lotse.platform.tasks.queries import describe_task, my_tasks
from tests.factories import link, make_account, make_client, make_org


@pytest.fixture
async def org_people(svc):
    org = await make_org(svc)
    return {
        "org": org,
        "therapist": await make_account(svc, org, Role.THERAPIST),
        "admin": await make_account(svc, org, Role.APP_ADMIN),
        "admin2": await make_account(svc, org, Role.APP_ADMIN),
        "secretary": await make_account(svc, org, Role.SECRETARY),
        "client": await make_client(svc, org),
        "foreign_admin": await make_account(svc, await make_org(svc), Role.APP_ADMIN),
    }


async def test_task_for_a_role_is_listed_and_completed_by_anyone_with_it(svc, org_people):
    p = org_people
    await link(svc, p["client"], p["therapist"])
    async with svc.bus.subscribe("task.created") as events:
        task = await do_create_task(svc, Actor.of(p["therapist"]), kind=TaskKind.TWO_FACTOR_RESET,
                                    assignee_role=Role.APP_ADMIN, client=p["client"],
                                    data={"client": p["client"].name})
        _topic, payload = await anext(events)
    assert payload["assignee_role"] == "app_admin"
    assert (await AuditEvent.filter(action="task.create").get()).event_type is AuditType.CREATE
    lists = await my_tasks(Actor.of(p["admin2"]))
    assert [t.id for t in lists.my_role] == [task.id]
    assert lists.mine == []
    assert p["client"].name in describe_task(task).render("de")
    assert (await my_tasks(Actor.of(p["foreign_admin"]))).my_role == []
    for outsider in (p["therapist"], p["secretary"], p["foreign_admin"], p["client"]):
        with pytest.raises(NotPermittedError):
            await do_complete_task(svc, Actor.of(outsider), task)
    done = await do_complete_task(svc, Actor.of(p["admin2"]), task)
    assert (done.status, done.completed_by_id) == (TaskStatus.DONE, p["admin2"].id)
    with pytest.raises(ConflictError):
        await do_complete_task(svc, Actor.of(p["admin"]), task)
    assert await AuditEvent.filter(action="task.complete", outcome=Outcome.REFUSED).count() == 4


async def test_task_for_a_person(svc, org_people):
    p = org_people
    task = await do_create_task(svc, Actor.of(p["admin"]), kind=TaskKind.FOLLOW_UP, assignee=p["secretary"],
                                note="Call back about the new account")
    assert [t.id for t in (await my_tasks(Actor.of(p["secretary"]))).mine] == [task.id]
    with pytest.raises(NotPermittedError):
        await do_complete_task(svc, Actor.of(p["admin"]), task)
    await do_complete_task(svc, Actor.of(p["secretary"]), task)
    assert (await my_tasks(Actor.of(p["secretary"]))).mine == []


async def test_clients_cannot_create_tasks(svc, org_people):
    with pytest.raises(NotPermittedError):
        await do_create_task(svc, Actor.of(org_people["client"]), kind=TaskKind.FOLLOW_UP,
                             assignee_role=Role.APP_ADMIN)


async def test_a_link_request_task_is_answered_not_marked_done(svc, org_people):
    """Closing it would leave the request pending and hide it from the client's list."""
    from lotse.platform.caseload.actions import do_request_link
    from lotse.platform.caseload.models import LinkRequest, LinkRequestStatus
    from lotse.platform.organisations.models import LinkPolicy

    p = org_people
    await p["org"].filter(id=p["org"].id).update(link_policy=LinkPolicy.CLIENT_CONSENT,
                                                  search_outside_caseload=True)
    request = await do_request_link(svc, Actor.of(p["therapist"]), p["client"], "A new referral to me")
    [task] = (await my_tasks(Actor.of(p["client"]))).mine
    assert task.kind is TaskKind.LINK_REQUEST
    with pytest.raises(ConflictError) as caught:
        await do_complete_task(svc, Actor.of(p["client"]), task)
    assert caught.value.code == "task_needs_answer"
    assert [t.id for t in (await my_tasks(Actor.of(p["client"]))).mine] == [task.id]
    assert (await LinkRequest.get(id=request.id)).status is LinkRequestStatus.PENDING
