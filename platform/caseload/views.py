"""Pages of the caseload: client list and searches, the client dossier, professionals,
and the client's own link requests and contact history.

Thin views: each reads its input, calls one query or action, renders. Access
is decided in ``queries.py`` and ``actions.py``, never here.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, flash, redirect, request, url_for

from lotse.platform.accounts.models import Account, Role
from lotse.platform.caseload import actions, queries
from lotse.platform.caseload.models import LinkKind, LinkRequest
from lotse.platform.errors import ConflictError, NotFoundError, ValidationError
from lotse.platform.i18n import _, _l
from lotse.platform.organisations.models import LinkPolicy, Organisation
from lotse.platform.permissions import Permission, allowed
from lotse.platform.tasks.queries import client_tasks, describe_task, my_tasks
from lotse.platform.tools.actions import do_archive_tool, do_assign_tool
from lotse.platform.tools.models import Tool, ToolKind
from lotse.platform.web import actor, current_account, form_data, render, services, signed_in

blueprint = Blueprint("caseload", __name__)

PROFESSIONAL_PAGES = (Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY)
DOSSIER_PAGES = ("dashboard", "details", "history", "tasks", "professionals", "tools")


def _flag(value: str | None) -> bool:
    return value in ("1", "on", "true", "yes")


async def _organisation() -> Organisation:
    return await Organisation.get(id=current_account().organisation_id)  # type: ignore[union-attr]


# --- The client list and searches -------------------------------------------------


@blueprint.get("/caseload")
@signed_in(PROFESSIONAL_PAGES)
async def client_list() -> Any:
    """My clients, searchable by name, e-mail, client ID or date of birth."""
    q = request.args.get("q", "")
    include_inactive = _flag(request.args.get("inactive"))
    errors: dict[str, Any] = {}
    result = None
    try:
        result = await queries.search_caseload(services(), actor(), q, include_inactive=include_inactive)
    except ValidationError as error:
        errors = error.fields
    organisation = await _organisation()
    outside = await allowed(actor(), Permission.CASELOAD_SEARCH_OUTSIDE, organisation)
    return await render("caseload/list.html", result=result, q=q, include_inactive=include_inactive,
                        errors=errors, outside_allowed=outside)


@blueprint.route("/caseload/outside", methods=["GET", "POST"])
@signed_in(PROFESSIONAL_PAGES)
async def outside_search() -> Any:
    """Search beyond the caseload: only where allowed, and only with a motivation."""
    organisation = await _organisation()
    svc = services()
    if not await allowed(actor(), Permission.CASELOAD_SEARCH_OUTSIDE, organisation):
        # Let the query refuse (and audit the refusal).
        await queries.search_outside_caseload(svc, actor(), "", "")
    values = {"q": "", "motivation": "", "inactive": ""}
    errors: dict[str, Any] = {}
    result = None
    status = 200
    if request.method == "POST":
        form = await form_data()
        values.update({k: form.get(k, "") for k in values})
        try:
            result = await queries.search_outside_caseload(
                svc, actor(), values["q"], values["motivation"], include_inactive=_flag(values["inactive"]))
        except ValidationError as error:
            errors, status = error.fields, 422
    return await render("caseload/outside.html", status, values=values, errors=errors, result=result,
                        organisation=organisation)


@blueprint.get("/clients/<int:client_id>/outside")
@signed_in(PROFESSIONAL_PAGES)
async def outside_view(client_id: int) -> Any:
    """A client found outside the caseload: who is linked, and what the link policy lets you do."""
    search_id = request.args.get("search", "")
    view = await queries.open_from_outside(services(), actor(), client_id, int(search_id) if search_id.isdigit() else 0)
    if view.linked:
        return redirect(url_for("caseload.dossier", client_id=client_id))
    secretaries = await queries.list_professionals(services(), actor(), Role.SECRETARY)
    return await render("caseload/outside_client.html", view=view, LinkPolicy=LinkPolicy, secretaries=secretaries,
                        can_self_link=await allowed(actor(), Permission.CASELOAD_SELF_LINK, view.client),
                        can_request=await allowed(actor(), Permission.CASELOAD_REQUEST_LINK, view.client))


async def _motivation_of_search(form: dict[str, str], client_id: int, action: str) -> tuple[str, int]:
    search_id = form.get("search", "")
    row = await queries.outside_search_for(services(), actor(), int(search_id) if search_id.isdigit() else 0,
                                           client_id, action)
    return row.reason, row.id


@blueprint.post("/clients/<int:client_id>/self-link")
@signed_in([Role.THERAPIST])
async def self_link(client_id: int) -> Any:
    form = await form_data()
    motivation, _search = await _motivation_of_search(form, client_id, "caseload.self_link")
    client = await queries.get_client(client_id)
    await actions.do_self_link(services(), actor(), client, motivation)
    await flash(_("You are now linked to this client."), "ok")
    return redirect(url_for("caseload.dossier", client_id=client_id))


@blueprint.post("/clients/<int:client_id>/link-request")
@signed_in([Role.THERAPIST])
async def link_request(client_id: int) -> Any:
    form = await form_data()
    motivation, search = await _motivation_of_search(form, client_id, "caseload.request_link")
    client = await queries.get_client(client_id)
    await actions.do_request_link(services(), actor(), client, motivation)
    await flash(_("Your link request has been sent. You will get a task when the client answers."), "ok")
    return redirect(url_for("caseload.outside_view", client_id=client_id, search=search))


# --- The dossier -------------------------------------------------------------------


async def _dossier(client_id: int, page: str, status: int = 200, **context: Any) -> Any:
    # Always through open_dossier, also when a POST handler re-renders a page
    # after an error: the page shows the dossier, so it needs the dossier right.
    context.pop("client", None)
    client = await queries.open_dossier(services(), actor(), client_id, page)
    me = actor()
    context.setdefault("errors", {})
    return await render(
        f"caseload/dossier_{page}.html", status, client=client, page=page,
        can_tools=await allowed(me, Permission.CLIENT_TOOLS_VIEW, client),
        can_link=await allowed(me, Permission.CASELOAD_LINK, client),
        can_assign=await allowed(me, Permission.TOOL_ASSIGN, client),
        can_manage=await allowed(me, Permission.CLIENT_MANAGE, client),
        professionals=await queries.professionals_of(client),
        **context,
    )


@blueprint.get("/clients/<int:client_id>")
@signed_in()
async def dossier(client_id: int) -> Any:
    client = await queries.open_dossier(services(), actor(), client_id, "dashboard")
    tools = []
    if await allowed(actor(), Permission.CLIENT_TOOLS_VIEW, client):
        tools = [t for t in await queries.client_tools(services(), actor(), client) if not t.is_archived]
    return await _dossier(client_id, "dashboard", client=client, tools=tools)


@blueprint.get("/clients/<int:client_id>/details")
@signed_in()
async def details(client_id: int) -> Any:
    """The account's details; editing and the account buttons live on the account page."""
    return await _dossier(client_id, "details", account_url=url_for("accounts.account", account_id=client_id))


@blueprint.get("/clients/<int:client_id>/history")
@signed_in()
async def history(client_id: int) -> Any:
    client = await queries.open_dossier(services(), actor(), client_id, "history")
    rows = await queries.contact_history(services(), actor(), client)
    return await _dossier(client_id, "history", client=client, rows=rows)


@blueprint.get("/clients/<int:client_id>/tasks")
@signed_in()
async def tasks(client_id: int) -> Any:
    client = await queries.open_dossier(services(), actor(), client_id, "tasks")
    open_tasks = await client_tasks(services(), actor(), client)
    return await _dossier(client_id, "tasks", client=client, tasks=open_tasks, describe_task=describe_task)


@blueprint.get("/clients/<int:client_id>/professionals")
@signed_in()
async def professionals(client_id: int) -> Any:
    client = await queries.open_dossier(services(), actor(), client_id, "professionals")
    return await _professionals_page(client)


async def _professionals_page(client: Account, status: int = 200, **context: Any) -> Any:
    return await _dossier(client.id, "professionals", status, client=client,
                          candidates=await queries.linkable_professionals(client), LinkKind=LinkKind, **context)


@blueprint.post("/clients/<int:client_id>/professionals")
@signed_in()
async def link_professional(client_id: int) -> Any:
    form = await form_data()
    client = await queries.get_client(client_id)
    chosen = form.get("professional", "")
    professional = await Account.get_or_none(id=int(chosen)) if chosen.isdigit() else None
    kind = LinkKind.SUPERVISING if form.get("kind") == LinkKind.SUPERVISING.value else LinkKind.TREATING
    try:
        if professional is None:
            raise ValidationError(fields={"professional": _l("Choose a professional.")})
        await actions.do_link_professional(services(), actor(), client, professional, kind)
    except (ValidationError, ConflictError) as error:
        return await _professionals_page(client, 422, errors=error.fields or {"professional": error.message})
    await flash(_("%(name)s is now linked to this client.", name=professional.name), "ok")
    return redirect(url_for("caseload.professionals", client_id=client_id))


@blueprint.route("/clients/<int:client_id>/professionals/<int:professional_id>/unlink", methods=["GET", "POST"])
@signed_in()
async def unlink(client_id: int, professional_id: int) -> Any:
    """Unlink a professional; choose who takes over the tools they supervise, or unlink the tools."""
    from lotse.platform.tools.actions import supervised_tools

    client = await queries.open_dossier(services(), actor(), client_id, "professionals")
    professional = await Account.get_or_none(id=professional_id)
    linked = {p.id: p for p in await queries.professionals_of(client)}
    if professional is None or professional_id not in linked:
        raise NotFoundError()
    tools = await supervised_tools(client, professional)
    successors = [p for p in linked.values() if p.id != professional_id and p.kind is LinkKind.TREATING
                  and p.role is Role.THERAPIST]
    errors: dict[str, Any] = {}
    status = 200
    if request.method == "POST":
        form = await form_data()
        choice = form.get("tools", "")
        hand_over_to = None
        if choice.isdigit():
            hand_over_to = await Account.get_or_none(id=int(choice))
        try:
            await actions.do_unlink_professional(services(), actor(), client, professional,
                                                 hand_over_to=hand_over_to, unlink_tools=choice == "unlink")
        except ValidationError as error:
            errors, status = error.fields, 422
        except ConflictError as error:
            errors, status = {"tools": error.message}, 409
        else:
            await flash(_("%(name)s has been unlinked from this client.", name=professional.name), "ok")
            if professional_id == actor().account_id:
                return redirect(url_for("caseload.client_list"))
            return redirect(url_for("caseload.professionals", client_id=client_id))
    return await _dossier(client_id, "unlink", status, client=client, professional=professional, tools=tools,
                          successors=successors, errors=errors)


@blueprint.get("/clients/<int:client_id>/tools")
@signed_in()
async def tools(client_id: int) -> Any:
    client = await queries.open_dossier(services(), actor(), client_id, "tools")
    return await _tools_page(client)


async def _tools_page(client: Account, status: int = 200, **context: Any) -> Any:
    assignments = await queries.client_tools(services(), actor(), client)
    taken = {a.tool_id for a in assignments if not a.is_archived}
    catalogue = [t for t in await Tool.filter(organisation_id=client.organisation_id, available=True)
                 .order_by("kind", "title") if t.id not in taken]
    return await _dossier(client.id, "tools", status, client=client, assignments=assignments,
                          catalogue=catalogue, **context)


@blueprint.post("/clients/<int:client_id>/tools")
@signed_in()
async def assign_tool(client_id: int) -> Any:
    form = await form_data()
    client = await queries.get_client(client_id)
    chosen = form.get("tool", "")
    tool = await Tool.get_or_none(id=int(chosen), organisation_id=client.organisation_id) if chosen.isdigit() else None
    try:
        if tool is None:
            raise ValidationError(fields={"tool": _l("Choose a tool.")})
        await do_assign_tool(services(), actor(), client, tool)
    except (ValidationError, ConflictError) as error:
        return await _tools_page(client, 422, errors=error.fields or {"tool": error.message})
    await flash(_("The tool has been assigned."), "ok")
    return redirect(url_for("caseload.tools", client_id=client_id))


@blueprint.post("/clients/<int:client_id>/tools/<int:assignment_id>/archive")
@signed_in()
async def archive_tool(client_id: int, assignment_id: int) -> Any:
    await form_data()
    client = await queries.get_client(client_id)
    await do_archive_tool(services(), actor(), client, assignment_id)
    await flash(_("The tool has been archived."), "ok")
    return redirect(url_for("caseload.tools", client_id=client_id))


# --- The organisation's professionals ----------------------------------------------


@blueprint.get("/colleagues")
@signed_in()
async def professional_list() -> Any:
    """Who works here, filterable by role: e.g. to find the secretaries."""
    raw = request.args.get("role", "")
    role = Role(raw) if raw in {r.value for r in Role} and raw != Role.CLIENT.value else None
    people = await queries.list_professionals(services(), actor(), role)
    roles = [Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.APP_ADMIN]
    return await render("caseload/professionals.html", people=people, role=role, roles=roles)


# --- The client's own pages ---------------------------------------------------------


@blueprint.get("/me/requests")
@signed_in([Role.CLIENT])
async def my_requests() -> Any:
    """The client's open link requests, to accept or reject."""
    account = current_account()
    assert account is not None
    requests = await queries.pending_requests_for(account, services().now())
    return await render("caseload/my_requests.html", requests=requests)


@blueprint.post("/me/requests/<int:request_id>")
@signed_in([Role.CLIENT])
async def answer_request(request_id: int) -> Any:
    form = await form_data()
    account = current_account()
    assert account is not None
    link_request = await LinkRequest.get_or_none(id=request_id, client_id=account.id)
    if link_request is None:
        raise NotFoundError()
    accept = form.get("answer") == "accept"
    try:
        await actions.do_answer_link_request(services(), actor(), link_request, accept=accept)
    except ConflictError as error:
        await flash(str(error.message), "error")
        return redirect(url_for("caseload.my_requests"))
    await flash(_("You accepted the request.") if accept else _("You rejected the request."), "ok")
    return redirect(url_for("caseload.my_requests"))


@blueprint.get("/me/history")
@signed_in([Role.CLIENT])
async def my_history() -> Any:
    """The client's own contact history: everything that happened in their account."""
    account = current_account()
    assert account is not None
    rows = await queries.contact_history(services(), actor(), account)
    open_tasks = (await my_tasks(actor())).mine
    return await render("caseload/my_history.html", rows=rows, tasks=open_tasks, describe_task=describe_task)


# --- Words for roles and tool kinds, in templates -----------------------------------


@blueprint.app_template_global()
def role_name(role: Role | str | None) -> str:
    """Return a role in words, in the current language."""
    from lotse.platform.accounts.roles import role_label

    return role_label(role.value if isinstance(role, Role) else str(role or ""))


@blueprint.app_template_global()
def tool_kind(kind: ToolKind | str) -> str:
    """Return a kind of tool in words, in the current language."""
    labels = {
        ToolKind.MODULE.value: _("Module"),
        ToolKind.TRAINING.value: _("Training"),
        ToolKind.DIARY.value: _("Diary"),
        ToolKind.QUESTIONNAIRE.value: _("Questionnaire"),
    }
    value = kind.value if isinstance(kind, ToolKind) else str(kind)
    return labels.get(value, value)
