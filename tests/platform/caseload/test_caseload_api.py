"""The caseload's JSON API: link, self-link, link requests and their answers, unlink with hand-over."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind
from tests.factories import link, make_account, make_client, make_org

MOTIVATION = "The client phoned the secretariat about her account"


@pytest.fixture
async def world(svc):
    org = await make_org(svc, search_outside_caseload=True, link_policy=LinkPolicy.CLIENT_CONSENT)
    client = await make_client(svc, org, first_name="Anaïs", last_name="de Vries")
    therapist = await make_account(svc, org, Role.THERAPIST, first_name="Tom", last_name="Bakker")
    colleague = await make_account(svc, org, Role.THERAPIST, first_name="Uwe", last_name="Ungebunden")
    supervisor = await make_account(svc, org, Role.SUPERVISOR)
    await link(svc, client, therapist)
    await link(svc, client, supervisor, LinkKind.SUPERVISING)
    tool = await Tool.create(organisation=org, kind=ToolKind.DIARY, title="Sleep diary", steps=10, created_at=svc.now())
    assignment = await ToolAssignment.create(tool=tool, client=client, supervisor=therapist, steps_done=4,
                                             assigned_at=svc.now(), updated_at=svc.now())
    people = {
        "linked therapist": therapist,
        "unlinked therapist": colleague,
        "linked supervisor": supervisor,
        "secretary": await make_account(svc, org, Role.SECRETARY),
        "app admin": await make_account(svc, org, Role.APP_ADMIN),
        "client itself": client,
        "other client": await make_client(svc, org),
        "foreign secretary": await make_account(svc, await make_org(svc), Role.SECRETARY),
    }
    return {"org": org, "client": client, "therapist": therapist, "colleague": colleague, "supervisor": supervisor,
            "people": people, "assignment": assignment}


async def _search_id(client, query="de vries"):
    response = await client.post("/api/v1/caseload/search-outside", json={"q": query, "motivation": MOTIVATION})
    assert response.status_code == 200
    return (await response.get_json())["search_id"]


# --- link ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["linked therapist", "secretary"])
async def test_link_a_colleague(svc, world, sign_in_as, role):
    http = await sign_in_as(world["people"][role])
    async with svc.bus.subscribe("caseload.linked") as events:
        response = await http.post(f"/api/v1/clients/{world['client'].id}/professionals",
                                   json={"professional_id": world["colleague"].id})
        _topic, payload = await anext(events)
    assert response.status_code == 201
    body = await response.get_json()
    assert (body["client_id"], body["professional_id"], body["kind"]) == (
        world["client"].id, world["colleague"].id, "treating")
    assert payload["professional_id"] == world["colleague"].id
    assert await CaseloadLink.filter(client=world["client"], professional=world["colleague"]).exists()
    row = await AuditEvent.get(action="caseload.link", outcome=Outcome.SUCCESS)
    assert (row.subject_id, row.details["professional_id"]) == (world["client"].id, world["colleague"].id)

    listing = await (await http.get(f"/api/v1/clients/{world['client'].id}/professionals")).get_json()
    assert [p["id"] for p in listing["professionals"]][-1] == world["supervisor"].id
    assert {p["id"] for p in listing["professionals"]} == {world["therapist"].id, world["colleague"].id,
                                                          world["supervisor"].id}

    again = await http.post(f"/api/v1/clients/{world['client'].id}/professionals",
                            json={"professional_id": world["colleague"].id})
    assert again.status_code == 409
    assert (await again.get_json())["code"] == "already_linked"


@pytest.mark.parametrize("role", ["unlinked therapist", "linked supervisor", "app admin", "client itself",
                                  "other client", "foreign secretary"])
async def test_link_refused(svc, world, sign_in_as, role):
    http = await sign_in_as(world["people"][role])
    other = await make_account(svc, world["org"], Role.THERAPIST)
    response = await http.post(f"/api/v1/clients/{world['client'].id}/professionals",
                               json={"professional_id": other.id})
    assert response.status_code == 403, await response.get_data(as_text=True)
    assert set(await response.get_json()) >= {"code", "message"}
    assert not await CaseloadLink.filter(professional=other).exists()
    assert await AuditEvent.filter(action="caseload.link", outcome=Outcome.REFUSED).exists()


async def test_link_checks_its_body(world, sign_in_as):
    http = await sign_in_as(world["therapist"])
    path = f"/api/v1/clients/{world['client'].id}/professionals"
    missing = await http.post(path, json={"professional_id": 999_999})
    assert missing.status_code == 422
    assert "professional_id" in (await missing.get_json())["fields"]
    extra = await http.post(path, json={"professional_id": world["colleague"].id, "admin": True})
    assert extra.status_code == 422
    assert (await extra.get_json())["code"] == "invalid"
    broken = await http.post(path, data="{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert "body" in (await broken.get_json())["fields"]
    # A form post (what a cross-site page could send) changes nothing.
    form = await http.post(path, form={"professional_id": str(world["colleague"].id)})
    assert form.status_code in (400, 415, 422)
    assert not await CaseloadLink.filter(professional=world["colleague"]).exists()


# --- unlink -----------------------------------------------------------------------------


async def test_unlink_refused_while_tools_need_a_supervisor(world, sign_in_as):
    http = await sign_in_as(world["therapist"])
    response = await http.post(f"/api/v1/clients/{world['client'].id}/professionals/{world['therapist'].id}/unlink",
                               json={})
    assert response.status_code == 409
    body = await response.get_json()
    assert body["code"] == "tools_need_supervisor"
    assert body["data"] == {"tools": 1}
    assert await CaseloadLink.filter(client=world["client"], professional=world["therapist"]).exists()


async def test_unlink_with_hand_over(svc, world, sign_in_as):
    await link(svc, world["client"], world["colleague"])
    http = await sign_in_as(world["therapist"])
    path = f"/api/v1/clients/{world['client'].id}/professionals/{world['therapist'].id}/unlink"
    wrong = await http.post(path, json={"hand_over_to": world["supervisor"].id})
    assert wrong.status_code == 422
    assert "hand_over_to" in (await wrong.get_json())["fields"]
    response = await http.post(path, json={"hand_over_to": world["colleague"].id})
    assert response.status_code == 200
    assert (await response.get_json())["tools"] == 1
    assignment = await ToolAssignment.get(id=world["assignment"].id)
    assert assignment.supervisor_id == world["colleague"].id
    assert not await CaseloadLink.filter(client=world["client"], professional=world["therapist"]).exists()
    row = await AuditEvent.get(action="caseload.unlink", outcome=Outcome.SUCCESS)
    assert row.details["handed_to_id"] == world["colleague"].id


async def test_unlink_a_colleague_with_unlinked_tools(world, sign_in_as):
    http = await sign_in_as(world["people"]["secretary"])
    response = await http.post(
        f"/api/v1/clients/{world['client'].id}/professionals/{world['therapist'].id}/unlink",
        json={"unlink_tools": True})
    assert response.status_code == 200
    assert (await ToolAssignment.get(id=world["assignment"].id)).supervisor_id is None
    assert not await CaseloadLink.filter(client=world["client"], professional=world["therapist"]).exists()


@pytest.mark.parametrize("role", ["unlinked therapist", "app admin", "client itself", "foreign secretary"])
async def test_unlink_a_colleague_refused(world, sign_in_as, role):
    http = await sign_in_as(world["people"][role])
    response = await http.post(
        f"/api/v1/clients/{world['client'].id}/professionals/{world['supervisor'].id}/unlink", json={})
    assert response.status_code == 403
    assert await CaseloadLink.filter(client=world["client"], professional=world["supervisor"]).exists()


async def test_supervisor_unlinks_themself(world, sign_in_as):
    http = await sign_in_as(world["supervisor"])
    response = await http.post(
        f"/api/v1/clients/{world['client'].id}/professionals/{world['supervisor'].id}/unlink", json={})
    assert response.status_code == 200
    assert not await CaseloadLink.filter(client=world["client"], professional=world["supervisor"]).exists()


# --- a client found outside the caseload --------------------------------------------------


async def test_self_link_with_the_motivation_of_the_search(world, sign_in_as):
    world["org"].link_policy = LinkPolicy.SELF_LINK
    await world["org"].save()
    http = await sign_in_as(world["colleague"])
    path = f"/api/v1/clients/{world['client'].id}/self-link"
    stale = await http.post(path, json={"search_id": 12345})
    assert stale.status_code == 403
    assert (await stale.get_json())["code"] == "outside_search_needed"
    response = await http.post(path, json={"search_id": await _search_id(http)})
    assert response.status_code == 201
    assert (await response.get_json())["kind"] == "treating"
    assert await CaseloadLink.filter(client=world["client"], professional=world["colleague"]).exists()
    row = await AuditEvent.get(action="caseload.self_link", outcome=Outcome.SUCCESS)
    assert row.reason == MOTIVATION


async def test_self_link_refused_under_another_policy(world, sign_in_as):
    http = await sign_in_as(world["colleague"])
    response = await http.post(f"/api/v1/clients/{world['client'].id}/self-link",
                               json={"search_id": await _search_id(http)})
    assert response.status_code == 403
    assert not await CaseloadLink.filter(client=world["client"], professional=world["colleague"]).exists()


async def test_search_id_expires_after_an_hour(world, sign_in_as, clock):
    http = await sign_in_as(world["colleague"])
    search_id = await _search_id(http)
    clock.advance(hours=2)
    response = await http.post(f"/api/v1/clients/{world['client'].id}/link-requests", json={"search_id": search_id})
    assert response.status_code == 403
    assert not await LinkRequest.exists()


async def test_a_search_id_covers_only_the_clients_that_search_found(world, sign_in_as):
    other = world["people"]["other client"]
    http = await sign_in_as(world["colleague"])
    search_id = await _search_id(http)  # finds Anaïs de Vries, not the other client
    response = await http.post(f"/api/v1/clients/{other.id}/link-requests", json={"search_id": search_id})
    assert response.status_code == 403
    assert (await response.get_json())["code"] == "not_found_by_search"
    assert not await LinkRequest.exists()
    refused = await AuditEvent.get(action="caseload.request_link", outcome=Outcome.REFUSED)
    assert (refused.event_type, refused.subject_id) == (AuditType.EMERGENCY_ACCESS, other.id)
    found = await http.post(f"/api/v1/clients/{world['client'].id}/link-requests", json={"search_id": search_id})
    assert found.status_code == 201


@pytest.mark.parametrize("accept", [True, False])
async def test_link_request_answered_by_the_client(svc, world, sign_in_as, accept):
    me = await sign_in_as(world["colleague"])
    response = await me.post(f"/api/v1/clients/{world['client'].id}/link-requests",
                             json={"search_id": await _search_id(me)})
    assert response.status_code == 201
    sent = await response.get_json()
    assert sent["status"] == "pending"
    assert await OutboxMessage.filter(kind="link_request", account_id=world["client"].id).exists()
    twice = await me.post(f"/api/v1/clients/{world['client'].id}/link-requests",
                          json={"search_id": await _search_id(me)})
    assert (await twice.get_json())["code"] == "link_request_pending"

    # Nobody but the client answers.
    for role in ("linked therapist", "other client", "secretary"):
        other = await sign_in_as(world["people"][role])
        refused = await other.post(f"/api/v1/link-requests/{sent['id']}/answer", json={"accept": True})
        assert refused.status_code == 403, role
    assert (await LinkRequest.get(id=sent["id"])).status is LinkRequestStatus.PENDING

    client = await sign_in_as(world["client"])
    mine = await (await client.get("/api/v1/me/link-requests")).get_json()
    assert [(r["id"], r["professional_name"]) for r in mine["items"]] == [(sent["id"], world["colleague"].name)]
    answer = await client.post(f"/api/v1/link-requests/{sent['id']}/answer", json={"accept": accept})
    assert answer.status_code == 200
    assert (await answer.get_json())["status"] == ("accepted" if accept else "rejected")
    assert await CaseloadLink.filter(client=world["client"], professional=world["colleague"]).exists() is accept
    assert await Task.filter(assignee=world["colleague"], kind=TaskKind.LINK_REQUEST_ANSWERED,
                             status=TaskStatus.OPEN).exists()
    assert await OutboxMessage.filter(kind="link_request_answered", account_id=world["colleague"].id).exists()
    late = await client.post(f"/api/v1/link-requests/{sent['id']}/answer", json={"accept": not accept})
    assert late.status_code == 409
    assert (await late.get_json())["code"] == "link_request_answered"
    assert (await (await client.get("/api/v1/me/link-requests")).get_json())["items"] == []


async def test_link_request_refused_under_read_only(world, sign_in_as):
    world["org"].link_policy = LinkPolicy.READ_ONLY
    await world["org"].save()
    http = await sign_in_as(world["colleague"])
    response = await http.post(f"/api/v1/clients/{world['client'].id}/link-requests",
                               json={"search_id": await _search_id(http)})
    assert response.status_code == 403
    assert await AuditEvent.filter(action="caseload.request_link", outcome=Outcome.REFUSED).exists()


async def test_link_request_expired(world, sign_in_as, clock):
    me = await sign_in_as(world["colleague"])
    sent = await (await me.post(f"/api/v1/clients/{world['client'].id}/link-requests",
                                json={"search_id": await _search_id(me)})).get_json()
    clock.advance(days=15)
    client = await sign_in_as(world["client"])
    response = await client.post(f"/api/v1/link-requests/{sent['id']}/answer", json={"accept": True})
    assert response.status_code == 409
    assert (await response.get_json())["code"] == "link_request_expired"


async def test_answers_need_a_client_and_an_existing_request(world, sign_in_as):
    client = await sign_in_as(world["client"])
    assert (await client.post("/api/v1/link-requests/999999/answer", json={"accept": True})).status_code == 404
    therapist = await sign_in_as(world["therapist"])
    assert (await therapist.get("/api/v1/me/link-requests")).status_code == 403
