"""Account actions: effect, audit row, mail or event, and refusal for every role that may not act."""

from __future__ import annotations

import asyncio
from datetime import date

import pytest

from lotse.platform.accounts import actions
from lotse.platform.accounts.models import (
    Account,
    AccountStatus,
    Role,
    Token,
    TokenPurpose,
    WebSession,
)
from lotse.platform.accounts.sessions import start_session
from lotse.platform.accounts.tokens import TokenState, check_token
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import ExternalAccounts, FieldRule
from lotse.platform.permissions import Actor
from tests.factories import link, make_account, make_org

CLIENT_DATA = {
    "gender": "female", "first_name": "Noor", "last_name": "de Vries", "email": " Noor.deVries@Example.ORG ",
    "date_of_birth": "1991-04-12",
}
NON_ADMIN_ROLES = [Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.CONTENT_EDITOR, Role.SERVICEDESK, Role.CLIENT]
NOT_CLIENT_CREATORS = [Role.SUPERVISOR, Role.APP_ADMIN, Role.CONTENT_EDITOR, Role.SERVICEDESK, Role.CLIENT]


async def events_of(svc, work):
    """Run ``work`` and return the names of the events it published."""
    seen = []
    async with svc.bus.subscribe("*") as stream:
        result = await work()
        while True:
            try:
                _topic, payload = await asyncio.wait_for(anext(stream), 0.01)
            except TimeoutError:
                break
            seen.append(payload["event"])
    return result, seen


def welcome_secret(mail: OutboxMessage) -> str:
    return mail.body_text.split("/welcome/")[1].split()[0]


# --- professionals ----------------------------------------------------------------


async def test_admin_creates_professional_with_welcome_mail(svc):
    org = await make_org(svc, default_language="de")
    admin = await make_account(svc, org, Role.APP_ADMIN)

    async def work():
        return await actions.do_create_professional(
            svc, Actor.of(admin), org,
            {"role": "therapist", "email": "Mia.Keller@Example.org", "first_name": "Mia", "last_name": "Keller"},
        )

    account, events = await events_of(svc, work)
    assert (account.role, account.email, account.created_by_id) == (Role.THERAPIST, "mia.keller@example.org", admin.id)
    assert "account.created" in events
    assert "account.welcome_sent" in events
    mail = await OutboxMessage.get(account_id=account.id)
    assert (mail.kind, mail.language, mail.recipient) == ("welcome", "de", "mia.keller@example.org")
    assert "http://lotse.test/welcome/" in mail.body_text
    assert "7" in mail.body_text
    token_check = await check_token(welcome_secret(mail), TokenPurpose.WELCOME, svc.now())
    assert token_check.state is TokenState.VALID
    row = await AuditEvent.get(action="account.create", outcome=Outcome.SUCCESS)
    assert (row.event_type, row.actor_id, row.subject_id) == (AuditType.CREATE, admin.id, account.id)


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
async def test_only_admins_create_professionals(svc, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    with pytest.raises(NotPermittedError):
        await actions.do_create_professional(
            svc, Actor.of(someone), org, {"role": "therapist", "email": "x@example.org", "first_name": "X", "last_name": "Y"}
        )
    assert not await Account.filter(email="x@example.org").exists()
    assert await AuditEvent.filter(action="account.create", outcome=Outcome.REFUSED).count() == 1


async def test_admin_cannot_create_servicedesk_or_client_via_professional_form(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    for role in ("servicedesk", "client", "wizard"):
        with pytest.raises(ValidationError) as caught:
            await actions.do_create_professional(
                svc, Actor.of(admin), org, {"role": role, "email": "x@example.org", "first_name": "X", "last_name": "Y"}
            )
        assert "role" in caught.value.fields
    desk = await actions.do_create_professional(
        svc, Actor.system(via="cli"), org, {"role": "servicedesk", "email": "desk@example.org", "first_name": "S", "last_name": "D"}
    )
    assert desk.role is Role.SERVICEDESK


async def test_admin_cannot_manage_professional_of_other_organisation(svc):
    org, other = await make_org(svc), await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    foreign = await make_account(svc, other, Role.THERAPIST)
    with pytest.raises(NotPermittedError):
        await actions.do_deactivate_account(svc, Actor.of(admin), foreign)
    with pytest.raises(NotPermittedError):
        await actions.do_create_professional(
            svc, Actor.of(admin), other, {"role": "therapist", "email": "x@example.org", "first_name": "X", "last_name": "Y"}
        )


async def test_update_professional_audits_field_names_only(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST)
    changed = await actions.do_update_account(svc, Actor.of(admin), therapist,
                                              {"last_name": "Bakker", "role": "supervisor", "first_name": therapist.first_name})
    assert sorted(changed) == ["last_name", "role"]
    fresh = await Account.get(id=therapist.id)
    assert (fresh.last_name, fresh.role) == ("Bakker", Role.SUPERVISOR)
    row = await AuditEvent.get(action="account.update")
    assert sorted(row.details["fields"]) == ["last_name", "role"]
    assert "Bakker" not in str(row.details)
    with pytest.raises(ConflictError) as caught:
        await actions.do_update_account(svc, Actor.of(admin), admin, {"role": "therapist"})
    assert caught.value.code == "own_account"


async def test_deactivate_ends_sessions_and_reactivate(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST)
    await start_session(therapist, svc.now(), pending_two_factor=False)

    async def deactivate():
        await actions.do_deactivate_account(svc, Actor.of(admin), therapist)

    _, events = await events_of(svc, deactivate)
    assert events == ["account.deactivated"]
    assert (await Account.get(id=therapist.id)).status is AccountStatus.DEACTIVATED
    assert not await WebSession.filter(account_id=therapist.id).exists()
    with pytest.raises(ConflictError) as caught:
        await actions.do_deactivate_account(svc, Actor.of(admin), therapist)
    assert caught.value.code == "already_deactivated"
    await actions.do_reactivate_account(svc, Actor.of(admin), therapist)
    assert (await Account.get(id=therapist.id)).is_active
    rows = await AuditEvent.filter(action__in=["account.deactivate", "account.reactivate"], outcome=Outcome.SUCCESS)
    assert sorted(r.details["status"] for r in rows) == ["active", "deactivated"]
    with pytest.raises(ConflictError) as caught:
        await actions.do_deactivate_account(svc, Actor.of(admin), admin)
    assert caught.value.code == "own_account"


@pytest.mark.parametrize("role", NON_ADMIN_ROLES)
@pytest.mark.parametrize("verb", ["deactivate", "resend_welcome", "unblock", "update"])
async def test_only_admins_manage_professionals(svc, role, verb):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    therapist = await make_account(svc, org, Role.THERAPIST, failed_logins=5, blocked_at=svc.now())
    call = {
        "deactivate": lambda: actions.do_deactivate_account(svc, Actor.of(someone), therapist),
        "resend_welcome": lambda: actions.do_resend_welcome(svc, Actor.of(someone), therapist),
        "unblock": lambda: actions.do_unblock_account(svc, Actor.of(someone), therapist),
        "update": lambda: actions.do_update_account(svc, Actor.of(someone), therapist, {"last_name": "X"}),
    }[verb]
    with pytest.raises(NotPermittedError):
        await call()
    fresh = await Account.get(id=therapist.id)
    assert (fresh.status, fresh.blocked_at is not None, fresh.last_name) == (AccountStatus.ACTIVE, True, "Jansen")
    assert not await OutboxMessage.exists()
    assert await AuditEvent.filter(outcome=Outcome.REFUSED, actor_id=someone.id).count() == 1


async def test_resend_welcome_kills_the_old_link(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    account = await actions.do_create_professional(
        svc, Actor.of(admin), org, {"role": "secretary", "email": "s@example.org", "first_name": "S", "last_name": "T"}
    )
    first = welcome_secret(await OutboxMessage.get(account_id=account.id))
    await actions.do_resend_welcome(svc, Actor.of(admin), account)
    mails = await OutboxMessage.filter(account_id=account.id).order_by("id")
    assert len(mails) == 2
    second = welcome_secret(mails[1])
    assert (await check_token(first, TokenPurpose.WELCOME, svc.now())).state is TokenState.USED
    assert (await check_token(second, TokenPurpose.WELCOME, svc.now())).state is TokenState.VALID
    assert await AuditEvent.filter(action="account.resend_welcome", outcome=Outcome.SUCCESS).count() == 1
    await actions.do_deactivate_account(svc, Actor.of(admin), account)
    with pytest.raises(ConflictError) as caught:
        await actions.do_resend_welcome(svc, Actor.of(admin), account)
    assert caught.value.code == "not_active"


async def test_unblock(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST, failed_logins=5, blocked_at=svc.now())

    async def work():
        await actions.do_unblock_account(svc, Actor.of(admin), therapist)

    _, events = await events_of(svc, work)
    fresh = await Account.get(id=therapist.id)
    assert (fresh.blocked_at, fresh.failed_logins, events) == (None, 0, ["account.unblocked"])
    assert await AuditEvent.filter(action="account.unblock", outcome=Outcome.SUCCESS, subject_id=therapist.id).exists()
    with pytest.raises(ConflictError) as caught:
        await actions.do_unblock_account(svc, Actor.of(admin), therapist)
    assert caught.value.code == "not_blocked"


async def test_unblocking_by_a_professional_kills_the_mailed_unblock_link(svc):
    from lotse.platform.accounts.tokens import issue_token

    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST, failed_logins=5, blocked_at=svc.now())
    secret = await issue_token(therapist, TokenPurpose.UNBLOCK, svc.now())
    reset = await issue_token(therapist, TokenPurpose.RESET, svc.now())

    await actions.do_unblock_account(svc, Actor.of(admin), therapist)

    assert (await check_token(secret, TokenPurpose.UNBLOCK, svc.now())).state is TokenState.USED
    assert (await check_token(reset, TokenPurpose.RESET, svc.now())).state is TokenState.VALID


async def test_reset_two_factor_of_professional_mails_the_owner(svc):
    org = await make_org(svc, default_language="nl")
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST, totp_secret="JBSWY3DPEHPK3PXP",
                                   totp_enabled_at=svc.now(), recovery_codes=["h1", "h2"], locale="de")

    async def work():
        await actions.do_reset_two_factor(svc, Actor.of(admin), therapist)

    _, events = await events_of(svc, work)
    fresh = await Account.get(id=therapist.id)
    assert (fresh.totp_secret, fresh.totp_enabled_at, fresh.recovery_codes) == (None, None, [])
    assert events == ["account.two_factor_reset"]
    mail = await OutboxMessage.get(account_id=therapist.id)
    assert (mail.kind, mail.language) == ("two_factor_reset", "de")
    assert await AuditEvent.filter(action="account.reset_two_factor", outcome=Outcome.SUCCESS).exists()
    with pytest.raises(ConflictError):
        await actions.do_reset_two_factor(svc, Actor.of(admin), fresh)


@pytest.mark.parametrize("role", [Role.SUPERVISOR, Role.SECRETARY, Role.CONTENT_EDITOR, Role.SERVICEDESK, Role.CLIENT, Role.THERAPIST])
async def test_reset_two_factor_of_professional_refused(svc, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    therapist = await make_account(svc, org, Role.THERAPIST, totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=svc.now())
    with pytest.raises(NotPermittedError):
        await actions.do_reset_two_factor(svc, Actor.of(someone), therapist)
    assert (await Account.get(id=therapist.id)).totp_secret == "JBSWY3DPEHPK3PXP"


# --- clients ----------------------------------------------------------------


async def test_therapist_creates_client_and_is_linked(svc):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)

    async def work():
        return await actions.do_create_client(svc, Actor.of(therapist), org, CLIENT_DATA)

    client, events = await events_of(svc, work)
    assert (client.email, client.date_of_birth, client.role) == ("noor.devries@example.org", date(1991, 4, 12), Role.CLIENT)
    assert await CaseloadLink.filter(client_id=client.id, professional_id=therapist.id, kind=LinkKind.TREATING).exists()
    assert "account.created" in events
    assert (await OutboxMessage.get(account_id=client.id)).kind == "welcome"
    row = await AuditEvent.get(action="account.create", outcome=Outcome.SUCCESS)
    assert (row.client_pseudonym, row.subject_id) == (client.pseudonym, client.id)


async def test_secretary_creates_client_for_a_therapist(svc):
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await actions.do_create_client(svc, Actor.of(secretary), org, CLIENT_DATA, therapist_id=therapist.id)
    links = await CaseloadLink.filter(client_id=client.id).values_list("professional_id", flat=True)
    assert links == [therapist.id]
    other_org_therapist = await make_account(svc, await make_org(svc), Role.THERAPIST)
    with pytest.raises(ValidationError) as caught:
        await actions.do_create_client(svc, Actor.of(secretary), org, {**CLIENT_DATA, "email": "b@example.org"},
                                       therapist_id=other_org_therapist.id)
    assert "therapist_id" in caught.value.fields


@pytest.mark.parametrize("role", NOT_CLIENT_CREATORS)
async def test_client_creation_refused(svc, role):
    org = await make_org(svc)
    someone = await make_account(svc, org, role)
    with pytest.raises(NotPermittedError):
        await actions.do_create_client(svc, Actor.of(someone), org, CLIENT_DATA)
    assert not await Account.filter(email="noor.devries@example.org").exists()


async def test_duplicate_email_across_installation_is_email_taken(svc):
    org, other = await make_org(svc), await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    await make_account(svc, other, Role.SECRETARY, email="noor.devries@example.org")
    with pytest.raises(ConflictError) as caught:
        await actions.do_create_client(svc, Actor.of(therapist), org, CLIENT_DATA)
    assert caught.value.code == "email_taken"
    assert caught.value.to_json("de")["fields"]["email"] == "Es gibt bereits ein Konto mit dieser E-Mail-Adresse."
    assert caught.value.to_json("nl")["fields"]["email"] == "Er bestaat al een gebruiker met dit e-mailadres."
    assert await Account.filter(role=Role.CLIENT).count() == 0
    assert not await OutboxMessage.exists()


async def test_integrity_error_race_is_email_taken(svc, monkeypatch):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    await make_account(svc, org, Role.CLIENT, email="noor.devries@example.org")

    async def nothing_found(*args, **kwargs):
        return None

    # Simulate the race: the pre-check sees nothing, the database refuses.
    monkeypatch.setattr(actions, "_check_unique", nothing_found)
    with pytest.raises(ConflictError) as caught:
        await actions.do_create_client(svc, Actor.of(therapist), org, CLIENT_DATA)
    assert caught.value.code == "email_taken"
    assert await Account.filter(email="noor.devries@example.org").count() == 1


async def test_client_validation_names_every_field(svc):
    org = await make_org(svc, phone_rule=FieldRule.REQUIRED, client_id_rule=FieldRule.REQUIRED)
    therapist = await make_account(svc, org, Role.THERAPIST)
    bad = {"gender": "", "first_name": "", "last_name": "x" * 101, "email": "not-an-email",
           "date_of_birth": "2026-03-03"}
    with pytest.raises(ValidationError) as caught:
        await actions.do_create_client(svc, Actor.of(therapist), org, bad)
    assert set(caught.value.fields) == {"gender", "first_name", "last_name", "email", "date_of_birth", "phone", "client_ref"}
    with pytest.raises(ValidationError) as caught:
        await actions.do_create_client(svc, Actor.of(therapist), org,
                                       {**CLIENT_DATA, "date_of_birth": "1899-12-31", "phone": "+31 6 1234 5678", "client_ref": "C-1"})
    assert set(caught.value.fields) == {"date_of_birth"}
    assert not await Account.filter(role=Role.CLIENT).exists()


async def test_client_ref_unique_within_organisation(svc):
    org, other = await make_org(svc), await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    await make_account(svc, other, Role.CLIENT, client_ref="C-7")
    client = await actions.do_create_client(svc, Actor.of(therapist), org, {**CLIENT_DATA, "client_ref": "C-7"})
    assert client.client_ref == "C-7"
    with pytest.raises(ConflictError) as caught:
        await actions.do_create_client(svc, Actor.of(therapist), org,
                                       {**CLIENT_DATA, "email": "b@example.org", "client_ref": "C-7"})
    assert caught.value.code == "client_id_taken"


async def test_linked_therapist_and_secretary_manage_clients(svc):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    secretary = await make_account(svc, org, Role.SECRETARY)
    client = await make_account(svc, org, Role.CLIENT, failed_logins=5, blocked_at=svc.now(),
                                totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=svc.now())
    await link(svc, client, therapist)
    await actions.do_update_account(svc, Actor.of(therapist), client, {"label": "Groep B", "date_of_birth": "17-05-1990"})
    await actions.do_unblock_account(svc, Actor.of(secretary), client)
    await actions.do_reset_two_factor(svc, Actor.of(therapist), client)
    await actions.do_deactivate_account(svc, Actor.of(secretary), client)
    await actions.do_reactivate_account(svc, Actor.of(therapist), client)
    await actions.do_resend_welcome(svc, Actor.of(secretary), client)
    fresh = await Account.get(id=client.id)
    assert (fresh.label, fresh.is_blocked, fresh.totp_secret, fresh.is_active) == ("Groep B", False, None, True)
    kinds = sorted(await OutboxMessage.filter(account_id=client.id).values_list("kind", flat=True))
    assert kinds == ["two_factor_reset", "welcome"]


@pytest.mark.parametrize(
    "who", ["unlinked_therapist", "supervisor_linked", "app_admin", "content_editor", "servicedesk", "client_self"]
)
async def test_client_management_refused(svc, who):
    org = await make_org(svc)
    client = await make_account(svc, org, Role.CLIENT, totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=svc.now())
    role = {"unlinked_therapist": Role.THERAPIST, "supervisor_linked": Role.SUPERVISOR, "app_admin": Role.APP_ADMIN,
            "content_editor": Role.CONTENT_EDITOR, "servicedesk": Role.SERVICEDESK}.get(who)
    someone = client if role is None else await make_account(svc, org, role)
    if who == "supervisor_linked":
        await link(svc, client, someone, LinkKind.SUPERVISING)
    for call in (
        lambda: actions.do_update_account(svc, Actor.of(someone), client, {"last_name": "X"}),
        lambda: actions.do_deactivate_account(svc, Actor.of(someone), client),
        lambda: actions.do_resend_welcome(svc, Actor.of(someone), client),
        lambda: actions.do_reset_two_factor(svc, Actor.of(someone), client),
    ):
        with pytest.raises(NotPermittedError):
            await call()
    fresh = await Account.get(id=client.id)
    assert (fresh.last_name, fresh.is_active, fresh.totp_secret) == ("Jansen", True, "JBSWY3DPEHPK3PXP")
    assert not await OutboxMessage.exists()


async def test_secretary_cannot_reset_client_two_factor(svc):
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    client = await make_account(svc, org, Role.CLIENT, totp_secret="JBSWY3DPEHPK3PXP", totp_enabled_at=svc.now())
    with pytest.raises(NotPermittedError):
        await actions.do_reset_two_factor(svc, Actor.of(secretary), client)


async def test_email_change_to_taken_address_is_refused(svc):
    org = await make_org(svc)
    secretary = await make_account(svc, org, Role.SECRETARY)
    client = await make_account(svc, org, Role.CLIENT)
    other = await make_account(svc, org, Role.THERAPIST)
    with pytest.raises(ConflictError) as caught:
        await actions.do_update_account(svc, Actor.of(secretary), client, {"email": other.email.upper()})
    assert caught.value.code == "email_taken"


# --- externally managed -------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "edit_ok", "status_ok"),
    [(ExternalAccounts.PROTECT, False, True), (ExternalAccounts.NEVER_EDITABLE, False, False),
     (ExternalAccounts.ALWAYS_EDITABLE, True, True)],
)
async def test_externally_managed_accounts_follow_the_setting(svc, rule, edit_ok, status_ok):
    org = await make_org(svc, external_accounts=rule)
    secretary = await make_account(svc, org, Role.SECRETARY)
    client = await make_account(svc, org, Role.CLIENT, externally_managed=True, external_ref="EPD-1",
                                failed_logins=5, blocked_at=svc.now())
    plain = await make_account(svc, org, Role.CLIENT)
    await actions.do_update_account(svc, Actor.of(secretary), plain, {"last_name": "Free"})
    for call, ok in (
        (lambda: actions.do_update_account(svc, Actor.of(secretary), client, {"last_name": "X"}), edit_ok),
        (lambda: actions.do_deactivate_account(svc, Actor.of(secretary), client), status_ok),
    ):
        if ok:
            await call()
        else:
            with pytest.raises(ConflictError) as caught:
                await call()
            assert caught.value.code == "externally_managed"
    # Signing in is Lotse's business whatever the setting.
    await actions.do_unblock_account(svc, Actor.of(secretary), client)


async def test_welcome_link_expires_after_seven_days(svc, clock):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await actions.do_create_client(svc, Actor.of(therapist), org, CLIENT_DATA)
    secret = welcome_secret(await OutboxMessage.get(account_id=client.id))
    clock.advance(days=6, hours=23)
    assert (await check_token(secret, TokenPurpose.WELCOME, svc.now())).state is TokenState.VALID
    clock.advance(hours=1)
    assert (await check_token(secret, TokenPurpose.WELCOME, svc.now())).state is TokenState.EXPIRED
    assert await Token.filter(account_id=client.id).count() == 1
