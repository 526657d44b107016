"""``GET /api/v1/audit``: the audit log for application admins, as JSON.

The same door as the page: ``read_audit_log`` checks ``audit.read`` (a
refusal is audited) and records the reading with its filters.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint, g
from quart_schema import validate_querystring, validate_response

from lotse.platform import i18n
from lotse.platform.audit.models import AuditType, Outcome
from lotse.platform.audit.queries import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    filters_from_args,
    read_audit_log,
)
from lotse.platform.web import actor, current_account, services, signed_in

blueprint = Blueprint("audit_api", __name__, url_prefix="/api/v1")


class AuditQuery(BaseModel):
    date_from: date | None = Field(None, description="First day (inclusive), in the organisation's time zone")
    date_to: date | None = Field(None, description="Last day (inclusive)")
    user: str | None = Field(None, max_length=254, description="Acting account: id or e-mail address")
    client: str | None = Field(None, max_length=254, description="Client concerned: pseudonym or e-mail address")
    event_type: AuditType | None = None
    outcome: Outcome | None = None
    after: int | None = Field(None, ge=1, le=2**63 - 1, description="Continue after this id (from next_after)")
    limit: int = Field(DEFAULT_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    event_type: str
    action: str
    action_text: str
    outcome: str
    actor_id: int | None
    actor_role: str
    actor_name: str
    on_behalf_of_id: int | None
    on_behalf_of_name: str
    subject_id: int | None
    subject_name: str
    client_pseudonym: str | None
    source_address: str
    via: str
    reason: str
    details: dict[str, Any]


class AuditPageOut(BaseModel):
    events: list[AuditEventOut]
    next_after: int | None = Field(description="Pass as `after` for the next, older page; null at the end")


@blueprint.get("/audit")
@validate_querystring(AuditQuery)
@validate_response(AuditPageOut, 200)
@signed_in()
async def list_audit_events(query_args: AuditQuery) -> AuditPageOut:
    """List the organisation's audit events, newest first.

    Only application admins may read the audit log, and only their own
    organisation's; anyone else gets 403 and the refusal is recorded. Every
    successful read is itself recorded (event type ``read``, action
    ``audit.read``, the filters in its details). Pages are keyset-paginated:
    pass ``next_after`` back as ``after``.
    """
    account = current_account()
    assert account is not None
    organisation = g.get("organisation")
    filters = filters_from_args(
        query_args.model_dump(exclude={"after", "limit"}, exclude_none=True),
        account.organisation_id,
        organisation.time_zone if organisation is not None else i18n.DEFAULT_TIME_ZONE,
    )
    page = await read_audit_log(services(), actor(via="api"), filters, query_args.after, query_args.limit)
    return AuditPageOut(
        events=[AuditEventOut(**row.as_json()) for row in page.rows], next_after=page.next_after_id
    )
