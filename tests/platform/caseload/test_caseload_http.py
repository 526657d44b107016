"""The caseload over HTTP: the access matrix, outside search, each link policy end to end."""

from __future__ import annotations

import re

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.caseload.models import CaseloadLink, LinkKind
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.organisations.models import LinkPolicy, Organisation
from lotse.platform.tools.models import Tool, ToolAssignment, ToolKind
from tests.factories import link, make_account, make_client, make_org

MOTIVATION = "Client phoned: her e-mail address already exists"
DOSSIER_PAGES = ["", "/details", "/history", "/tasks", "/professionals", "/tools"]
ROLES = ["client itself", "linked therapist", "unlinked therapist", "linked supervisor", "secretary", "app admin",
         "other client", "foreign secretary"]


@pytest.fixture
async def world(svc):
    org = await make_org(svc, search_outside_caseload=True)
    client = await make_client(svc, org, first_name="Anaïs", last_name="de Vries")
    therapist = await make_account(svc, org, Role.THERAPIST, first_name="Tom", last_name="Bakker")
    supervisor = await make_account(svc, org, Role.SUPERVISOR, first_name="Sara", last_name="Smit")
    await link(svc, client, therapist)
    await link(svc, client, supervisor, LinkKind.SUPERVISING)
    tool = await Tool.create(organisation=org, kind=ToolKind.DIARY, title="Sleep diary", steps=10, created_at=svc.now())
    await ToolAssignment.create(tool=tool, client=client, supervisor=therapist, steps_done=4,
                                assigned_at=svc.now(), updated_at=svc.now())
    await Tool.create(organisation=org, kind=ToolKind.MODULE, title="Worry less", steps=6, created_at=svc.now())
    foreign = await make_org(svc)
    people = {
        "client itself": client,
        "linked therapist": therapist,
        "unlinked therapist": await make_account(svc, org, Role.THERAPIST, first_name="Uwe", last_name="Ungebunden"),
        "linked supervisor": supervisor,
        "secretary": await make_account(svc, org, Role.SECRETARY, first_name="Siska", last_name="Secretaris"),
        "app admin": await make_account(svc, org, Role.APP_ADMIN),
        "other client": await make_client(svc, org),
        "foreign secretary": await make_account(svc, foreign, Role.SECRETARY),
    }
    return {"org": org, "client": client, "therapist": therapist, "supervisor": supervisor, "people": people,
            "tool": tool}


def _expected_page(role: str, page: str) -> int:
    if role in ("linked therapist", "linked supervisor"):
        return 200
    if role == "secretary":
        return 403 if page == "/tools" else 200
    return 403


@pytest.mark.parametrize("page", DOSSIER_PAGES)
@pytest.mark.parametrize("role", ROLES)
async def test_dossier_access_matrix(svc, world, sign_in_as, role, page):
    client = await sign_in_as(world["people"][role])
    response = await client.get(f"/clients/{world['client'].id}{page}")
    expected = _expected_page(role, page)
    if role == "foreign secretary":
        expected = 403
    assert response.status_code == expected, (role, page)
    main = (await response.get_data(as_text=True)).split("<main", 1)[1]
    if expected == 200:
        assert "Anaïs de Vries" in main
        assert await AuditEvent.filter(action="caseload.view", event_type=AuditType.READ,
                                       subject_id=world["client"].id, outcome=Outcome.SUCCESS).exists()
        if page == "":
            # Secretaries see no tool content.
            assert ("Sleep diary" in main) is (role != "secretary")
    else:
        assert "Anaïs" not in main
        assert await AuditEvent.filter(subject_id=world["client"].id, outcome=Outcome.REFUSED).exists()


async def test_dossier_needs_sign_in(client, world):
    response = await client.get(f"/clients/{world['client'].id}")
    assert response.status_code == 302
    assert "/sign-in" in response.headers["Location"]


def _action_cases():
    allowed = {
        "link": {"linked therapist", "secretary"},
        "assign": {"linked therapist"},
        "archive": {"linked therapist"},
        "unlink colleague": {"linked therapist", "secretary"},
    }
    return [(action, role, role in allowed[action]) for action in allowed for role in ROLES]


@pytest.mark.parametrize(("action", "role", "permitted"), _action_cases())
async def test_caseload_action_matrix(svc, world, sign_in_as, post_form, action, role, permitted):
    client = await sign_in_as(world["people"][role])
    cid = world["client"].id
    newcomer = await make_account(svc, world["org"], Role.THERAPIST)
    assignment = await ToolAssignment.get(client_id=cid)
    other_tool = await Tool.get(title="Worry less")
    if action == "link":
        response = await post_form(client, f"/clients/{cid}/professionals", professional=str(newcomer.id), kind="treating")
        done = await CaseloadLink.filter(client_id=cid, professional_id=newcomer.id).exists()
    elif action == "assign":
        response = await post_form(client, f"/clients/{cid}/tools", tool=str(other_tool.id))
        done = await ToolAssignment.filter(client_id=cid, tool_id=other_tool.id).exists()
    elif action == "archive":
        response = await post_form(client, f"/clients/{cid}/tools/{assignment.id}/archive")
        done = (await ToolAssignment.get(id=assignment.id)).archived_at is not None
    else:
        colleague = await make_account(svc, world["org"], Role.THERAPIST)
        await link(svc, world["client"], colleague)
        response = await post_form(client, f"/clients/{cid}/professionals/{colleague.id}/unlink")
        done = not await CaseloadLink.filter(client_id=cid, professional_id=colleague.id).exists()
    assert done is permitted, (action, role)
    assert response.status_code == (302 if permitted else 403), (action, role)


async def _outside_search(client, post_form, q, motivation=MOTIVATION):
    return await post_form(client, "/caseload/outside", q=q, motivation=motivation)


def _search_id(html: str, client_id: int) -> str:
    match = re.search(rf'/clients/{client_id}/outside\?search=(\d+)', html)
    assert match, html
    return match.group(1)


async def test_inside_search_by_name_part_accent_and_case_insensitive(svc, world, sign_in_as):
    client = await sign_in_as(world["therapist"])
    for q in ("anais", "VRIES", "de vr", "17-05-1990", world["client"].email.upper()):
        html = await (await client.get("/caseload", query_string={"q": q})).get_data(as_text=True)
        assert "Anaïs de Vries" in html, q
    html = await (await client.get("/caseload", query_string={"q": "ungebunden"})).get_data(as_text=True)
    assert "Anaïs" not in html
    rows = await AuditEvent.filter(action="caseload.search", event_type=AuditType.SEARCH, actor_id=world["therapist"].id)
    assert len(rows) == 6


async def test_outside_search_without_motivation_is_refused(svc, world, sign_in_as, post_form):
    client = await sign_in_as(world["people"]["unlinked therapist"])
    response = await _outside_search(client, post_form, "vries", motivation="   short ")
    assert response.status_code == 422
    html = await response.get_data(as_text=True)
    assert 'aria-invalid="true"' in html
    assert "Anaïs" not in html
    assert not await AuditEvent.filter(action="caseload.search_outside", outcome=Outcome.SUCCESS).exists()


async def test_outside_search_is_audited_with_motivation_and_shows_little(svc, world, sign_in_as, post_form):
    me = world["people"]["unlinked therapist"]
    client = await sign_in_as(me)
    response = await _outside_search(client, post_form, "anaïs")
    assert response.status_code == 200
    html = await response.get_data(as_text=True)
    assert "Anaïs de Vries" in html
    assert "Tom Bakker" in html
    assert world["client"].email not in html
    assert "Sleep diary" not in html
    row = await AuditEvent.filter(action="caseload.search_outside").get()
    assert (row.event_type, row.reason, row.actor_id) == (AuditType.EMERGENCY_ACCESS, MOTIVATION, me.id)
    # Opening a result is emergency access too, with the same motivation.
    search_id = _search_id(html, world["client"].id)
    page = await client.get(f"/clients/{world['client'].id}/outside", query_string={"search": search_id})
    assert page.status_code == 200
    opened = await AuditEvent.filter(action="caseload.open_outside").get()
    assert (opened.event_type, opened.reason, opened.subject_id) == (
        AuditType.EMERGENCY_ACCESS, MOTIVATION, world["client"].id)
    # Without a search of one's own, the page stays closed; the full dossier too.
    for forged in (str(opened.id), str(int(search_id) + 1000)):
        response = await client.get(f"/clients/{world['client'].id}/outside", query_string={"search": forged})
        assert response.status_code == 403
    colleague = await sign_in_as(world["people"]["linked supervisor"])
    response = await colleague.get(f"/clients/{world['client'].id}/outside", query_string={"search": search_id})
    assert response.status_code == 403
    assert (await client.get(f"/clients/{world['client'].id}")).status_code == 403


async def test_an_outside_search_opens_only_the_clients_it_found(svc, world, sign_in_as, post_form):
    """One motivated search does not open every client of the organisation for an hour."""
    await Organisation.filter(id=world["org"].id).update(link_policy=LinkPolicy.SELF_LINK)
    other = await make_client(svc, world["org"], first_name="Bram", last_name="Jansen")
    me = world["people"]["unlinked therapist"]
    client = await sign_in_as(me)
    html = await (await _outside_search(client, post_form, "vries")).get_data(as_text=True)
    search_id = _search_id(html, world["client"].id)
    assert "Bram Jansen" not in html
    page = await client.get(f"/clients/{other.id}/outside", query_string={"search": search_id})
    assert page.status_code == 403
    assert "Bram" not in await page.get_data(as_text=True)
    refused = await AuditEvent.filter(action="caseload.open_outside", subject_id=other.id).get()
    assert (refused.event_type, refused.outcome, refused.details["search_id"]) == (
        AuditType.EMERGENCY_ACCESS, Outcome.REFUSED, int(search_id))
    assert not await AuditEvent.filter(subject_id=other.id, outcome=Outcome.SUCCESS).exists()
    # Nor may its motivation link the actor to someone else.
    response = await post_form(client, f"/clients/{other.id}/self-link", search=search_id)
    assert response.status_code == 403
    assert not await CaseloadLink.filter(client_id=other.id, professional_id=me.id).exists()
    assert await AuditEvent.filter(action="caseload.self_link", subject_id=other.id,
                                   outcome=Outcome.REFUSED).exists()
    # The client it found opens, under that search's motivation.
    found = await client.get(f"/clients/{world['client'].id}/outside", query_string={"search": search_id})
    assert found.status_code == 200


async def test_outside_search_audit_row_holds_no_search_text(svc, world, sign_in_as, post_form):
    client = await sign_in_as(world["people"]["unlinked therapist"])
    assert (await _outside_search(client, post_form, "de vries 17-05-1990")).status_code == 200
    row = await AuditEvent.filter(action="caseload.search_outside").get()
    assert row.details == {"terms": 2, "by_date": True, "include_inactive": False, "results": 1,
                           "hits": [world["client"].id]}
    await client.get("/caseload", query_string={"q": "vries"})
    inside = await AuditEvent.filter(action="caseload.search").get()
    assert inside.details == {"terms": 1, "by_date": False, "include_inactive": False, "results": 0}
    assert "vries" not in repr(inside.details) + repr(row.details) + row.reason.lower()


@pytest.mark.parametrize("motivation", [
    "Looking for Anaïs, her address exists",        # a search term
    "A new client, born 17-05-1990, registered",    # a date of birth
    "Mail to someone@example.org bounced back",     # an e-mail address
])
async def test_a_motivation_that_names_someone_is_refused(svc, world, sign_in_as, post_form, motivation):
    client = await sign_in_as(world["people"]["unlinked therapist"])
    response = await _outside_search(client, post_form, "anais", motivation=motivation)
    assert response.status_code == 422
    assert 'aria-invalid="true"' in await response.get_data(as_text=True)
    assert not await AuditEvent.filter(action="caseload.search_outside").exists()


async def test_outside_search_impossible_where_disallowed(svc, world, sign_in_as, post_form):
    await Organisation.filter(id=world["org"].id).update(search_outside_caseload=False)
    client = await sign_in_as(world["people"]["unlinked therapist"])
    assert (await client.get("/caseload/outside")).status_code == 403
    assert (await _outside_search(client, post_form, "vries")).status_code == 403
    listing = await (await client.get("/caseload")).get_data(as_text=True)
    assert "/caseload/outside" not in listing
    api = await client.post("/api/v1/caseload/search-outside", json={"q": "vries", "motivation": MOTIVATION})
    assert api.status_code == 403
    assert (await api.get_json())["code"] == "not_permitted"


async def _found_outside(world, sign_in_as, post_form, policy):
    await Organisation.filter(id=world["org"].id).update(link_policy=policy)
    me = world["people"]["unlinked therapist"]
    client = await sign_in_as(me)
    html = await (await _outside_search(client, post_form, "de vries")).get_data(as_text=True)
    search_id = _search_id(html, world["client"].id)
    page = await client.get(f"/clients/{world['client'].id}/outside", query_string={"search": search_id})
    return me, client, search_id, await page.get_data(as_text=True)


async def test_read_only_policy_points_to_linked_professionals_and_secretaries(svc, world, sign_in_as, post_form):
    _me, client, search_id, html = await _found_outside(world, sign_in_as, post_form, LinkPolicy.READ_ONLY)
    assert "Tom Bakker" in html
    assert "Siska Secretaris" in html
    assert "/self-link" not in html
    assert "/link-request" not in html
    response = await post_form(client, f"/clients/{world['client'].id}/self-link", search=search_id)
    assert response.status_code == 403


async def test_self_link_policy_end_to_end(svc, world, sign_in_as, post_form):
    me, client, search_id, html = await _found_outside(world, sign_in_as, post_form, LinkPolicy.SELF_LINK)
    assert f"/clients/{world['client'].id}/self-link" in html
    response = await post_form(client, f"/clients/{world['client'].id}/self-link", search=search_id)
    assert response.status_code == 302
    assert await CaseloadLink.filter(client_id=world["client"].id, professional_id=me.id).exists()
    assert (await AuditEvent.filter(action="caseload.self_link").get()).reason == MOTIVATION
    assert (await client.get(f"/clients/{world['client'].id}")).status_code == 200


@pytest.mark.parametrize("answer", ["accept", "reject"])
async def test_client_consent_policy_end_to_end(svc, world, sign_in_as, post_form, answer):
    me, client, search_id, _html = await _found_outside(world, sign_in_as, post_form, LinkPolicy.CLIENT_CONSENT)
    response = await post_form(client, f"/clients/{world['client'].id}/link-request", search=search_id)
    assert response.status_code == 302
    assert await OutboxMessage.filter(kind="link_request", recipient=world["client"].email).exists()
    # The client, in their own session, sees the request and answers it.
    own = await sign_in_as(world["client"], language="de")
    page = await (await own.get("/me/requests")).get_data(as_text=True)
    assert "Uwe Ungebunden" in page
    tasks_page = await (await own.get("/tasks")).get_data(as_text=True)
    assert "Uwe Ungebunden" in tasks_page
    request_id = re.search(r'/me/requests/(\d+)', page).group(1)
    assert (await post_form(own, f"/me/requests/{request_id}", answer=answer)).status_code == 302
    # The professional learns the answer (task and mail) and can, or cannot, open the dossier.
    mine = await (await client.get("/tasks")).get_data(as_text=True)
    assert "Anaïs de Vries" in mine
    assert await OutboxMessage.filter(kind="link_request_answered", recipient=me.email).exists()
    dossier = await client.get(f"/clients/{world['client'].id}")
    assert dossier.status_code == (200 if answer == "accept" else 403)
    # The client's contact history tells what happened, in plain words.
    history = await own.get("/me/history")
    assert history.status_code == 200


async def test_unlink_page_hands_over_tools(svc, world, sign_in_as, post_form):
    colleague = world["people"]["unlinked therapist"]
    await link(svc, world["client"], colleague)
    client = await sign_in_as(world["therapist"])
    cid = world["client"].id
    page = await client.get(f"/clients/{cid}/professionals/{world['therapist'].id}/unlink")
    assert "Sleep diary" in await page.get_data(as_text=True)
    refused = await post_form(client, f"/clients/{cid}/professionals/{world['therapist'].id}/unlink")
    assert refused.status_code == 409
    done = await post_form(client, f"/clients/{cid}/professionals/{world['therapist'].id}/unlink",
                           tools=str(colleague.id))
    assert done.status_code == 302
    assert (await ToolAssignment.get(client_id=cid)).supervisor_id == colleague.id


async def test_unlink_page_unlinks_tools(svc, world, sign_in_as, post_form):
    client = await sign_in_as(world["people"]["secretary"])
    cid = world["client"].id
    done = await post_form(client, f"/clients/{cid}/professionals/{world['therapist'].id}/unlink", tools="unlink")
    assert done.status_code == 302
    assert (await ToolAssignment.get(client_id=cid)).supervisor_id is None


async def test_colleagues_page_filters_secretaries(svc, world, sign_in_as):
    client = await sign_in_as(world["therapist"])
    html = await (await client.get("/colleagues", query_string={"role": "secretary"})).get_data(as_text=True)
    assert "Siska Secretaris" in html
    assert "Sara Smit" not in html
    assert (await (await sign_in_as(world["client"])).get("/colleagues")).status_code == 403


async def test_api_search_inside(svc, world, sign_in_as):
    client = await sign_in_as(world["therapist"])
    body = await (await client.get("/api/v1/caseload/search", query_string={"q": "anais"})).get_json()
    assert [hit["name"] for hit in body["results"]] == ["Anaïs de Vries"]


async def test_a_refused_link_does_not_show_the_dossier(svc, world, sign_in_as, post_form):
    """Re-rendering the form after an error must not bypass the dossier's access check."""
    stranger = await make_account(svc, await make_org(svc), Role.SECRETARY)
    client = await sign_in_as(stranger)
    response = await post_form(client, f"/clients/{world['client'].id}/professionals", professional="", kind="treating")
    assert response.status_code == 403
    assert "Anaïs" not in (await response.get_data(as_text=True))


def test_caseload_views_read_tasks_through_the_tasks_queries():
    """Thin views: the pages read tasks through ``lotse.platform.tasks.queries``, never the model."""
    import ast
    import inspect

    from lotse.platform.caseload import views

    imported = {
        node.module for node in ast.walk(ast.parse(inspect.getsource(views)))
        if isinstance(node, ast.ImportFrom) and node.module
    }
    assert "lotse.platform.tasks.models" not in imported
