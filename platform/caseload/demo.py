"""Demo caseloads for ``lotse demo``: colleagues, shared clients, tools and tasks.

Called by ``lotse.platform.demo`` once an organisation's people exist. Each
demo organisation gets a second therapist with clients of their own, clients
shared between the two therapists, the supervisor linked read-only, a
catalogue of tools assigned at different progress (one archived), open tasks
for a client and for the therapist, and — where the link policy is *client
consent* — one pending link request. Searching outside the caseload is on, and
the two organisations use different link policies so that the demo shows both.

Idempotent like the rest of the demo: everything is looked up before it is
created, and everything is created through the actions (audited).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services
from lotse.platform.caseload.actions import do_link_professional, do_request_link
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.organisations.models import LinkPolicy, Organisation
from lotse.platform.permissions import Actor
from lotse.platform.tasks.actions import do_create_task
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus
from lotse.platform.tools.actions import (
    do_archive_tool,
    do_assign_tool,
    do_create_tool,
    do_record_progress,
)
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind

Person = tuple[str, str, str]                   # local part, first name, last name
ClientRow = tuple[str, str, str, str, str]      # + gender, date of birth
# Who gets which tool: client key, tool title, steps done, archived.
Assignment = tuple[str, str, int, bool]
_WEEK = timedelta(days=7)


@dataclass(frozen=True)
class DemoCaseload:
    link_policy: LinkPolicy
    colleague: Person                            # a second therapist
    # The colleague's clients: the first is shared with the demo therapist, the
    # second has a pending link request from the demo therapist (client consent
    # only), the third is left for the visitor to search for outside the caseload.
    colleague_clients: tuple[ClientRow, ClientRow, ClientRow]
    tools: tuple[tuple[ToolKind, str, str, int], ...]   # kind, title, description, steps
    assignments: tuple[Assignment, ...]
    therapist_task: str                          # a to-do of the demo therapist about the first extra client
    client_task: str                             # what the demo client is asked to do
    request_motivation: str


DEMO_CASELOADS: dict[str, DemoCaseload] = {
    "demo-nl": DemoCaseload(
        link_policy=LinkPolicy.CLIENT_CONSENT,
        colleague=("ruben.meijer", "Ruben", "Meijer"),
        colleague_clients=(
            ("julia.smits", "Julia", "Smits", "female", "1985-10-03"),
            ("bram.de.graaf", "Bram", "de Graaf", "male", "1976-01-16"),
            ("zoe.hendriks", "Zoë", "Hendriks", "female", "2000-07-07"),
        ),
        tools=(
            (ToolKind.MODULE, "Grip op piekeren", "Zes sessies over piekeren en zorgen.", 6),
            (ToolKind.TRAINING, "Ontspanningsoefeningen", "Dagelijkse ademhalings- en spierontspanning.", 10),
            (ToolKind.DIARY, "Slaapdagboek", "Houd twee weken bij hoe u slaapt.", 14),
            (ToolKind.QUESTIONNAIRE, "Intakevragenlijst", "Vragen over klachten en verwachtingen.", 1),
        ),
        assignments=(
            ("client", "Grip op piekeren", 4, False),
            ("client", "Slaapdagboek", 3, False),
            ("client", "Intakevragenlijst", 1, True),
            ("first", "Ontspanningsoefeningen", 0, False),
            ("second", "Grip op piekeren", 6, False),
            ("shared", "Slaapdagboek", 9, False),
        ),
        therapist_task="Evaluatiegesprek plannen na de eerste module.",
        client_task="Vul het slaapdagboek deze week elke ochtend in.",
        request_motivation="Waarneming tijdens de vakantie van de behandelaar",
    ),
    "demo-de": DemoCaseload(
        link_policy=LinkPolicy.SELF_LINK,
        colleague=("katrin.vogel", "Katrin", "Vogel"),
        colleague_clients=(
            ("jana.wolf", "Jana", "Wolf", "female", "1991-02-14"),
            ("tim.braun", "Tim", "Braun", "male", "1969-11-23"),
            ("ayse.yilmaz", "Ayşe", "Yılmaz", "female", "1996-06-18"),
        ),
        tools=(
            (ToolKind.MODULE, "Umgang mit Grübeln", "Sechs Sitzungen zu Grübeln und Sorgen.", 6),
            (ToolKind.TRAINING, "Entspannungstraining", "Tägliche Atem- und Muskelentspannung.", 10),
            (ToolKind.DIARY, "Schlaftagebuch", "Zwei Wochen lang den Schlaf festhalten.", 14),
            (ToolKind.QUESTIONNAIRE, "Aufnahmefragebogen", "Fragen zu Beschwerden und Erwartungen.", 1),
        ),
        assignments=(
            ("client", "Umgang mit Grübeln", 2, False),
            ("client", "Entspannungstraining", 7, False),
            ("client", "Aufnahmefragebogen", 1, True),
            ("first", "Schlaftagebuch", 0, False),
            ("second", "Umgang mit Grübeln", 5, False),
            ("shared", "Entspannungstraining", 10, False),
        ),
        therapist_task="Abschlussgespräch nach dem ersten Modul vereinbaren.",
        client_task="Bitte füllen Sie diese Woche jeden Abend das Entspannungstraining aus.",
        request_motivation="Vertretung während des Urlaubs der Kollegin",
    ),
}

MakeProfessional = Callable[[Services, Organisation, Role, str, str, str, str], Awaitable[Account]]
MakeClient = Callable[[Services, Organisation, Account, str, str, str, str, str, str], Awaitable[Account]]


async def seed_caseload(
    svc: Services, organisation: Organisation, domain: str, people: dict[Role, Account],
    extra_clients: list[Account], password_hash: str, *, make_professional: MakeProfessional,
    make_client: MakeClient,
) -> None:
    """Give a demo organisation its caseloads (see the module docstring); create only what is missing."""
    from lotse.platform.organisations.actions import do_update_settings

    spec = DEMO_CASELOADS.get(organisation.slug)
    if spec is None:
        return
    system = Actor.system(via="cli", reason="demo data")
    await do_update_settings(svc, system, organisation, {"search_outside_caseload": True,
                                                         "link_policy": spec.link_policy.value})
    therapist, supervisor, client = people[Role.THERAPIST], people[Role.SUPERVISOR], people[Role.CLIENT]
    local, first, last = spec.colleague
    colleague = await make_professional(svc, organisation, Role.THERAPIST, f"{local}@{domain}", first, last,
                                        password_hash)
    theirs = [
        await make_client(svc, organisation, colleague, f"{local}@{domain}", first, last, gender, born, password_hash)
        for local, first, last, gender, born in spec.colleague_clients
    ]
    shared, requested = theirs[0], theirs[1]
    first_client, second_client = extra_clients[0], extra_clients[1]

    # Shared clients both ways, and the supervisor read-only on a second client.
    for who, whom, kind in ((shared, therapist, LinkKind.TREATING), (first_client, colleague, LinkKind.TREATING),
                            (second_client, supervisor, LinkKind.SUPERVISING)):
        if not await CaseloadLink.filter(client_id=who.id, professional_id=whom.id).exists():
            await do_link_professional(svc, system, who, whom, kind)

    tools = {}
    for tool_kind, title, description, steps in spec.tools:
        tool = await Tool.get_or_none(organisation_id=organisation.id, title=title)
        if tool is None:
            tool = await do_create_tool(svc, system, organisation, kind=tool_kind, title=title,
                                        description=description, steps=steps)
        tools[title] = tool
    clients = {"client": client, "first": first_client, "second": second_client, "shared": shared}
    for key, title, steps_done, archived in spec.assignments:
        await _assign(svc, system, clients[key], tools[title], colleague if key == "shared" else therapist,
                      steps_done, archived)

    therapist_actor = Actor.of(therapist, via="cli", reason="demo data")
    await _task(svc, therapist_actor, therapist, first_client, spec.therapist_task)
    await _task(svc, therapist_actor, client, client, spec.client_task)
    if spec.link_policy is LinkPolicy.CLIENT_CONSENT:
        await _pending_request(svc, therapist_actor, requested, spec.request_motivation)


async def _assign(svc: Services, system: Actor, client: Account, tool: Tool, supervisor: Account, steps_done: int,
                  archived: bool) -> None:
    assignment = await ToolAssignment.filter(client_id=client.id, tool_id=tool.id).order_by("-id").first()
    if assignment is None:
        assignment = await do_assign_tool(svc, system, client, tool, supervisor=supervisor)
    if assignment.is_archived:
        return
    if assignment.steps_done != steps_done:
        assignment = await do_record_progress(svc, system, client, assignment.id, steps_done)
    if archived:
        await do_archive_tool(svc, system, client, assignment.id)


async def _task(svc: Services, actor: Actor, assignee: Account, client: Account, note: str) -> Any:
    if await Task.filter(kind=TaskKind.FOLLOW_UP, assignee_id=assignee.id, client_id=client.id, note=note,
                         status=TaskStatus.OPEN).exists():
        return
    await do_create_task(svc, actor, kind=TaskKind.FOLLOW_UP, assignee=assignee, client=client, note=note,
                         due_at=svc.now().replace(hour=12, minute=0, second=0, microsecond=0) + _WEEK)


async def _pending_request(svc: Services, actor: Actor, client: Account, motivation: str) -> None:
    if await CaseloadLink.filter(client_id=client.id, professional_id=actor.account_id).exists():
        return  # the visitor accepted it: nothing to restore
    if await LinkRequest.filter(client_id=client.id, professional_id=actor.account_id,
                                status=LinkRequestStatus.PENDING, expires_at__gt=svc.now()).exists():
        return
    await do_request_link(svc, actor, client, motivation)

