"""Access-checked reads of accounts, for pages, the API, flows and other domains.

A read that exposes a client's personal data writes a READ (or SEARCH) audit
row. An account the actor may not see is "not found", whichever the reason:
across organisations Lotse does not reveal that an account exists.
"""

from __future__ import annotations

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services, record, require
from lotse.platform.audit.models import AuditType, Outcome
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.errors import NotFoundError
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission, allowed


def view_permission(account: Account) -> Permission:
    """The permission to open ``account``'s page: clients by their professionals, others by admins."""
    return Permission.CLIENT_VIEW if account.role is Role.CLIENT else Permission.PROFESSIONAL_MANAGE


async def get_account_for(
    svc: Services, actor: Actor, account_id: int, permission: Permission | None = None, *, audit_read: bool = True
) -> Account:
    """Return the account if ``actor`` holds ``permission`` for it (default: may view it), else 404.

    A client's account read is audited (READ); a refusal inside the actor's
    organisation is audited as refused; an account of another organisation is
    simply not found.
    """
    account = await Account.get_or_none(id=account_id)
    if account is None or (not actor.is_system and account.organisation_id != actor.organisation_id):
        raise NotFoundError()
    permission = permission or view_permission(account)
    if not actor.is_system and not await allowed(actor, permission, account):
        await record(svc, actor, "account.view", AuditType.READ, subject=account, outcome=Outcome.REFUSED,
                     details={"permission": permission.value})
        raise NotFoundError()
    if audit_read and account.role is Role.CLIENT:
        await record(svc, actor, "account.view", AuditType.READ, subject=account)
    return account


async def list_professionals(
    svc: Services, actor: Actor, organisation: Organisation, *, role: Role | None = None
) -> list[Account]:
    """The organisation's professionals (for their application admins), optionally of one role."""
    await require(svc, actor, Permission.PROFESSIONAL_CREATE, organisation, "account.list_professionals")
    query = Account.filter(organisation_id=organisation.id).exclude(role=Role.CLIENT)
    if role is not None:
        query = query.filter(role=role)
    return await query.order_by("last_name", "first_name", "id")


async def list_clients(
    svc: Services, actor: Actor, organisation: Organisation, *, include_inactive: bool = True
) -> list[Account]:
    """The clients the actor may see: linked ones; every client of the organisation for secretaries.

    Audited as a SEARCH (it lists personal data), with the number of rows.
    """
    await require(svc, actor, Permission.CASELOAD_SEARCH, organisation, "account.list_clients")
    query = Account.filter(organisation_id=organisation.id, role=Role.CLIENT)
    if actor.role is not Role.SECRETARY:
        linked = CaseloadLink.filter(professional_id=actor.account_id).values_list("client_id", flat=True)
        query = query.filter(id__in=await linked)
    if not include_inactive:
        query = query.filter(status=AccountStatus.ACTIVE)
    clients = await query.order_by("last_name", "first_name", "id")
    await record(svc, actor, "account.list_clients", AuditType.SEARCH, details={"count": len(clients)})
    return clients


async def therapists_for_assignment(svc: Services, actor: Actor, organisation: Organisation) -> list[Account]:
    """Active therapists a secretary may make a new client's treating therapist (names only needed)."""
    await require(svc, actor, Permission.CLIENT_CREATE, organisation, "account.list_therapists")
    return await Account.filter(
        organisation_id=organisation.id, role=Role.THERAPIST, status=AccountStatus.ACTIVE
    ).order_by("last_name", "first_name", "id")


async def linked_professionals(account: Account) -> list[tuple[Account, str]]:
    """The professionals linked to a client, with the kind of link (for the account page)."""
    links = await CaseloadLink.filter(client_id=account.id).select_related("professional").order_by("id")
    return [(link.professional, link.kind.value) for link in links]
