"""Demo data for ``lotse demo``: a Dutch and a German organisation with one account per role.

Idempotent: every organisation is found by its slug and every account by its
e-mail address; only what is missing is created, and the states the demo
relies on (a deactivated client, an externally managed one) are restored, so
running it twice gives the same data. Everything goes through the same
actions as the app (as the system actor, so it is audited); only the
passwords are set directly, hashed once, because nobody opens the welcome
mails of a demo. The names are made up and every address is under the
reserved ``.example`` domain.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.accounts.passwords import hash_password
from lotse.platform.actions import Services
from lotse.platform.permissions import Actor

DEMO_PASSWORD = "Lotse-demo-2026!"  # noqa: S105 -- public on purpose: printed by `lotse demo`


@dataclass(frozen=True)
class DemoOrganisation:
    slug: str
    name: str
    language: str
    domain: str
    # role → (local part, first name, last name)
    people: dict[Role, tuple[str, str, str]]
    # extra clients of the therapist: (local part, first, last, gender, date of birth)
    clients: tuple[tuple[str, str, str, str, str], ...]
    deactivated: tuple[str, str, str, str, str]
    external: tuple[str, str, str, str, str, str]  # + external_ref


DUTCH = DemoOrganisation(
    slug="demo-nl", name="GGZ De Linde (demo)", language="nl", domain="de-linde.example",
    people={
        Role.CLIENT: ("client", "Noor", "van Dijk"),
        Role.THERAPIST: ("hulpverlener", "Sanne", "de Vries"),
        Role.SUPERVISOR: ("supervisor", "Pieter", "Bakker"),
        Role.SECRETARY: ("secretaresse", "Fatima", "El Amrani"),
        Role.APP_ADMIN: ("beheer", "Joost", "Mulder"),
        Role.CONTENT_EDITOR: ("redactie", "Lieke", "Smit"),
    },
    clients=(
        ("daan.visser", "Daan", "Visser", "male", "1987-06-14"),
        ("emma.jansen", "Emma", "Jansen", "female", "1995-11-02"),
        ("sem.de.boer", "Sem", "de Boer", "male", "2001-03-27"),
    ),
    deactivated=("lotte.bos", "Lotte", "Bos", "female", "1979-02-28"),
    external=("milan.peters", "Milan", "Peters", "male", "1990-08-09", "EPD-100234"),
)

GERMAN = DemoOrganisation(
    slug="demo-de", name="Praxis am Lindenhof (Demo)", language="de", domain="lindenhof.example",
    people={
        Role.CLIENT: ("klient", "Lena", "Hoffmann"),
        Role.THERAPIST: ("therapeutin", "Miriam", "Keller"),
        Role.SUPERVISOR: ("supervision", "Thomas", "Wagner"),
        Role.SECRETARY: ("sekretariat", "Aylin", "Demir"),
        Role.APP_ADMIN: ("admin", "Jonas", "Becker"),
        Role.CONTENT_EDITOR: ("redaktion", "Clara", "Schulz"),
    },
    clients=(
        ("felix.weber", "Felix", "Weber", "male", "1984-09-19"),
        ("sophie.krueger", "Sophie", "Krüger", "female", "1998-01-30"),
        ("paul.neumann", "Paul", "Neumann", "male", "1972-05-05"),
    ),
    deactivated=("marie.schmitt", "Marie", "Schmitt", "female", "1989-12-12"),
    external=("lukas.fischer", "Lukas", "Fischer", "male", "1993-04-21", "KIS-55012"),
)

SERVICEDESK_ORG = ("lotse-servicedesk", "Lotse servicedesk (demo)", "nl")
SERVICEDESK = ("servicedesk@lotse.example", "Robin", "Servicedesk")


def _services() -> Services:
    from lotse.platform.clock import SystemClock
    from lotse.platform.config import load_settings
    from lotse.platform.events import InProcessBus
    from lotse.platform.i18n import Translations

    settings = load_settings()
    return Services(settings=settings, clock=SystemClock(), bus=InProcessBus(),
                    translations=Translations(settings.locales_dir))


async def seed_demo(svc: Services | None = None) -> dict[str, list[tuple[str, str]]]:
    """Create what is missing of the demo data; return organisation name → [(role, e-mail)]."""
    svc = svc or _services()
    password_hash = hash_password(DEMO_PASSWORD)
    logins: dict[str, list[tuple[str, str]]] = {}
    for spec in (DUTCH, GERMAN):
        logins[spec.name] = await _seed_organisation(svc, spec, password_hash)
    organisation = await _organisation(svc, *SERVICEDESK_ORG)
    email, first, last = SERVICEDESK
    await _professional(svc, organisation, Role.SERVICEDESK, email, first, last, password_hash)
    logins[organisation.name] = [(Role.SERVICEDESK.value, email)]
    return logins


async def _organisation(svc: Services, slug: str, name: str, language: str) -> Any:
    from lotse.platform.organisations.actions import do_create_organisation
    from lotse.platform.organisations.models import Organisation

    found = await Organisation.get_or_none(slug=slug)
    if found is not None:
        return found
    return await do_create_organisation(svc, Actor.system(via="cli", reason="demo data"), slug=slug, name=name,
                                        settings={"default_language": language})


async def _set_password(account: Account, password_hash: str, svc: Services) -> None:
    if account.password_hash is None:
        await Account.filter(id=account.id).update(password_hash=password_hash, password_changed_at=svc.now())
        account.password_hash = password_hash


async def _professional(svc: Services, organisation: Any, role: Role, email: str, first: str, last: str,
                        password_hash: str) -> Account:
    from lotse.platform.accounts.actions import do_create_professional

    account = await Account.get_or_none(email=email)
    if account is None:
        account = await do_create_professional(
            svc, Actor.system(via="cli", reason="demo data"), organisation,
            {"role": role.value, "email": email, "first_name": first, "last_name": last}, send_welcome=False,
        )
    await _set_password(account, password_hash, svc)
    return account


async def _client(svc: Services, organisation: Any, therapist: Account, email: str, first: str, last: str,
                  gender: str, born: str, password_hash: str) -> Account:
    from lotse.platform.accounts.actions import do_create_client

    account = await Account.get_or_none(email=email)
    if account is None:
        account = await do_create_client(
            svc, Actor.system(via="cli", reason="demo data"), organisation,
            {"email": email, "first_name": first, "last_name": last, "gender": gender, "date_of_birth": born},
            therapist_id=therapist.id, send_welcome=False,
        )
    await _set_password(account, password_hash, svc)
    return account


async def _seed_organisation(svc: Services, spec: DemoOrganisation, password_hash: str) -> list[tuple[str, str]]:
    from lotse.platform.accounts.actions import do_deactivate_account, do_import_accounts
    from lotse.platform.caseload.actions import do_link_professional
    from lotse.platform.caseload.models import CaseloadLink, LinkKind

    system = Actor.system(via="cli", reason="demo data")
    organisation = await _organisation(svc, spec.slug, spec.name, spec.language)
    rows: list[tuple[str, str]] = []
    people: dict[Role, Account] = {}
    for role in (Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.APP_ADMIN, Role.CONTENT_EDITOR):
        local, first, last = spec.people[role]
        people[role] = await _professional(svc, organisation, role, f"{local}@{spec.domain}", first, last,
                                           password_hash)
    therapist = people[Role.THERAPIST]
    local, first, last = spec.people[Role.CLIENT]
    client = await _client(svc, organisation, therapist, f"{local}@{spec.domain}", first, last, "female",
                           "1992-07-21", password_hash)
    people[Role.CLIENT] = client
    if not await CaseloadLink.filter(client_id=client.id, professional_id=people[Role.SUPERVISOR].id).exists():
        await do_link_professional(svc, system, client, people[Role.SUPERVISOR], LinkKind.SUPERVISING)
    extra_clients = [
        await _client(svc, organisation, therapist, f"{local}@{spec.domain}", first, last, gender, born, password_hash)
        for local, first, last, gender, born in spec.clients
    ]

    local, first, last, gender, born = spec.deactivated
    gone = await _client(svc, organisation, therapist, f"{local}@{spec.domain}", first, last, gender, born,
                         password_hash)
    if gone.status is AccountStatus.ACTIVE:
        await do_deactivate_account(svc, system, gone)

    local, first, last, gender, born, ref = spec.external
    await do_import_accounts(svc, system, organisation, [{
        "external_ref": ref, "email": f"{local}@{spec.domain}", "first_name": first, "last_name": last,
        "gender": gender, "date_of_birth": born, "therapist_email": therapist.email,
    }])
    external = await Account.get(external_ref=ref, organisation_id=organisation.id)
    await _set_password(external, password_hash, svc)

    from lotse.platform.caseload.demo import seed_caseload

    await seed_caseload(svc, organisation, spec.domain, people, extra_clients, password_hash,
                        make_professional=_professional, make_client=_client)
    from lotse.platform.conversations.demo import seed_conversations

    await seed_conversations(svc, organisation, people, spec.language)

    for role in (Role.CLIENT, Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.APP_ADMIN, Role.CONTENT_EDITOR):
        rows.append((role.value, people[role].email))
    return rows
