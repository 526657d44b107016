"""Linking, link requests and unlinking: effect, audit, mail/event, refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.actions import (
    do_answer_link_request,
    do_link_professional,
    do_request_link,
    do_self_link,
    do_unlink_professional,
    expire_link_requests,
)
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy
from lotse.platform.permissions import Actor
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind
from tests.factories import link, make_account, make_client, make_org

MOTIVATION = "The client called about an existing account"


@pytest.fixture
async def world(svc):
    """An organisation with a client, a linked therapist, and colleagues in every role."""
    org = await make_org(svc, link_policy=LinkPolicy.READ_ONLY, search_outside_caseload=True)
    people = {role: await make_account(svc, org, role) for role in Role if role is not Role.CLIENT}
    client = await make_client(svc, org, first_name="Jörg", last_name="Müller")
    therapist = people[Role.THERAPIST]
    await link(svc, client, therapist)
    other = await make_account(svc, org, Role.THERAPIST, first_name="Ada", last_name="Visser")
    foreign_org = await make_org(svc)
    foreign_secretary = await make_account(svc, foreign_org, Role.SECRETARY)
    return {"org": org, "client": client, "therapist": therapist, "other": other, "people": people,
            "foreign_secretary": foreign_secretary}


async def test_linked_therapist_links_a_colleague(svc, world):
    async with svc.bus.subscribe("caseload.linked") as events:
        link_row = await do_link_professional(svc, Actor.of(world["therapist"]), world["client"], world["other"])
        _topic, payload = await anext(events)
    assert link_row.kind is LinkKind.TREATING
    assert payload == {"event": "caseload.linked", "client_id": world["client"].id,
                       "professional_id": world["other"].id, "kind": "treating"}
    row = await AuditEvent.filter(action="caseload.link").get()
    assert (row.event_type, row.subject_id, row.details["professional_id"]) == (
        AuditType.UPDATE, world["client"].id, world["other"].id)
    assert row.client_pseudonym == world["client"].pseudonym


async def test_secretary_links_a_supervisor_read_only(svc, world):
    supervisor = world["people"][Role.SUPERVISOR]
    link_row = await do_link_professional(svc, Actor.of(world["people"][Role.SECRETARY]), world["client"], supervisor)
    assert link_row.kind is LinkKind.SUPERVISING


async def test_a_therapist_can_be_linked_as_supervisor(svc, world):
    link_row = await do_link_professional(svc, Actor.of(world["therapist"]), world["client"], world["other"],
                                          LinkKind.SUPERVISING)
    assert link_row.kind is LinkKind.SUPERVISING


@pytest.mark.parametrize("who", ["unlinked therapist", "linked supervisor", "app_admin", "client", "foreign secretary",
                                 "content_editor"])
async def test_link_refused(svc, world, who):
    supervisor = world["people"][Role.SUPERVISOR]
    await link(svc, world["client"], supervisor, LinkKind.SUPERVISING)
    actor = {
        "unlinked therapist": world["other"],
        "linked supervisor": supervisor,
        "app_admin": world["people"][Role.APP_ADMIN],
        "client": world["client"],
        "foreign secretary": world["foreign_secretary"],
        "content_editor": world["people"][Role.CONTENT_EDITOR],
    }[who]
    target = await make_account(svc, world["org"], Role.THERAPIST)
    with pytest.raises(NotPermittedError):
        await do_link_professional(svc, Actor.of(actor), world["client"], target)
    assert not await CaseloadLink.filter(professional_id=target.id).exists()
    assert await AuditEvent.filter(action="caseload.link", outcome=Outcome.REFUSED).count() == 1


async def test_linking_twice_or_linking_a_secretary_is_refused(svc, world):
    with pytest.raises(ConflictError) as caught:
        await do_link_professional(svc, Actor.of(world["therapist"]), world["client"], world["therapist"])
    assert caught.value.code == "already_linked"
    with pytest.raises(ValidationError):
        await do_link_professional(svc, Actor.of(world["therapist"]), world["client"], world["people"][Role.SECRETARY])


async def test_self_link_under_policy_is_audited_with_motivation(svc, world):
    await world["org"].filter(id=world["org"].id).update(link_policy=LinkPolicy.SELF_LINK)
    link_row = await do_self_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)
    assert link_row.professional_id == world["other"].id
    row = await AuditEvent.filter(action="caseload.self_link").get()
    assert (row.reason, row.subject_id, row.outcome) == (MOTIVATION, world["client"].id, Outcome.SUCCESS)


async def test_self_link_needs_a_motivation(svc, world):
    await world["org"].filter(id=world["org"].id).update(link_policy=LinkPolicy.SELF_LINK)
    with pytest.raises(ValidationError) as caught:
        await do_self_link(svc, Actor.of(world["other"]), world["client"], "because")
    assert "motivation" in caught.value.fields


async def test_a_self_link_motivation_naming_the_client_is_refused(svc, world):
    await world["org"].filter(id=world["org"].id).update(link_policy=LinkPolicy.SELF_LINK)
    for motivation in ("Herr Müller rief heute an", f"Address {world['client'].email} is taken"):
        with pytest.raises(ValidationError) as caught:
            await do_self_link(svc, Actor.of(world["other"]), world["client"], motivation)
        assert "motivation" in caught.value.fields
    assert not await CaseloadLink.filter(professional_id=world["other"].id).exists()


async def test_link_and_unlink_audit_rows_hold_ids_not_names(svc, world):
    await _consent_world(world)
    await do_link_professional(svc, Actor.of(world["therapist"]), world["client"], world["other"])
    await do_unlink_professional(svc, Actor.of(world["therapist"]), world["client"], world["other"])
    newcomer = await make_account(svc, world["org"], Role.THERAPIST, first_name="Nina", last_name="Nieuw")
    request = await do_request_link(svc, Actor.of(newcomer), world["client"], MOTIVATION)
    await do_answer_link_request(svc, Actor.of(world["client"]), request, accept=True)
    rows = await AuditEvent.filter(action__startswith="caseload.").all()
    assert {row.action for row in rows} >= {"caseload.link", "caseload.unlink", "caseload.request_link",
                                            "caseload.link_request_accept"}
    for row in rows:
        text = repr(row.details) + row.reason
        for person in (world["other"], newcomer, world["client"], world["therapist"]):
            assert person.last_name not in text, (row.action, row.details)
            assert person.email not in text, (row.action, row.details)


@pytest.mark.parametrize("policy", [LinkPolicy.READ_ONLY, LinkPolicy.CLIENT_CONSENT])
async def test_self_link_refused_under_other_policies(svc, world, policy):
    await world["org"].filter(id=world["org"].id).update(link_policy=policy)
    with pytest.raises(NotPermittedError):
        await do_self_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)


async def _consent_world(world):
    await world["org"].filter(id=world["org"].id).update(link_policy=LinkPolicy.CLIENT_CONSENT)


async def test_link_request_mails_the_client_and_gives_a_task(svc, world):
    await _consent_world(world)
    request = await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)
    assert request.status is LinkRequestStatus.PENDING
    assert request.expires_at == svc.now() + timedelta(days=14)
    mail = await OutboxMessage.filter(kind="link_request").get()
    assert mail.recipient == world["client"].email
    assert "Ada Visser" in mail.body_text
    assert "/me/requests" in mail.body_text
    task = await Task.filter(kind=TaskKind.LINK_REQUEST).get()
    assert (task.assignee_id, task.client_id, task.status) == (world["client"].id, world["client"].id, TaskStatus.OPEN)
    assert await AuditEvent.filter(action="caseload.request_link", event_type=AuditType.CREATE).exists()
    with pytest.raises(ConflictError) as caught:
        await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)
    assert caught.value.code == "link_request_pending"


@pytest.mark.parametrize("policy", [LinkPolicy.READ_ONLY, LinkPolicy.SELF_LINK])
async def test_link_request_refused_under_other_policies(svc, world, policy):
    await world["org"].filter(id=world["org"].id).update(link_policy=policy)
    with pytest.raises(NotPermittedError):
        await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)


@pytest.mark.parametrize("accept", [True, False])
async def test_client_answers_link_request(svc, world, accept):
    await _consent_world(world)
    request = await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)
    answered = await do_answer_link_request(svc, Actor.of(world["client"]), request, accept=accept)
    assert answered.status is (LinkRequestStatus.ACCEPTED if accept else LinkRequestStatus.REJECTED)
    linked = await CaseloadLink.filter(client_id=world["client"].id, professional_id=world["other"].id).exists()
    assert linked is accept
    client_task = await Task.filter(kind=TaskKind.LINK_REQUEST).get()
    assert client_task.status is TaskStatus.DONE
    answer_task = await Task.filter(kind=TaskKind.LINK_REQUEST_ANSWERED).get()
    assert (answer_task.assignee_id, answer_task.data["answer"]) == (
        world["other"].id, "accepted" if accept else "rejected")
    mail = await OutboxMessage.filter(kind="link_request_answered").get()
    assert mail.recipient == world["other"].email
    # In the professional's language (the organisation's default, Dutch).
    assert ("geaccepteerd" if accept else "geweigerd") in mail.subject
    action = "caseload.link_request_accept" if accept else "caseload.link_request_reject"
    assert await AuditEvent.filter(action=action, actor_id=world["client"].id).exists()
    with pytest.raises(ConflictError):
        await do_answer_link_request(svc, Actor.of(world["client"]), request, accept=True)


async def test_only_the_client_answers_a_link_request(svc, world):
    await _consent_world(world)
    request = await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)
    other_client = await make_client(svc, world["org"])
    for intruder in (world["other"], other_client, world["people"][Role.SECRETARY]):
        with pytest.raises(NotPermittedError):
            await do_answer_link_request(svc, Actor.of(intruder), request, accept=True)
    assert (await LinkRequest.get(id=request.id)).status is LinkRequestStatus.PENDING


async def test_link_request_expires_after_14_days(svc, world, clock):
    await _consent_world(world)
    request = await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)
    clock.advance(days=13, hours=23)
    assert await expire_link_requests(svc) == 0
    clock.advance(hours=1)
    with pytest.raises(ConflictError) as caught:
        await do_answer_link_request(svc, Actor.of(world["client"]), request, accept=True)
    assert caught.value.code == "link_request_expired"
    assert await expire_link_requests(svc) == 1
    assert await expire_link_requests(svc) == 0
    assert (await LinkRequest.get(id=request.id)).status is LinkRequestStatus.EXPIRED
    assert (await Task.filter(kind=TaskKind.LINK_REQUEST).get()).status is TaskStatus.CANCELLED
    expired = await Task.filter(kind=TaskKind.LINK_REQUEST_EXPIRED).get()
    assert expired.assignee_id == world["other"].id
    assert not await CaseloadLink.filter(professional_id=world["other"].id).exists()
    # A new request can be sent once the old one expired.
    await do_request_link(svc, Actor.of(world["other"]), world["client"], MOTIVATION)


async def _tools(svc, world, n=2):
    assignments = []
    for i in range(n):
        tool = await Tool.create(organisation=world["org"], kind=ToolKind.MODULE, title=f"Module {i}", steps=4,
                                 created_at=svc.now())
        assignments.append(await ToolAssignment.create(tool=tool, client=world["client"],
                                                       supervisor=world["therapist"], assigned_at=svc.now(),
                                                       updated_at=svc.now()))
    return assignments


async def test_unlink_yourself_handing_over_the_tools(svc, world):
    await link(svc, world["client"], world["other"])
    await _tools(svc, world)
    moved = await do_unlink_professional(svc, Actor.of(world["therapist"]), world["client"], world["therapist"],
                                         hand_over_to=world["other"])
    assert moved == 2
    assert not await CaseloadLink.filter(professional_id=world["therapist"].id).exists()
    assert set(await ToolAssignment.all().values_list("supervisor_id", flat=True)) == {world["other"].id}
    row = await AuditEvent.filter(action="caseload.unlink").get()
    assert (row.details["handed_to_id"], row.details["tools"]) == (world["other"].id, 2)


async def test_unlink_the_tools_leaves_the_client_access_without_contact(svc, world):
    await _tools(svc, world)
    async with svc.bus.subscribe("caseload.unlinked") as events:
        await do_unlink_professional(svc, Actor.of(world["people"][Role.SECRETARY]), world["client"],
                                     world["therapist"], unlink_tools=True)
        _topic, payload = await anext(events)
    assert payload["tools_unlinked"] == 2
    assignments = await ToolAssignment.all()
    assert [a.supervisor_id for a in assignments] == [None, None]
    assert all(a.archived_at is None for a in assignments)


async def test_unlinking_the_last_therapist_with_supervised_tools_is_refused(svc, world):
    await _tools(svc, world)
    with pytest.raises(ConflictError) as caught:
        await do_unlink_professional(svc, Actor.of(world["therapist"]), world["client"], world["therapist"])
    assert caught.value.code == "tools_need_supervisor"
    assert await CaseloadLink.filter(professional_id=world["therapist"].id).exists()
    assert set(await ToolAssignment.all().values_list("supervisor_id", flat=True)) == {world["therapist"].id}


async def test_hand_over_only_to_a_linked_therapist(svc, world):
    await _tools(svc, world)
    supervisor = world["people"][Role.SUPERVISOR]
    await link(svc, world["client"], supervisor, LinkKind.SUPERVISING)
    for successor in (world["other"], supervisor):
        with pytest.raises(ValidationError):
            await do_unlink_professional(svc, Actor.of(world["therapist"]), world["client"], world["therapist"],
                                         hand_over_to=successor)


async def test_supervisor_may_unlink_only_themself(svc, world):
    supervisor = world["people"][Role.SUPERVISOR]
    await link(svc, world["client"], supervisor, LinkKind.SUPERVISING)
    with pytest.raises(NotPermittedError):
        await do_unlink_professional(svc, Actor.of(supervisor), world["client"], world["therapist"])
    await do_unlink_professional(svc, Actor.of(supervisor), world["client"], supervisor)
    assert not await CaseloadLink.filter(professional_id=supervisor.id).exists()
