"""The demo's caseloads: what the demo shows, and the same data when seeded twice."""

from __future__ import annotations

from lotse.platform.accounts.models import Account, Role
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest, LinkRequestStatus
from lotse.platform.demo import seed_demo
from lotse.platform.organisations.models import LinkPolicy, Organisation
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus
from lotse.platform.tools.models import ToolAssignment


async def _snapshot():
    links = await CaseloadLink.all().order_by("client_id", "professional_id").values_list(
        "client_id", "professional_id", "kind")
    tools = await ToolAssignment.all().order_by("id").values_list("client_id", "tool_id", "supervisor_id",
                                                                  "steps_done", "archived_at")
    tasks = await Task.all().order_by("id").values_list("assignee_id", "client_id", "kind", "status", "note")
    requests = await LinkRequest.all().order_by("id").values_list("client_id", "professional_id", "status")
    orgs = await Organisation.all().order_by("slug").values_list("slug", "search_outside_caseload", "link_policy")
    return links, tools, tasks, requests, orgs


async def test_demo_caseloads_show_the_features_and_seed_twice_the_same(svc):
    await seed_demo(svc)
    first = await _snapshot()
    await seed_demo(svc)
    assert await _snapshot() == first

    policies = {slug: (outside, policy) for slug, outside, policy in first[4]}
    assert policies["demo-nl"] == (True, LinkPolicy.CLIENT_CONSENT)
    assert policies["demo-de"] == (True, LinkPolicy.SELF_LINK)

    for slug, domain in (("demo-nl", "de-linde.example"), ("demo-de", "lindenhof.example")):
        organisation = await Organisation.get(slug=slug)
        therapists = await Account.filter(organisation_id=organisation.id, role=Role.THERAPIST)
        assert len(therapists) >= 2
        # Clients shared by two therapists.
        treating: dict[int, set[int]] = {}
        for link in await CaseloadLink.filter(kind=LinkKind.TREATING, client__organisation_id=organisation.id):
            treating.setdefault(link.client_id, set()).add(link.professional_id)
        assert sum(1 for people in treating.values() if len(people) >= 2) >= 2
        # The supervisor is linked read-only to more than one client.
        supervisor = await Account.get(organisation_id=organisation.id, role=Role.SUPERVISOR)
        assert await CaseloadLink.filter(professional_id=supervisor.id, kind=LinkKind.SUPERVISING).count() >= 2
        # Tools at different progress, one archived.
        assignments = await ToolAssignment.filter(client__organisation_id=organisation.id).select_related("tool")
        assert len({a.progress(a.tool.steps) for a in assignments}) >= 4
        assert sum(1 for a in assignments if a.is_archived) == 1
        # Open tasks for a client and for a professional.
        client = await Account.get(email__startswith=("client@" if slug == "demo-nl" else "klient@"),
                                   email__endswith=domain)
        assert await Task.filter(assignee_id=client.id, status=TaskStatus.OPEN).exists()
        assert await Task.filter(assignee__role=Role.THERAPIST, organisation_id=organisation.id,
                                 status=TaskStatus.OPEN).exists()

    nl = await Organisation.get(slug="demo-nl")
    pending = await LinkRequest.filter(organisation_id=nl.id, status=LinkRequestStatus.PENDING).select_related("client")
    assert len(pending) == 1
    assert await Task.filter(assignee_id=pending[0].client.id, kind=TaskKind.LINK_REQUEST,
                             status=TaskStatus.OPEN).exists()
    de = await Organisation.get(slug="demo-de")
    assert not await LinkRequest.filter(organisation_id=de.id).exists()
