"""JSON API for accounts, under ``/api/v1/``: the same actions as the pages.

Authentication is the browser session (the ``lotse_session`` cookie).
Requests that change something must be sent as ``application/json``, which a
cross-site form cannot do. Request bodies are validated by pydantic models
(types, lengths, unknown fields refused); the domain rules (e-mail syntax and
uniqueness, date of birth not in the future, required fields of the
organisation) are the actions' own, so the API and the pages answer alike.
Every error is ``{"code", "message", "fields"}``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt
from quart import Blueprint, current_app, g, jsonify, request
from quart_schema import RequestSchemaValidationError, tag, validate_request, validate_response
from werkzeug.exceptions import BadRequest

from lotse.platform.accounts import actions, queries
from lotse.platform.accounts.models import Account, Role
from lotse.platform.errors import NotFoundError, ValidationError
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("accounts_api", __name__, url_prefix="/api/v1")

Email = Annotated[str, Field(strict=True, max_length=254, description="Stored in lower case; unique in the installation.")]
Name = Annotated[str, Field(strict=True, max_length=100)]
ShortText = Annotated[str, Field(strict=True, max_length=100)]
Language = Literal["de", "nl"]
ProfessionalRole = Literal["therapist", "supervisor", "secretary", "app_admin", "content_editor"]
GenderName = Literal["female", "male", "other", "unknown"]
BirthDate = Annotated[str, Field(strict=True, max_length=10, description="YYYY-MM-DD (or DD-MM-YYYY); not in the future.")]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProfessionalIn(_In):
    role: ProfessionalRole
    email: Email
    first_name: Name
    last_name: Name
    locale: Language | None = None


class ClientIn(_In):
    gender: GenderName
    first_name: Name
    last_name: Name
    email: Email
    date_of_birth: BirthDate
    phone: Annotated[str, Field(strict=True, max_length=32)] | None = None
    client_ref: Annotated[str, Field(strict=True, max_length=64, description="The organisation's client ID.")] | None = None
    label: ShortText | None = None
    package: ShortText | None = None
    locale: Language | None = None
    therapist_id: StrictInt | None = Field(None, description="Treating therapist, when a secretary creates the client.")


class AccountPatch(_In):
    """Only the fields sent are changed; ``null`` clears an optional field."""

    role: ProfessionalRole | None = None
    email: Email | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    gender: GenderName | None = None
    date_of_birth: BirthDate | None = None
    phone: Annotated[str, Field(strict=True, max_length=32)] | None = None
    client_ref: Annotated[str, Field(strict=True, max_length=64)] | None = None
    label: ShortText | None = None
    package: ShortText | None = None
    locale: Language | None = None


class AccountOut(BaseModel):
    id: int
    organisation_id: int
    role: str
    email: str
    first_name: str
    last_name: str
    status: str
    blocked: bool
    two_factor: bool
    externally_managed: bool
    external_ref: str | None
    locale: str | None
    gender: str | None = None
    date_of_birth: date | None = None
    phone: str | None = None
    client_ref: str | None = None
    label: str | None = None
    package: str | None = None
    created_at: datetime

    @classmethod
    def of(cls, account: Account) -> AccountOut:
        return cls(
            id=account.id, organisation_id=account.organisation_id,
            role=account.role.value, email=account.email, first_name=account.first_name,
            last_name=account.last_name, status=account.status.value, blocked=account.is_blocked,
            two_factor=account.two_factor_enabled, externally_managed=account.externally_managed,
            external_ref=account.external_ref, locale=account.locale,
            gender=account.gender.value if account.gender else None, date_of_birth=account.date_of_birth,
            phone=account.phone, client_ref=account.client_ref, label=account.label, package=account.package,
            created_at=account.created_at,
        )


class AccountList(BaseModel):
    items: list[AccountOut]


class Operation(_In):
    """An empty JSON object; the body must be JSON so that no cross-site form can send it."""

    reason: Annotated[str, Field(strict=True, max_length=2000)] | None = None


def _api_actor() -> Any:
    return actor(via="api")


def _organisation() -> Organisation:
    organisation: Organisation = g.organisation
    return organisation


async def malformed_json(error: BadRequest) -> Any:
    """Malformed JSON (or another unreadable request) names the body as the faulty field.

    Registered on the API blueprints. Quart files ``RequestSchemaValidationError``
    (a ``BadRequest``) under the same status code, and a blueprint's handler
    wins over the app's, so those are handed back to the app's own handler.
    """
    if isinstance(error, RequestSchemaValidationError):
        handler = current_app.error_handler_spec[None][400].get(RequestSchemaValidationError)
        if handler is not None:
            return await current_app.ensure_async(handler)(error)
    body = ValidationError("malformed", _l("The request body is not valid JSON."),
                           fields={"body": _l("The request body is not valid JSON.")})
    return jsonify(body.to_json()), 400


blueprint.register_error_handler(BadRequest, malformed_json)


# --- lists and creation ----------------------------------------------------------------


@blueprint.get("/professionals")
@tag(["accounts"])
@signed_in()
@validate_response(AccountList)
async def list_professionals() -> AccountList:
    """List the organisation's professionals (application admins); ``?role=`` filters by role."""
    raw = request.args.get("role")
    role = None
    if raw:
        if raw not in {r.value for r in Role if r is not Role.CLIENT}:
            raise ValidationError(fields={"role": _l("Please choose one of the offered roles.")})
        role = Role(raw)
    people = await queries.list_professionals(services(), _api_actor(), _organisation(), role=role)
    return AccountList(items=[AccountOut.of(p) for p in people])


@blueprint.post("/professionals")
@tag(["accounts"])
@signed_in()
@validate_request(ProfessionalIn)
@validate_response(AccountOut, 201)
async def create_professional(data: ProfessionalIn) -> tuple[AccountOut, int]:
    """Create a professional account (application admins); a welcome mail with a 7-day link is sent.

    A taken e-mail address (any account of the installation) answers 409 ``email_taken``.
    """
    account = await actions.do_create_professional(services(), _api_actor(), _organisation(), data.model_dump())
    return AccountOut.of(account), 201


@blueprint.get("/clients")
@tag(["accounts"])
@signed_in()
@validate_response(AccountList)
async def list_clients() -> AccountList:
    """List the clients the caller may see: linked ones, or all of the organisation for secretaries."""
    people = await queries.list_clients(services(), _api_actor(), _organisation())
    return AccountList(items=[AccountOut.of(p) for p in people])


@blueprint.post("/clients")
@tag(["accounts"])
@signed_in()
@validate_request(ClientIn)
@validate_response(AccountOut, 201)
async def create_client(data: ClientIn) -> tuple[AccountOut, int]:
    """Create a client account (therapists, secretaries) and send the welcome mail.

    A therapist is linked as treating therapist; a secretary may name one in
    ``therapist_id``. Phone and client ID are required where the organisation
    says so. A taken e-mail address answers 409 ``email_taken``; a taken client
    ID 409 ``client_id_taken``; field problems 422 with ``fields``.
    """
    values = data.model_dump(exclude={"therapist_id"})
    account = await actions.do_create_client(services(), _api_actor(), _organisation(), values,
                                             therapist_id=data.therapist_id)
    return AccountOut.of(account), 201


# --- one account ---------------------------------------------------------------------


@blueprint.get("/accounts/<int:account_id>")
@tag(["accounts"])
@signed_in()
@validate_response(AccountOut)
async def get_account(account_id: int) -> AccountOut:
    """Return one account the caller may see (404 otherwise, also across organisations)."""
    return AccountOut.of(await queries.get_account_for(services(), _api_actor(), account_id))


@blueprint.patch("/accounts/<int:account_id>")
@tag(["accounts"])
@signed_in()
@validate_request(AccountPatch)
@validate_response(AccountOut)
async def update_account(account_id: int, data: AccountPatch) -> AccountOut:
    """Change an account's details; externally managed accounts answer 409 ``externally_managed`` where protected."""
    account = await queries.get_account_for(services(), _api_actor(), account_id, audit_read=False)
    changes = data.model_dump(exclude_unset=True)
    if account.role is Role.CLIENT and "role" in changes:
        raise ValidationError(fields={"role": _l("This value is not valid.")})
    await actions.do_update_account(services(), _api_actor(), account, changes)
    return AccountOut.of(account)


async def _operate(account_id: int, verb: str) -> AccountOut:
    account = await queries.get_account_for(services(), _api_actor(), account_id, audit_read=False)
    svc, who = services(), _api_actor()
    match verb:
        case "deactivate":
            await actions.do_deactivate_account(svc, who, account)
        case "reactivate":
            await actions.do_reactivate_account(svc, who, account)
        case "resend-welcome":
            await actions.do_resend_welcome(svc, who, account)
        case "unblock":
            await actions.do_unblock_account(svc, who, account)
        case "reset-two-factor":
            await actions.do_reset_two_factor(svc, who, account)
        case _:
            raise NotFoundError()
    return AccountOut.of(account)


def _operation(verb: str, doc: str) -> None:
    async def endpoint(account_id: int, data: Operation) -> AccountOut:
        return await _operate(account_id, verb)

    endpoint.__doc__ = doc
    endpoint.__name__ = "account_" + verb.replace("-", "_")
    wrapped = validate_response(AccountOut)(endpoint)
    wrapped = validate_request(Operation)(wrapped)
    wrapped = signed_in()(wrapped)
    wrapped = tag(["accounts"])(wrapped)
    blueprint.post(f"/accounts/<int:account_id>/{verb}")(wrapped)


_operation("deactivate", "Deactivate the account: no sign-in, sessions ended, data kept. Body: ``{}``.")
_operation("reactivate", "Reactivate a deactivated account. Body: ``{}``.")
_operation("resend-welcome", "Send the welcome mail again; the earlier link stops working. Body: ``{}``.")
_operation("unblock", "Unblock an account blocked after failed sign-ins. Body: ``{}``.")
_operation("reset-two-factor", "Reset two-factor authentication; the owner is told by mail. Body: ``{}``.")
