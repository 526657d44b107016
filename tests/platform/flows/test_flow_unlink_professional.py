"""unlink-professional against the real platform: hand-over, the tools_need_supervisor refusal, linking a successor."""

from __future__ import annotations

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.help.adapters import account_ref
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind
from tests.factories import link, make_account, make_client, make_org
from tests.platform.flows.conftest import FlowDriver


async def _tool(svc: Services, org: Organisation, client: Account, supervisor: Account) -> ToolAssignment:
    tool = await Tool.create(organisation=org, kind=ToolKind.MODULE, title="Sleeping better", created_at=svc.now())
    return await ToolAssignment.create(tool=tool, client=client, supervisor=supervisor, assigned_at=svc.now(),
                                       updated_at=svc.now())


async def _linked(client: Account, professional: Account) -> bool:
    return await CaseloadLink.filter(client_id=client.id, professional_id=professional.id).exists()


async def test_therapist_unlinks_themself_and_hands_the_tools_over(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    leaving, staying = await make_account(svc, org), await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, leaving)
    await link(svc, client, staying)
    assignment = await _tool(svc, org, client, leaving)
    inputs = {"client": account_ref(client), "professional": account_ref(leaving), "successor": account_ref(staying)}
    walk = await driver.run(Actor.of(leaving), "unlink-professional", inputs, [
        ("tools", "hand-over"),
        ("hand-over", "confirm"),
    ])
    assert walk.outcome == "resolved"
    assert not await _linked(client, leaving)
    assert (await ToolAssignment.get(id=assignment.id)).supervisor_id == staying.id  # type: ignore[attr-defined]


async def test_the_refusal_tools_need_supervisor_leads_to_a_choice_and_the_tools_are_unlinked(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    assignment = await _tool(svc, org, client, therapist)
    inputs = {"client": account_ref(client), "professional": account_ref(therapist)}
    walk = await driver.run(Actor.of(therapist), "unlink-professional", inputs, [
        ("tools", "no-tools"),  # a wrong answer: the platform refuses with tools_need_supervisor
        ("unlink", "confirm"),
        ("still-guides-tools", "unlink-tools"),
        ("unlink-tools", "confirm"),
    ])
    assert walk.steps == ["before-unlinking", "tools", "unlink", "still-guides-tools", "unlink-tools"]
    assert walk.outcome == "resolved"
    assert not await _linked(client, therapist)
    fresh = await ToolAssignment.get(id=assignment.id)
    assert fresh.supervisor_id is None  # type: ignore[attr-defined]
    assert fresh.archived_at is None  # the client keeps the tool


async def test_a_successor_who_is_not_linked_is_linked_first(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    leaving, successor = await make_account(svc, org), await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, leaving)
    assignment = await _tool(svc, org, client, leaving)
    inputs = {"client": account_ref(client), "professional": account_ref(leaving), "successor": account_ref(successor)}
    walk = await driver.run(Actor.of(leaving), "unlink-professional", inputs, [
        ("tools", "hand-over"),
        ("hand-over", "confirm"),
        ("successor-not-linked", "link"),
        ("link-successor", "confirm"),
        ("hand-over-now", "confirm"),
    ])
    assert walk.outcome == "resolved"
    assert await _linked(client, successor)
    assert not await _linked(client, leaving)
    assert (await ToolAssignment.get(id=assignment.id)).supervisor_id == successor.id  # type: ignore[attr-defined]


async def test_secretary_unlinks_a_colleague_without_tools_answered_from_platform_data(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    walk = await driver.start(Actor.of(secretary), "unlink-professional",
                              {"client": account_ref(client), "professional": account_ref(therapist)})
    assert walk.view.step == "unlink"  # "no tools" came from the platform
    walk = await driver.answer(Actor.of(secretary), walk, [("unlink", "confirm")])
    assert walk.outcome == "resolved"
    assert not await _linked(client, therapist)


async def test_a_therapist_who_is_not_linked_may_not_unlink_a_colleague(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    outsider, therapist = await make_account(svc, org), await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    walk = await driver.run(Actor.of(outsider), "unlink-professional",
                            {"client": account_ref(client), "professional": account_ref(therapist)}, [
        ("tools", "no-tools"),
        ("unlink", "confirm"),
    ])
    assert walk.outcome == "escalated"
    assert walk.view.step == "ask-permitted"
    assert await _linked(client, therapist)
