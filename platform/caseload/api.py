"""JSON API of the caseload under ``/api/v1/``: searches, linking, link requests, unlinking.

The same queries and actions as the pages, so the same access checks, audit
rows, mails and tasks. Authentication is the browser session; requests that
change something are ``application/json`` (a cross-site form cannot send
that). Every error is ``{"code", "message", "fields"}``.

Acting on a client found outside the caseload (self-link, link request)
takes the ``search_id`` of that search (from ``POST /caseload/search-outside``):
its motivation is the one recorded, and it covers the clients that search found,
for an hour, as on the pages (``403 not_found_by_search`` for any other client).

The task endpoints live in ``lotse.platform.tasks.api`` and are mounted here,
so that the app's list of blueprints needs no entry of its own for them.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from quart import Blueprint, request
from quart_schema import tag, validate_request, validate_response
from werkzeug.exceptions import BadRequest

from lotse.platform.accounts.api import malformed_json
from lotse.platform.accounts.models import Account, Role
from lotse.platform.caseload import actions, queries
from lotse.platform.caseload.models import CaseloadLink, LinkKind, LinkRequest
from lotse.platform.errors import NotFoundError, ValidationError
from lotse.platform.i18n import _l
from lotse.platform.tasks.api import blueprint as tasks_blueprint
from lotse.platform.web import actor, current_account, services, signed_in

blueprint = Blueprint("caseload_api", __name__, url_prefix="/api/v1")
blueprint.register_error_handler(BadRequest, malformed_json)
blueprint.register_blueprint(tasks_blueprint)


def _plain(hit: Any) -> dict[str, Any]:
    data = asdict(hit)
    if data.get("date_of_birth") is not None:
        data["date_of_birth"] = data["date_of_birth"].isoformat()
    for person in data.get("professionals", []):
        person["role"] = str(person["role"])
        person["kind"] = str(person["kind"])
        person.pop("email", None)
    return data


def _api_actor() -> Any:
    return actor("api")


# --- searches ------------------------------------------------------------------------


@blueprint.get("/caseload/search")
@tag(["caseload"])
@signed_in()
async def search() -> Any:
    """Search your caseload: ``q`` (name, e-mail, client ID, DD-MM-YYYY), ``inactive=1`` to include deactivated.

    A secretary's caseload is the whole organisation. Every search is audited.
    """
    result = await queries.search_caseload(services(), _api_actor(), request.args.get("q", ""),
                                           include_inactive=request.args.get("inactive") == "1")
    return {"results": [_plain(hit) for hit in result.hits], "truncated": result.truncated}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OutsideSearch(_In):
    q: str = Field(max_length=200)
    motivation: str = Field(max_length=2000, description="Why you need this; at least 10 characters, audited.")
    include_inactive: bool = False


@blueprint.post("/caseload/search-outside")
@tag(["caseload"])
@validate_request(OutsideSearch)
@signed_in()
async def search_outside(data: OutsideSearch) -> Any:
    """Search outside your caseload, where the organisation allows it; the motivation is recorded.

    Audited as emergency access. Results show name, date of birth and the
    linked professionals only, never clinical content. Keep ``search_id``: it
    is what a self-link or a link request refers to.
    """
    result = await queries.search_outside_caseload(services(), _api_actor(), data.q, data.motivation,
                                                   include_inactive=data.include_inactive)
    return {"results": [_plain(hit) for hit in result.hits], "truncated": result.truncated,
            "search_id": result.audit_id}


# --- linked professionals ---------------------------------------------------------------


class ProfessionalOut(BaseModel):
    id: int
    name: str
    role: str
    kind: Literal["treating", "supervising"] = Field(description="``supervising`` links are read-only.")


class ProfessionalsOut(BaseModel):
    client_id: int
    professionals: list[ProfessionalOut]


class LinkOut(BaseModel):
    client_id: int
    professional_id: int
    kind: Literal["treating", "supervising"]
    created_at: datetime


def _link_out(link: CaseloadLink) -> LinkOut:
    return LinkOut(client_id=link.client_id, professional_id=link.professional_id,
                   kind=link.kind.value, created_at=link.created_at)


async def _account(account_id: int, field: str) -> Account:
    account = await Account.get_or_none(id=account_id)
    if account is None:
        raise ValidationError(fields={field: _l("There is no such account.")})
    return account


@blueprint.get("/clients/<int:client_id>/professionals")
@tag(["caseload"])
@validate_response(ProfessionalsOut)
@signed_in()
async def list_professionals(client_id: int) -> ProfessionalsOut:
    """List who is linked to a client, therapists first (opening it is audited as a read of the dossier)."""
    client = await queries.open_dossier(services(), _api_actor(), client_id, "professionals")
    people = await queries.professionals_of(client)
    return ProfessionalsOut(client_id=client.id, professionals=[
        ProfessionalOut(id=p.id, name=p.name, role=p.role.value, kind=p.kind.value)
        for p in people
    ])


class LinkIn(_In):
    professional_id: StrictInt
    kind: Literal["treating", "supervising"] = Field(
        "treating", description="A supervisor is always linked read-only (``supervising``).")


@blueprint.post("/clients/<int:client_id>/professionals")
@tag(["caseload"])
@validate_request(LinkIn)
@validate_response(LinkOut, 201)
@signed_in()
async def link_professional(client_id: int, data: LinkIn) -> tuple[LinkOut, int]:
    """Link a therapist or supervisor of the organisation to a client.

    Allowed for a therapist linked to the client (not read-only) and for
    secretaries. ``409 already_linked`` when the link exists.
    """
    client = await queries.get_client(client_id)
    professional = await _account(data.professional_id, "professional_id")
    link = await actions.do_link_professional(services(), _api_actor(), client, professional, LinkKind(data.kind))
    return _link_out(link), 201


class UnlinkIn(_In):
    hand_over_to: StrictInt | None = Field(
        None, description="A therapist linked to the client who takes over the tools the leaving one supervises.")
    unlink_tools: StrictBool = Field(
        False, description="Leave those tools without a supervisor: the client keeps them, without contact.")


class UnlinkOut(BaseModel):
    client_id: int
    professional_id: int
    tools: int = Field(description="How many tools were handed over or unlinked.")


@blueprint.post("/clients/<int:client_id>/professionals/<int:professional_id>/unlink")
@tag(["caseload"])
@validate_request(UnlinkIn)
@validate_response(UnlinkOut)
@signed_in()
async def unlink_professional(client_id: int, professional_id: int, data: UnlinkIn) -> UnlinkOut:
    """Unlink a professional from a client: yourself (any linked professional) or a colleague.

    Unlinking a colleague needs the same right as linking. When the leaving
    professional supervises tools of this client, say who takes them over
    (``hand_over_to``) or ``unlink_tools``; otherwise ``409
    tools_need_supervisor`` and nothing changes.
    """
    client = await queries.get_client(client_id)
    professional = await Account.get_or_none(id=professional_id)
    if professional is None:
        raise NotFoundError()
    successor = await _account(data.hand_over_to, "hand_over_to") if data.hand_over_to is not None else None
    count = await actions.do_unlink_professional(services(), _api_actor(), client, professional,
                                                 hand_over_to=successor, unlink_tools=data.unlink_tools)
    return UnlinkOut(client_id=client.id, professional_id=professional.id, tools=count)


# --- a client found outside the caseload -------------------------------------------------


class OutsideActionIn(_In):
    search_id: StrictInt = Field(description="``search_id`` of your outside search that found this client (valid for an hour).")


async def _motivation(search_id: int, client_id: int, action: str) -> str:
    row = await queries.outside_search_for(services(), _api_actor(), search_id, client_id, action)
    return row.reason


@blueprint.post("/clients/<int:client_id>/self-link")
@tag(["caseload"])
@validate_request(OutsideActionIn)
@validate_response(LinkOut, 201)
@signed_in()
async def self_link(client_id: int, data: OutsideActionIn) -> tuple[LinkOut, int]:
    """Link yourself as treating therapist to a client found outside your caseload (link policy self-link).

    The motivation of the search is recorded with the link.
    """
    motivation = await _motivation(data.search_id, client_id, "caseload.self_link")
    client = await queries.get_client(client_id)
    link = await actions.do_self_link(services(), _api_actor(), client, motivation)
    return _link_out(link), 201


class LinkRequestOut(BaseModel):
    id: int
    client_id: int
    professional_id: int
    professional_name: str | None = None
    status: Literal["pending", "accepted", "rejected", "expired"]
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None


def _request_out(link_request: LinkRequest, professional_name: str | None = None) -> LinkRequestOut:
    return LinkRequestOut(
        id=link_request.id, client_id=link_request.client_id,
        professional_id=link_request.professional_id,
        professional_name=professional_name, status=link_request.status.value,
        created_at=link_request.created_at, expires_at=link_request.expires_at,
        answered_at=link_request.answered_at,
    )


@blueprint.post("/clients/<int:client_id>/link-requests")
@tag(["caseload"])
@validate_request(OutsideActionIn)
@validate_response(LinkRequestOut, 201)
@signed_in()
async def request_link(client_id: int, data: OutsideActionIn) -> tuple[LinkRequestOut, int]:
    """Ask a client found outside your caseload to accept you as therapist (link policy client consent).

    The client gets a mail and a task, and answers in their own account; you
    get a task with the answer. A request expires after 14 days.
    ``409 link_request_pending`` when you already asked.
    """
    motivation = await _motivation(data.search_id, client_id, "caseload.request_link")
    client = await queries.get_client(client_id)
    link_request = await actions.do_request_link(services(), _api_actor(), client, motivation)
    return _request_out(link_request), 201


class LinkRequestList(BaseModel):
    items: list[LinkRequestOut]


@blueprint.get("/me/link-requests")
@tag(["caseload"])
@validate_response(LinkRequestList)
@signed_in([Role.CLIENT])
async def my_link_requests() -> LinkRequestList:
    """List your open link requests (clients): who asks to be linked to you."""
    account = current_account()
    assert account is not None
    pending = await queries.pending_requests_for(account, services().now())
    return LinkRequestList(items=[_request_out(r, r.professional.name) for r in pending])


class AnswerIn(_In):
    accept: StrictBool = Field(description="``true`` links the professional to you; ``false`` declines.")


@blueprint.post("/link-requests/<int:request_id>/answer")
@tag(["caseload"])
@validate_request(AnswerIn)
@validate_response(LinkRequestOut)
@signed_in()
async def answer_link_request(request_id: int, data: AnswerIn) -> LinkRequestOut:
    """Accept or reject a link request addressed to you (only the client it was sent to).

    ``409 link_request_answered`` or ``link_request_expired`` when it is too late.
    """
    link_request = await LinkRequest.get_or_none(id=request_id)
    if link_request is None:
        raise NotFoundError()
    answered = await actions.do_answer_link_request(services(), _api_actor(), link_request, accept=data.accept)
    return _request_out(answered, answered.professional.name)
