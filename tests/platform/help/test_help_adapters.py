"""Each catalogue action runs the real platform action (effect, audit row naming the help session);
facts answer from real data within what the person may see; idempotency keys hold."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

import pytest

from lotse.engine.checks import check_paths
from lotse.platform.accounts.models import Account, AccountStatus, Role, Token, TokenPurpose
from lotse.platform.actions import Services
from lotse.platform.audit.models import AuditEvent, Outcome
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest
from lotse.platform.help.actions import flow_repository
from lotse.platform.help.adapters import HANDLERS, PlatformActions, PlatformFacts, account_ref
from lotse.platform.help.catalogue import platform_catalogue
from lotse.platform.help.models import ActionRun, HelpSession
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy, Organisation, TwoFactorRule
from lotse.platform.permissions import Actor
from lotse.platform.tasks.models import Task
from tests.factories import link, make_account, make_client, make_org


async def _session(svc: Services, owner: Account | None, flow_id: str = "reactivate-therapist") -> HelpSession:
    repo = flow_repository(svc)
    flow = repo.published_flow(flow_id)
    assert flow is not None
    version = await repo.pin(flow, svc.now())
    return await HelpSession.create(public_id=secrets.token_urlsafe(16),
                                    flow_id=flow_id, flow_version=version, version=1,
                                    account=owner, started_at=svc.now(), updated_at=svc.now())


async def _run(svc: Services, account: Account | None, name: str, args: dict[str, Any], key: str = "k:0:s:0"
               ) -> tuple[Any, HelpSession]:
    session = await _session(svc, account)
    who = Actor.of(account) if account is not None else Actor.anonymous("127.0.0.1")
    executor = PlatformActions(svc, who, session.id, session.flow_id, "de")
    result = await executor.run_action(name, args, idempotency_key=f"{session.id}:{key}")
    return result, session


async def _audit(action: str) -> AuditEvent:
    row = await AuditEvent.filter(action=action).order_by("-id").first()
    assert row is not None, action
    return row


def test_catalogue_is_complete_and_runnable() -> None:
    catalogue = platform_catalogue()
    names = {spec.name for spec in catalogue.actions()}
    assert names == set(HANDLERS)
    for required in ("account.reactivate", "account.resend_welcome_mail", "account.send_password_reset",
                     "account.unblock", "account.reset_two_factor", "account.create_client", "account.update_email",
                     "caseload.search", "caseload.link_professional", "caseload.link_self", "caseload.request_link",
                     "caseload.unlink_professional", "tasks.create"):
        assert required in names
    facts = {spec.name for spec in catalogue.facts()}
    assert {"account.state", "account.two_factor", "account.externally_managed", "caseload.is_linked",
            "caseload.linked_professionals", "org.settings", "account.find_by_email"} <= facts


def test_test_flows_pass_the_checks_against_the_catalogue(settings: Any) -> None:
    results = check_paths([settings.flows_dir], catalogue=platform_catalogue(), flows_dir=settings.flows_dir,
                          locales_dir=None)
    assert all(not problems for problems in results.values()), results


async def test_reactivate_runs_the_real_action_and_names_the_session(svc: Services) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    result, session = await _run(svc, admin, "account.reactivate", {"account": account_ref(therapist)})
    assert result.ok, result
    assert (await Account.get(id=therapist.id)).status is AccountStatus.ACTIVE
    row = await _audit("account.reactivate")
    assert row.via == "flow"
    assert row.reason == f"help session {session.id}"
    assert row.subject_id == therapist.id


async def test_resend_welcome_mail_queues_the_mail(svc: Services) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, password=None)
    result, session = await _run(svc, admin, "account.resend_welcome_mail", {"account": therapist.id})
    assert result.ok
    assert result.value["sent_to"] == therapist.email
    assert await OutboxMessage.filter(recipient=therapist.email, kind="welcome").exists()
    assert (await _audit("account.resend_welcome")).reason == f"help session {session.id}"


async def test_send_password_reset_by_address_never_tells(svc: Services) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    known, _ = await _run(svc, None, "account.send_password_reset", {"email": therapist.email})
    unknown, _ = await _run(svc, None, "account.send_password_reset", {"email": "nobody@example.org"}, key="k:0:t:0")
    assert known.value == unknown.value == {"requested": True}
    assert await OutboxMessage.filter(recipient=therapist.email, kind="password_reset").count() == 1


async def test_send_unblock_link_only_for_blocked_accounts(svc: Services) -> None:
    org = await make_org(svc)
    blocked = await make_account(svc, org, blocked_at=svc.now(), failed_logins=5)
    fine = await make_account(svc, org)
    one, _ = await _run(svc, None, "account.send_unblock_link", {"email": blocked.email})
    two, _ = await _run(svc, None, "account.send_unblock_link", {"email": fine.email}, key="k:0:t:0")
    assert one.value == two.value == {"requested": True}
    assert await OutboxMessage.filter(recipient=blocked.email, kind="account_blocked").count() == 1
    assert not await OutboxMessage.filter(recipient=fine.email).exists()
    assert await Token.filter(account_id=blocked.id, purpose=TokenPurpose.UNBLOCK).exists()


async def test_anonymous_may_not_run_other_actions(svc: Services) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    result, _ = await _run(svc, None, "account.reactivate", {"account": therapist.id})
    assert result.error == "not_permitted"
    assert (await Account.get(id=therapist.id)).status is AccountStatus.DEACTIVATED
    assert (await _audit("account.reactivate")).outcome is Outcome.REFUSED


async def test_unblock_and_reset_two_factor(svc: Services) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, blocked_at=svc.now(), failed_logins=5, totp_secret="A" * 32,
                                   totp_enabled_at=svc.now())
    unblocked, session = await _run(svc, admin, "account.unblock", {"account": account_ref(therapist)})
    reset, _ = await _run(svc, admin, "account.reset_two_factor", {"account": account_ref(therapist)},
                          key="k:0:t:0")
    assert unblocked.ok
    assert reset.ok
    fresh = await Account.get(id=therapist.id)
    assert fresh.blocked_at is None
    assert fresh.totp_enabled_at is None
    assert (await _audit("account.unblock")).reason == f"help session {session.id}"
    assert (await _audit("account.reset_two_factor")).via == "flow"


async def test_create_client_and_update_email(svc: Services) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    created, _ = await _run(svc, therapist, "account.create_client", {
        "first_name": "Sam", "last_name": "Vries", "email": "sam@example.org", "gender": "other",
        "date_of_birth": "1990-05-17"})
    assert created.ok, created
    client = await Account.get(email="sam@example.org")
    assert await CaseloadLink.filter(client_id=client.id, professional_id=therapist.id).exists()
    taken, _ = await _run(svc, therapist, "account.create_client", {
        "first_name": "Sam", "last_name": "Vries", "email": "sam@example.org", "gender": "other",
        "date_of_birth": "1990-05-17"}, key="k:0:t:0")
    assert taken.error == "email_taken"
    assert "E-Mail" in taken.message
    updated, _ = await _run(svc, therapist, "account.update_email",
                            {"account": account_ref(client), "email": "sam.new@example.org"}, key="k:0:u:0")
    assert updated.ok
    assert (await Account.get(id=client.id)).email == "sam.new@example.org"
    assert (await _audit("account.update")).via == "flow"


async def test_caseload_search_inside_and_outside(svc: Services) -> None:
    org = await make_org(svc, search_outside_caseload=True)
    therapist = await make_account(svc, org)
    colleague = await make_account(svc, org)
    mine = await make_client(svc, org, first_name="Anna", last_name="Meyer")
    other = await make_client(svc, org, first_name="Anna", last_name="Schulz")
    await link(svc, mine, therapist)
    await link(svc, other, colleague)
    inside, _ = await _run(svc, therapist, "caseload.search", {"query": "Anna"})
    assert [c["id"] for c in inside.value["clients"]] == [mine.id]
    outside, _ = await _run(svc, therapist, "caseload.search",
                            {"query": "Schulz", "outside": True, "motivation": "duplicate e-mail address"},
                            key="k:0:t:0")
    assert [c["id"] for c in outside.value["clients"]] == [other.id]
    assert outside.value["clients"][0]["professionals"][0]["id"] == colleague.id
    assert (await _audit("caseload.search_outside")).reason == "duplicate e-mail address"


async def test_link_professional_self_link_request_and_unlink(svc: Services) -> None:
    org = await make_org(svc, link_policy=LinkPolicy.SELF_LINK, search_outside_caseload=True)
    therapist = await make_account(svc, org)
    colleague = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    linked, _ = await _run(svc, therapist, "caseload.link_professional",
                           {"client": account_ref(client), "professional": account_ref(colleague)})
    assert linked.ok
    assert await CaseloadLink.filter(client_id=client.id, professional_id=colleague.id).exists()
    again, _ = await _run(svc, therapist, "caseload.link_professional",
                          {"client": account_ref(client), "professional": account_ref(colleague)}, key="k:0:t:0")
    assert again.error == "already_linked"
    unlinked, session = await _run(svc, therapist, "caseload.unlink_professional",
                                   {"client": account_ref(client), "professional": account_ref(colleague)},
                                   key="k:0:u:0")
    assert unlinked.ok
    assert not await CaseloadLink.filter(client_id=client.id, professional_id=colleague.id).exists()
    assert (await _audit("caseload.unlink")).reason == f"help session {session.id}"
    found, _ = await _run(svc, colleague, "caseload.search",
                          {"query": client.last_name, "outside": True, "motivation": "the client asked for me"},
                          key="k:0:v:0")
    assert [c["id"] for c in found.value["clients"]] == [client.id]
    selfed, _ = await _run(svc, colleague, "caseload.link_self",
                           {"client": account_ref(client), "search": found.value["search_id"]}, key="k:0:v:1")
    assert selfed.ok
    link_row = await CaseloadLink.get(client_id=client.id, professional_id=colleague.id)
    assert link_row.kind is LinkKind.TREATING
    assert (await _audit("caseload.self_link")).reason == "the client asked for me"
    organisation = await Organisation.get(id=org.id)
    organisation.link_policy = LinkPolicy.CLIENT_CONSENT
    await organisation.save()
    newcomer = await make_account(svc, org)
    asked, _ = await _run(svc, newcomer, "caseload.search",
                          {"query": client.last_name, "outside": True, "motivation": "a duplicate e-mail address"},
                          key="k:0:w:0")
    requested, _ = await _run(svc, newcomer, "caseload.request_link",
                              {"client": account_ref(client), "search": asked.value["search_id"]}, key="k:0:w:1")
    assert requested.ok
    assert await LinkRequest.filter(client_id=client.id, professional_id=newcomer.id).exists()
    assert await OutboxMessage.filter(recipient=client.email, kind="link_request").exists()


@pytest.mark.parametrize("name", ["caseload.link_self", "caseload.request_link"])
async def test_a_flow_links_or_asks_only_a_client_its_outside_search_found(svc: Services, name: str) -> None:
    """A flow cannot name any client: the search it passes must have returned that client."""
    policy = LinkPolicy.SELF_LINK if name == "caseload.link_self" else LinkPolicy.CLIENT_CONSENT
    org = await make_org(svc, link_policy=policy, search_outside_caseload=True)
    therapist = await make_account(svc, org)
    other = await make_account(svc, org)
    found = await make_client(svc, org, first_name="Anna", last_name="Meyer")
    unrelated = await make_client(svc, org, first_name="Bert", last_name="Schulz")
    await link(svc, found, other)
    await link(svc, unrelated, other)
    search, _ = await _run(svc, therapist, "caseload.search",
                           {"query": "Meyer", "outside": True, "motivation": "a duplicate e-mail address"})
    refused, _ = await _run(svc, therapist, name, {"client": account_ref(unrelated), "search": search.value["search_id"]},
                            key="k:0:x:0")
    assert refused.error == "not_found_by_search"
    no_search, _ = await _run(svc, therapist, name, {"client": account_ref(found), "search": 0}, key="k:0:x:1")
    assert no_search.error == "outside_search_needed"
    assert not await CaseloadLink.filter(professional_id=therapist.id).exists()
    assert not await LinkRequest.filter(professional_id=therapist.id).exists()
    refusals = await AuditEvent.filter(action=name.replace("link_self", "self_link"), outcome=Outcome.REFUSED).order_by("id")
    assert [(r.details or {}).get("refused") for r in refusals] == ["not_found_by_search", "no_recent_search"]


async def test_tasks_create_for_a_role_names_the_session(svc: Services) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    result, session = await _run(svc, therapist, "tasks.create",
                                 {"to_role": "secretary", "client": account_ref(client), "note": "Please help"})
    assert result.ok
    task = await Task.get(id=result.value["task_id"])
    assert task.assignee_role is Role.SECRETARY
    assert task.data["help_session"] == session.id
    assert (await _audit("task.create")).via == "flow"


@pytest.mark.parametrize("args", [{}, {"account": "seven"}, {"account": 1, "extra": True}])
async def test_arguments_are_validated_before_running(svc: Services, args: dict[str, Any]) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    result, _ = await _run(svc, admin, "account.reactivate", args)
    assert result.error == "invalid_arguments"
    assert not await ActionRun.exists()


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SECRETARY, Role.SUPERVISOR])
async def test_refused_for_roles_without_the_permission(svc: Services, role: Role) -> None:
    org = await make_org(svc)
    who = await make_account(svc, org, role)
    therapist = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    result, _ = await _run(svc, who, "account.reactivate", {"account": therapist.id})
    assert result.error == "not_permitted"
    refusal = await _audit("account.reactivate")
    assert refusal.outcome is Outcome.REFUSED
    assert refusal.actor_id == who.id
    assert refusal.via == "flow"


async def test_same_key_runs_once(svc: Services) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, password=None)
    session = await _session(svc, admin)
    executor = PlatformActions(svc, Actor.of(admin), session.id, session.flow_id, "nl")
    first = await executor.run_action("account.resend_welcome_mail", {"account": therapist.id}, idempotency_key="x:1")
    second = await executor.run_action("account.resend_welcome_mail", {"account": therapist.id}, idempotency_key="x:1")
    assert first == second
    assert await OutboxMessage.filter(recipient=therapist.email).count() == 1


async def test_account_state_fact(svc: Services, clock: Any) -> None:
    org = await make_org(svc, two_factor=TwoFactorRule.REQUIRED)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    facts = PlatformFacts(svc, Actor.of(admin))
    recent = await make_account(svc, org, last_login_at=svc.now())
    dormant = await make_account(svc, org, last_login_at=svc.now() - timedelta(days=91))
    never = await make_account(svc, org)
    deactivated = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    blocked = await make_account(svc, org, blocked_at=svc.now())
    invited = await make_account(svc, org, password=None)
    await Token.create(account=invited, purpose=TokenPurpose.WELCOME, secret_hash="a" * 64, created_at=svc.now(),
                       expires_at=svc.now() + timedelta(days=7))
    expired = await make_account(svc, org, password=None)
    await Token.create(account=expired, purpose=TokenPurpose.WELCOME, secret_hash="b" * 64,
                       created_at=svc.now() - timedelta(days=8), expires_at=svc.now() - timedelta(days=1))
    other_org = await make_account(svc, await make_org(svc))
    expected = {recent: "recent", dormant: "dormant", never: "dormant", deactivated: "deactivated",
                blocked: "blocked", invited: "invited", expired: "invite_expired", other_org: "missing"}
    for account, state in expected.items():
        assert await facts.resolve_fact("account.state", {"account": account_ref(account)}) == state
    assert await facts.resolve_fact("account.state", {"account": None}) == "missing"
    assert await facts.resolve_fact("account.two_factor", {"account": recent.id}) == "required_not_enrolled"
    assert await facts.resolve_fact("account.externally_managed", {"account": recent.id}) is False
    assert (await facts.resolve_fact("org.settings", {}))["two_factor"] == "required"


async def test_find_by_email_respects_visibility(svc: Services) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    mine = await make_client(svc, org)
    await link(svc, mine, therapist)
    elsewhere = await make_client(svc, await make_org(svc))
    facts = PlatformFacts(svc, Actor.of(therapist))
    assert await facts.resolve_fact("account.find_by_email", {"email": mine.email.upper()}) == "in_caseload"
    assert await facts.resolve_fact("account.find_by_email", {"email": elsewhere.email}) == "elsewhere"
    assert await facts.resolve_fact("account.find_by_email", {"email": "none@example.org"}) == "none"
    assert (await facts.resolve_fact("caseload.client_by_email", {"email": mine.email}))["id"] == mine.id
    assert await facts.resolve_fact("caseload.client_by_email", {"email": elsewhere.email}) is None
    anonymous = PlatformFacts(svc, Actor.anonymous())
    assert await anonymous.resolve_fact("account.find_by_email", {"email": mine.email}) is None
    assert await facts.resolve_fact("caseload.is_linked", {"client": mine.id}) is True
    linked = await facts.resolve_fact("caseload.linked_professionals", {"client": account_ref(mine)})
    assert [p["id"] for p in linked] == [therapist.id]
    assert await facts.resolve_fact("caseload.supervised_tools", {"client": mine.id}) == 0
    assert await facts.resolve_fact("caseload.pending_link_request", {"client": mine.id}) is False
