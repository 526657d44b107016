"""login-help against the real platform: signed out (safe actions only) and as a helping professional."""

from __future__ import annotations

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services
from lotse.platform.audit.models import AuditEvent, Outcome
from lotse.platform.help.adapters import account_ref
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.permissions import Actor
from tests.factories import link, make_account, make_client, make_org
from tests.platform.flows.conftest import FlowDriver


async def test_signed_out_person_gets_a_reset_mail_and_an_unknown_address_looks_the_same(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    client = await make_client(svc, org)
    walks = []
    for number, email in enumerate((client.email, "nobody@example.org")):
        walk = await driver.run(Actor.anonymous("127.0.0.1"), "login-help", {}, [
            ("what-happens", "forgot-password"),
            ("reset-ask-email", {"email": email}),
            ("reset-typed-email", "confirm"),
            ("try-again", "yes"),
        ], locale="nl", anonymous_key=f"browser-{number}")
        walks.append(walk)
    known, unknown = walks
    assert known.outcome == unknown.outcome == "resolved"
    assert known.steps == unknown.steps
    assert "reset-sent" in known.steps
    # Nothing in what the person saw tells whether the address exists.
    assert [e.data.get("result") for e in known.state.transcript if e.kind == "action"] == [{"requested": True}]
    assert [e.data.get("result") for e in unknown.state.transcript if e.kind == "action"] == [{"requested": True}]
    assert "Fijn dat inloggen weer lukt." in known.view.text  # Dutch text from flows.po
    mails = await OutboxMessage.filter(kind="password_reset")
    assert [m.recipient for m in mails] == [client.email]


async def test_signed_out_blocked_person_gets_an_unblock_link(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    client = await make_client(svc, org, blocked_at=svc.now(), failed_logins=5)
    walk = await driver.run(Actor.anonymous("127.0.0.1"), "login-help", {}, [
        ("what-happens", "blocked"),
        ("unblock-ask-email", {"email": client.email}),
        ("unblock-typed-email", "confirm"),
        ("try-again", "yes"),
    ], locale="de", anonymous_key="browser")
    assert walk.outcome == "resolved"
    assert await OutboxMessage.filter(recipient=client.email, kind="account_blocked").count() == 1
    assert (await Account.get(id=client.id)).blocked_at is not None  # lifted only when the link is used


async def test_signed_out_person_cannot_reactivate_and_is_told_whom_to_ask(
    svc: Services, driver: FlowDriver
) -> None:
    walk = await driver.run(Actor.anonymous("127.0.0.1"), "login-help", {}, [
        ("what-happens", "deactivated"),
    ], locale="nl", anonymous_key="browser")
    assert walk.outcome == "escalated"
    assert walk.steps == ["what-happens", "deactivated"]


async def test_therapist_sends_a_client_with_an_expired_invitation_a_new_welcome_mail(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org, password=None)  # no password, no valid welcome link
    await link(svc, client, therapist)
    actor = Actor.of(therapist)
    walk = await driver.start(actor, "login-help", {"person": account_ref(client)})
    assert walk.view.step == "resend-welcome"  # "invite_expired" was read from the platform
    walk = await driver.answer(actor, walk, [("resend-welcome", "confirm"), ("try-again", "yes")])
    assert walk.outcome == "resolved"
    assert await OutboxMessage.filter(recipient=client.email, kind="welcome").count() == 1


async def test_secretary_lifts_the_block_of_a_client(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    client = await make_client(svc, org, blocked_at=svc.now(), failed_logins=5)
    walk = await driver.run(Actor.of(secretary), "login-help", {"person": account_ref(client)}, [
        ("unblock-person", "confirm"),
        ("try-again", "yes"),
    ])
    assert walk.outcome == "resolved"
    fresh = await Account.get(id=client.id)
    assert fresh.blocked_at is None
    assert fresh.failed_logins == 0


async def test_admin_reactivates_a_colleague(svc: Services, driver: FlowDriver) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    colleague = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    walk = await driver.run(Actor.of(admin), "login-help", {"person": account_ref(colleague)}, [
        ("reactivate", "confirm"), ("try-again", "yes"),
    ])
    assert walk.outcome == "resolved"
    assert (await Account.get(id=colleague.id)).is_active


async def test_therapist_may_not_reactivate_a_colleague_the_flow_takes_its_error_branch(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    colleague = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    walk = await driver.run(Actor.of(therapist), "login-help", {"person": account_ref(colleague)}, [
        ("what-happens", "deactivated"),
        ("reactivate", "confirm"),
    ])
    assert walk.outcome == "escalated"
    assert walk.view.step == "deactivated-ask"
    assert not (await Account.get(id=colleague.id)).is_active
    refusal = await AuditEvent.get(action="account.reactivate", subject_id=colleague.id)
    assert refusal.outcome is Outcome.REFUSED
    assert refusal.reason == f"help session {walk.session.id}"
