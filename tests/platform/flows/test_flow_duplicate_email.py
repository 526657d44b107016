"""duplicate-email against the real platform: each link policy, the secretary and the application admins."""

from __future__ import annotations

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services
from lotse.platform.audit.models import AuditEvent, AuditType
from lotse.platform.caseload.models import LinkRequest, LinkRequestStatus
from lotse.platform.conversations.models import ChatMessage, ChatParticipant, Conversation
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy
from lotse.platform.permissions import Actor
from lotse.platform.tasks.models import Task, TaskKind
from tests.factories import link, make_account, make_client, make_org
from tests.platform.flows.conftest import FlowDriver

MOTIVATION = "Nieuwe aanmelding, eerste afspraak volgende week."


async def test_dutch_therapist_sends_a_link_request_that_reaches_the_client(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc, search_outside_caseload=True, link_policy=LinkPolicy.CLIENT_CONSENT)
    therapist = await make_account(svc, org, locale="nl")
    colleague = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, colleague)
    walk = await driver.run(Actor.of(therapist), "duplicate-email", {"email": client.email}, [
        ("search-own", "confirm"),
        ("outside-motivation", {"motivation": MOTIVATION}),
        ("search-outside", "confirm"),
        ("request-link", "confirm"),
    ], locale="nl")
    assert walk.outcome == "resolved"
    assert "Het verzoek is onderweg" in walk.view.text
    request = await LinkRequest.get(client_id=client.id, professional_id=therapist.id)
    assert request.status is LinkRequestStatus.PENDING
    assert request.motivation == MOTIVATION
    task = await Task.get(client_id=client.id, kind=TaskKind.LINK_REQUEST)
    assert task.assignee_id == client.id  # type: ignore[attr-defined]
    assert await OutboxMessage.filter(recipient=client.email, kind="link_request").exists()
    search = await AuditEvent.get(action="caseload.search_outside", actor_id=therapist.id)
    assert search.event_type is AuditType.EMERGENCY_ACCESS
    assert MOTIVATION in search.reason  # the motivation is logged for the application admins


async def test_read_only_policy_asks_the_linked_professional_in_a_conversation(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc, search_outside_caseload=True, link_policy=LinkPolicy.READ_ONLY)
    therapist = await make_account(svc, org)
    colleague = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, colleague)
    walk = await driver.run(Actor.of(therapist), "duplicate-email", {"email": client.email}, [
        ("search-own", "confirm"),
        ("outside-motivation", {"motivation": MOTIVATION}),
        ("search-outside", "confirm"),
        ("read-only", "linked-professional"),
        ("write-note", {"note": "Please link me, I take over the treatment."}),
        ("ask-linked-professional", "confirm"),
    ])
    assert walk.outcome == "escalated"
    conversation = await Conversation.get(manager_id=therapist.id)
    members = await ChatParticipant.filter(conversation=conversation).values_list("account_id", flat=True)
    assert sorted(members) == sorted([therapist.id, colleague.id])
    message = await ChatMessage.get(conversation=conversation)
    assert message.body == f"{client.email}: Please link me, I take over the treatment."


async def test_without_outside_search_a_secretary_is_asked(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    secretary = await make_account(svc, org, Role.SECRETARY)
    client = await make_client(svc, org)
    walk = await driver.run(Actor.of(therapist), "duplicate-email", {"email": client.email}, [
        ("search-own", "confirm"),
        ("no-outside-search", "secretary"),
        ("write-note", {"note": "Please find this client and link me."}),
        ("ask-secretary", "confirm"),
    ])
    assert walk.outcome == "escalated"
    conversation = await Conversation.get(manager_id=therapist.id)
    members = await ChatParticipant.filter(conversation=conversation).values_list("account_id", flat=True)
    assert sorted(members) == sorted([therapist.id, secretary.id])
    message = await ChatMessage.get(conversation=conversation)
    assert message.body == f"{client.email}: Please find this client and link me."


async def test_deactivated_client_in_the_caseload_is_reactivated(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org, status=AccountStatus.DEACTIVATED)
    await link(svc, client, therapist)
    walk = await driver.run(Actor.of(therapist), "duplicate-email", {"email": client.email}, [
        ("search-own", "confirm"),
        ("found-own-inactive", "reactivate"),
        ("reactivate", "confirm"),
    ])
    assert walk.outcome == "resolved"
    assert (await Account.get(id=client.id)).is_active


async def test_address_of_a_professional_goes_to_the_application_admins(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    colleague = await make_account(svc, org)  # the address belongs to a professional, not a client
    walk = await driver.run(Actor.of(secretary), "duplicate-email", {"email": colleague.email}, [
        ("search-own", "confirm"),
        ("ask-admins", {"note": "A new client gave this address."}),
        ("task-admins", "confirm"),
    ])
    assert walk.outcome == "escalated"
    task = await Task.get(assignee_role=Role.APP_ADMIN, organisation_id=org.id)
    assert task.note == f"{colleague.email}: A new client gave this address."


async def test_a_free_address_ends_at_once(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    walk = await driver.start(Actor.of(therapist), "duplicate-email", {"email": "free@example.org"})
    assert walk.outcome == "resolved"
    assert walk.view.step == "address-free"
