"""video-call-readiness against the real platform: an application admin gets a therapist and a client ready."""

from __future__ import annotations

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services
from lotse.platform.audit.models import AuditEvent, Outcome
from lotse.platform.help.adapters import account_ref
from lotse.platform.help.models import SessionStatus
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import TwoFactorRule
from lotse.platform.permissions import Actor
from lotse.platform.tasks.models import Task
from tests.factories import make_account, make_client, make_org
from tests.platform.flows.conftest import FlowDriver


async def test_german_admin_reactivates_a_deactivated_therapist_and_hands_the_client_to_the_therapist(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc, default_language="de")
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    client = await make_client(svc, org)
    actor = Actor.of(admin)
    walk = await driver.start(actor, "video-call-readiness",
                              {"therapist": account_ref(therapist), "client": account_ref(client)}, locale="de")
    # The account state was read from the platform: the checklist goes straight to reactivation.
    assert walk.view.step == "reactivate"
    assert "reaktivieren" in walk.view.confirm
    walk = await driver.answer(actor, walk, [
        ("reactivate", "confirm"),
        ("therapist-login", "yes"),
        ("client-access", "therapist-creates"),
        ("message-therapist", {"note": "Bitte legen Sie das Konto bis Freitag an."}),
        ("task-therapist", "confirm"),
        ("client-login", "yes"),
    ])
    assert walk.outcome == "resolved"
    assert walk.view.step == "ready"
    assert "bereit für das" in walk.view.text  # German text from flows.po

    assert (await Account.get(id=therapist.id)).status is AccountStatus.ACTIVE
    row = await AuditEvent.filter(action="account.reactivate", subject_id=therapist.id).first()
    assert row is not None
    assert row.outcome is Outcome.SUCCESS
    assert row.via == "flow"
    assert row.reason == f"help session {walk.session.id}"
    task = await Task.get(assignee_id=therapist.id)
    assert task.note == "Bitte legen Sie das Konto bis Freitag an."
    assert task.client_id == client.id  # type: ignore[attr-defined]
    assert task.data["flow"] == "video-call-readiness"
    await walk.session.refresh_from_db()
    assert walk.session.status is SessionStatus.FINISHED
    assert walk.session.outcome == "resolved"


async def test_dormant_therapist_gets_a_new_welcome_mail_and_the_secretaries_a_task(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, last_login_at=None)  # never signed in: dormant
    walk = await driver.run(Actor.of(admin), "video-call-readiness", {"therapist": account_ref(therapist)}, [
        ("resend-welcome", "confirm"),
        ("therapist-login", "yes"),
        ("client-access", "secretary-creates"),
        ("message-secretary", {"note": "New client for the video pilot."}),
        ("task-secretary", "confirm"),
        ("client-login", "yes"),
    ])
    assert walk.outcome == "resolved"
    mail = await OutboxMessage.get(recipient=therapist.email, kind="welcome")
    assert mail.account_id == therapist.id
    task = await Task.get(assignee_role=Role.SECRETARY, organisation_id=org.id)
    assert task.note == "New client for the video pilot."


async def test_therapist_who_lost_the_second_factor_is_reset_through_login_help(
    svc: Services, driver: FlowDriver
) -> None:
    org = await make_org(svc, two_factor=TwoFactorRule.REQUIRED)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, last_login_at=svc.now(), totp_secret="A" * 32,
                                   totp_enabled_at=svc.now())
    walk = await driver.start(Actor.of(admin), "video-call-readiness", {"therapist": account_ref(therapist)})
    assert walk.view.step == "therapist-login"  # "recent" was answered from platform data
    walk = await driver.answer(Actor.of(admin), walk, [
        ("therapist-login", "no"),
        ("what-happens", "second-step"),  # inside login-help; the two-factor note was shown first
        ("second-step", "no-codes"),
        ("reset-two-factor", "confirm"),
        ("try-again", "yes"),
        ("client-access", "self-registration"),
        ("message-therapist", {"note": "Tell the client where to register."}),
        ("task-therapist", "cancel"),
        ("client-login", "yes"),
    ])
    assert "two-factor-note" in walk.steps
    assert walk.outcome == "resolved"
    fresh = await Account.get(id=therapist.id)
    assert fresh.totp_secret is None
    assert fresh.totp_enabled_at is None
    assert await OutboxMessage.filter(recipient=therapist.email, kind="two_factor_reset").exists()
    assert not await Task.filter(assignee_id=therapist.id).exists()  # cancelled: passed on by hand
