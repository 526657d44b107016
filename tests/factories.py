"""Test-data builders: organisations and accounts in a known state.

They write rows directly, so that a test of sign-in does not depend on the
account-creation action; tests of that action create accounts through it.
"""

from __future__ import annotations

import itertools
import secrets
from datetime import date
from typing import Any

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.accounts.passwords import hash_password
from lotse.platform.actions import Services
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.organisations.models import Organisation

PASSWORD = "correct horse battery #1"
_counter = itertools.count(1)
_hash_cache: dict[str, str] = {}


def _hash(password: str) -> str:
    if password not in _hash_cache:
        _hash_cache[password] = hash_password(password)
    return _hash_cache[password]


async def make_org(svc: Services, **fields: Any) -> Organisation:
    n = next(_counter)
    defaults: dict[str, Any] = {"slug": f"org-{n}", "name": f"Organisation {n}", "created_at": svc.now()}
    return await Organisation.create(**{**defaults, **fields})


async def make_account(
    svc: Services, organisation: Organisation, role: Role = Role.THERAPIST, *, password: str | None = PASSWORD, **fields: Any
) -> Account:
    n = next(_counter)
    now = svc.now()
    defaults: dict[str, Any] = {
        "organisation": organisation,
        "role": role,
        "email": f"{role.value}{n}@example.org",
        "first_name": f"Eva{n}",
        "last_name": "Jansen",
        "pseudonym": secrets.token_hex(8),
        "password_hash": _hash(password) if password else None,
        "status": AccountStatus.ACTIVE,
        "created_at": now,
        "updated_at": now,
    }
    if role is Role.CLIENT:
        defaults.update(gender="female", date_of_birth=date(1990, 5, 17))
    return await Account.create(**{**defaults, **fields})


async def link(svc: Services, client: Account, professional: Account, kind: LinkKind = LinkKind.TREATING) -> CaseloadLink:
    return await CaseloadLink.create(client=client, professional=professional, kind=kind, created_at=svc.now())


async def make_client(svc: Services, organisation: Organisation, **fields: Any) -> Account:
    """A client account that caseload search can find (indexed as the account actions do)."""
    from lotse.platform.caseload.search import index_client

    client = await make_account(svc, organisation, Role.CLIENT, **fields)
    await index_client(client)
    return client
