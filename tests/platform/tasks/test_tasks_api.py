"""Tasks over the JSON API: "mine" and "my role's", creating a follow-up, marking done."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, Outcome
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus
from tests.factories import link, make_account, make_client, make_org


@pytest.fixture
async def people(svc):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await make_client(svc, org, first_name="Noor", last_name="Visser")
    await link(svc, client, therapist)
    return {
        "org": org, "therapist": therapist, "client": client,
        "secretary": await make_account(svc, org, Role.SECRETARY),
        "other secretary": await make_account(svc, org, Role.SECRETARY),
        "app admin": await make_account(svc, org, Role.APP_ADMIN),
        "foreign secretary": await make_account(svc, await make_org(svc), Role.SECRETARY),
    }


async def test_create_list_and_complete_a_role_task(svc, people, sign_in_as):
    therapist = await sign_in_as(people["therapist"], "de")
    async with svc.bus.subscribe("task.created") as events:
        response = await therapist.post("/api/v1/tasks", json={
            "assignee_role": "secretary", "client_id": people["client"].id, "note": "Adresse prüfen",
            "due_at": "2026-12-01T09:00:00+00:00"})
        _topic, payload = await anext(events)
    assert response.status_code == 201, await response.get_data(as_text=True)
    created = await response.get_json()
    assert (created["kind"], created["status"], created["assignee_role"], created["client_id"]) == (
        "follow_up", "open", "secretary", people["client"].id)
    assert payload["task_id"] == created["id"]
    assert await AuditEvent.filter(action="task.create", outcome=Outcome.SUCCESS,
                                   subject_id=people["client"].id).exists()

    secretary = await sign_in_as(people["secretary"], "nl")
    lists = await (await secretary.get("/api/v1/tasks")).get_json()
    assert lists["mine"] == []
    assert [t["id"] for t in lists["my_role"]] == [created["id"]]
    assert lists["my_role"][0]["note"] == "Adresse prüfen"
    assert lists["my_role"][0]["text"]   # words for the kind, in the reader's language

    done = await secretary.post(f"/api/v1/tasks/{created['id']}/complete", json={})
    assert done.status_code == 200
    assert (await done.get_json())["status"] == "done"
    task = await Task.get(id=created["id"])
    assert (task.status, task.completed_by_id) == (TaskStatus.DONE, people["secretary"].id)
    assert await AuditEvent.filter(action="task.complete", outcome=Outcome.SUCCESS).exists()
    # The other secretary held the same role; now it is closed.
    again = await (await sign_in_as(people["other secretary"])).post(
        f"/api/v1/tasks/{created['id']}/complete", json={})
    assert again.status_code == 409
    assert (await again.get_json())["code"] == "task_closed"


async def test_a_personal_task_is_listed_as_mine(people, sign_in_as):
    secretary = await sign_in_as(people["secretary"])
    response = await secretary.post("/api/v1/tasks", json={"assignee_id": people["therapist"].id,
                                                            "note": "Call back"})
    assert response.status_code == 201
    therapist = await sign_in_as(people["therapist"])
    lists = await (await therapist.get("/api/v1/tasks")).get_json()
    assert [t["note"] for t in lists["mine"]] == ["Call back"]


@pytest.mark.parametrize("body", [
    {"note": "nobody"},
    {"assignee_id": 1, "assignee_role": "secretary"},
    {"assignee_role": "client"},
    {"assignee_role": "secretary", "kind": "erasure"},
    {"assignee_id": 999_999},
])
async def test_create_checks_its_body(people, sign_in_as, body):
    therapist = await sign_in_as(people["therapist"])
    response = await therapist.post("/api/v1/tasks", json=body)
    assert response.status_code == 422
    assert (await response.get_json())["code"] == "invalid"
    assert not await Task.exists()


async def test_assignee_of_another_organisation_is_refused(people, sign_in_as):
    therapist = await sign_in_as(people["therapist"])
    response = await therapist.post("/api/v1/tasks", json={"assignee_id": people["foreign secretary"].id})
    assert response.status_code == 422
    assert "assignee" in (await response.get_json())["fields"]


async def test_clients_create_no_tasks(people, sign_in_as):
    client = await sign_in_as(people["client"])
    response = await client.post("/api/v1/tasks", json={"assignee_role": "secretary"})
    assert response.status_code == 403
    assert not await Task.exists()


@pytest.mark.parametrize("role", ["therapist", "app admin", "foreign secretary", "client"])
async def test_completing_someone_elses_task_is_refused(svc, people, sign_in_as, role):
    task = await Task.create(organisation_id=people["org"].id, assignee_role=Role.SECRETARY,
                             kind=TaskKind.FOLLOW_UP, created_at=svc.now())
    http = await sign_in_as(people[role])
    response = await http.post(f"/api/v1/tasks/{task.id}/complete", json={})
    assert response.status_code == 403
    assert (await Task.get(id=task.id)).status is TaskStatus.OPEN
    assert (await http.post("/api/v1/tasks/999999/complete", json={})).status_code == 404


async def test_tasks_need_sign_in(client):
    response = await client.get("/api/v1/tasks")
    assert response.status_code == 401
    assert (await response.get_json())["code"] == "not_signed_in"
