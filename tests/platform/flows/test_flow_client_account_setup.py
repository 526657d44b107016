"""client-account-setup against the real platform: welcome mail, address corrections, the duplicate hand-over."""

from __future__ import annotations

from lotse.platform.accounts.models import Account
from lotse.platform.actions import Services
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.help.adapters import account_ref
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy
from lotse.platform.permissions import Actor
from tests.factories import link, make_account, make_client, make_org
from tests.platform.flows.conftest import FlowDriver


async def test_wrong_address_is_corrected_and_the_welcome_mail_goes_to_the_new_one(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org, email="sam@exmaple.org", password=None)
    await link(svc, client, therapist)
    walk = await driver.run(Actor.of(therapist), "client-account-setup", {"client": account_ref(client)}, [
        ("what-is-needed", "no-welcome-mail"),
        ("check-address", "wrong"),
        ("new-address", {"email": "sam@example.org"}),
        ("update-email", "confirm"),
        ("resend-welcome", "confirm"),
    ])
    assert walk.outcome == "resolved"
    assert "sam@example.org" in walk.view.text
    assert (await Account.get(id=client.id)).email == "sam@example.org"
    assert await OutboxMessage.filter(recipient="sam@example.org", kind="welcome").count() == 1
    assert not await OutboxMessage.filter(recipient="sam@exmaple.org").exists()


async def test_client_found_by_address_gets_a_new_welcome_mail(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org, password=None)
    await link(svc, client, therapist)
    walk = await driver.run(Actor.of(therapist), "client-account-setup", {}, [
        ("what-is-needed", "no-welcome-mail"),
        ("welcome-find", {"email": client.email}),
        ("check-address", "right"),
        ("spam-folder", "not-found"),
        ("resend-welcome", "confirm"),
    ])
    assert walk.outcome == "resolved"
    assert await OutboxMessage.filter(recipient=client.email, kind="welcome").count() == 1


async def test_address_of_a_coupled_account_is_changed_in_the_record_system(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org, externally_managed=True, external_ref="EPD-1")
    await link(svc, client, therapist)
    walk = await driver.run(Actor.of(therapist), "client-account-setup", {"client": account_ref(client)}, [
        ("what-is-needed", "no-welcome-mail"),
        ("check-address", "wrong"),
    ])
    assert walk.outcome == "escalated"
    assert walk.view.step == "change-in-record-system"


async def test_a_taken_address_is_handed_to_duplicate_email_and_the_therapist_links_themself(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc, search_outside_caseload=True, link_policy=LinkPolicy.SELF_LINK)
    therapist = await make_account(svc, org)
    colleague = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, colleague)
    walk = await driver.run(Actor.of(therapist), "client-account-setup", {}, [
        ("what-is-needed", "details"),
        ("how-to-create", "email-taken"),
        ("which-address", {"email": client.email}),
        ("search-own", "confirm"),  # duplicate-email, as a sub-flow
        ("outside-motivation", {"motivation": "New referral, first appointment next week."}),
        ("search-outside", "confirm"),
        ("link-self", "confirm"),
    ])
    assert walk.outcome == "resolved"
    assert walk.view.step == "duplicate-solved"
    assert await CaseloadLink.filter(client_id=client.id, professional_id=therapist.id).exists()
