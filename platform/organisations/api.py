"""JSON API for an organisation: its settings and the import of externally managed accounts.

Under ``/api/v1/organisations/<slug>/``; only the caller's own organisation
exists for the caller (another slug is 404). Same session authentication and
error shape as the accounts API.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt
from quart import Blueprint
from quart_schema import tag, validate_request, validate_response
from werkzeug.exceptions import BadRequest

from lotse.platform.accounts.actions import do_import_accounts
from lotse.platform.accounts.api import malformed_json
from lotse.platform.i18n import current_locale
from lotse.platform.organisations import actions
from lotse.platform.organisations.queries import get_organisation_for
from lotse.platform.permissions import Permission
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("organisations_api", __name__, url_prefix="/api/v1/organisations")

MAX_IMPORT_RECORDS = 10_000


class Settings(BaseModel):
    video_calls: bool
    participant_cap: int = Field(description="2 to 12")
    search_outside_caseload: bool
    link_policy: Literal["read_only", "self_link", "client_consent"]
    external_accounts: Literal["protect", "never", "always"]
    phone_rule: Literal["optional", "required"]
    client_id_rule: Literal["optional", "required"]
    two_factor: Literal["optional", "required", "off"]
    sms_invitations: bool
    data_leak_deletion: bool
    default_language: Literal["nl", "de"]


class SettingsPatch(BaseModel):
    """Only the settings sent are changed."""

    model_config = ConfigDict(extra="forbid")

    video_calls: StrictBool | None = None
    participant_cap: Annotated[StrictInt, Field(ge=2, le=12)] | None = None
    search_outside_caseload: StrictBool | None = None
    link_policy: Literal["read_only", "self_link", "client_consent"] | None = None
    external_accounts: Literal["protect", "never", "always"] | None = None
    phone_rule: Literal["optional", "required"] | None = None
    client_id_rule: Literal["optional", "required"] | None = None
    two_factor: Literal["optional", "required", "off"] | None = None
    sms_invitations: StrictBool | None = None
    data_leak_deletion: StrictBool | None = None
    default_language: Literal["nl", "de"] | None = None


class ImportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    records: list[Any] = Field(
        max_length=MAX_IMPORT_RECORDS,
        description="Objects keyed by external_ref: role (default client), email, first_name, last_name, gender, "
        "date_of_birth, phone, client_ref, label, package, therapist_email, active. Each record is checked on its own.",
    )


class ImportResultOut(BaseModel):
    index: int
    external_ref: str | None
    outcome: Literal["created", "updated", "unchanged", "error"]
    account_id: int | None
    code: str | None = None
    message: str | None = None
    fields: dict[str, str] | None = None


class ImportOut(BaseModel):
    summary: dict[str, int]
    results: list[ImportResultOut]


blueprint.register_error_handler(BadRequest, malformed_json)


@blueprint.get("/<slug>/settings")
@tag(["organisations"])
@signed_in()
@validate_response(Settings)
async def get_settings(slug: str) -> Settings:
    """Return the organisation's settings (its application admins)."""
    organisation = await get_organisation_for(services(), actor(via="api"), slug, Permission.ORG_SETTINGS)
    return Settings.model_validate(organisation.settings_dict())


@blueprint.patch("/<slug>/settings")
@tag(["organisations"])
@signed_in()
@validate_request(SettingsPatch)
@validate_response(Settings)
async def update_settings(slug: str, data: SettingsPatch) -> Settings:
    """Change settings; each change is audited with its old and new value."""
    organisation = await get_organisation_for(services(), actor(via="api"), slug)
    await actions.do_update_settings(services(), actor(via="api"), organisation, data.model_dump(exclude_unset=True))
    return Settings.model_validate(organisation.settings_dict())


@blueprint.post("/<slug>/import")
@tag(["organisations"])
@signed_in()
@validate_request(ImportIn)
@validate_response(ImportOut)
async def import_accounts(slug: str, data: ImportIn) -> ImportOut:
    """Create and update externally managed accounts from records keyed by ``external_ref``.

    Answers 200 with a result per record (created, updated, unchanged, or
    error with its code, message and fields); one bad record does not stop
    the others.
    """
    organisation = await get_organisation_for(services(), actor(via="api"), slug)
    report = await do_import_accounts(services(), actor(via="api"), organisation, data.records)
    language = current_locale.get()
    return ImportOut(summary=report.summary(),
                     results=[ImportResultOut(**r.to_json(language)) for r in report.results])
