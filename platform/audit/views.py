"""The application admins' audit page (``/audit``) and its CSV export.

Thin: read the filters from the query string, call ``read_audit_log`` or
``export_audit_log`` (which check the permission and record the reading),
render. The filter form uses GET, so a filtered page is a link that can be
bookmarked and needs no CSRF token; it changes nothing but the audit log's
own record of being read.
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, Response, g, request

from lotse.platform import i18n
from lotse.platform.accounts.roles import role_label
from lotse.platform.audit.models import AuditType, Outcome
from lotse.platform.audit.queries import (
    DEFAULT_PAGE_SIZE,
    FILTER_FIELDS,
    event_type_label,
    export_audit_log,
    filters_from_args,
    outcome_label,
    read_audit_log,
    require_audit_read,
)
from lotse.platform.errors import ValidationError
from lotse.platform.web import actor, current_account, render, services, signed_in

blueprint = Blueprint("audit", __name__)


def _time_zone() -> str:
    organisation = g.get("organisation")
    return organisation.time_zone if organisation is not None else i18n.DEFAULT_TIME_ZONE


def _after() -> int | None:
    raw = request.args.get("after", "")
    return int(raw) if raw.isdigit() and len(raw) <= 18 else None


@blueprint.get("/audit")
@signed_in()
async def index() -> Any:
    """Show one page of the audit log, filtered, newest first."""
    account = current_account()
    assert account is not None
    values = {name: request.args.get(name, "") for name in FILTER_FIELDS}
    try:
        filters = filters_from_args(request.args, account.organisation_id, _time_zone())
    except ValidationError as error:
        # Nothing is read with half-understood filters; say which field is wrong.
        # Non-admins still get their refusal (audited), not a lesson in filter syntax.
        await require_audit_read(services(), actor(), "audit.read", AuditType.READ,
                                 {"invalid_filters": sorted(error.fields)})
        return await render("audit/index.html", 422, page=None, values=values, errors=error.fields,
                            error=error, query={}, first_page=True, **_choices())
    page = await read_audit_log(services(), actor(), filters, _after(), DEFAULT_PAGE_SIZE)
    return await render("audit/index.html", page=page, values=values, errors={}, error=None,
                        query=filters.as_query(), first_page=_after() is None, **_choices())


@blueprint.get("/audit/export.csv")
@signed_in()
async def export() -> Any:
    """Download the filtered audit log as CSV (the export is itself audited)."""
    account = current_account()
    assert account is not None
    try:
        filters = filters_from_args(request.args, account.organisation_id, _time_zone())
    except ValidationError as error:
        await require_audit_read(services(), actor(), "audit.export", AuditType.EXPORT,
                                 {"invalid_filters": sorted(error.fields)})
        raise
    text, _count = await export_audit_log(services(), actor(), filters)
    stamp = services().now().strftime("%Y%m%d-%H%M")
    # A byte-order mark so that spreadsheet programs read the umlauts as UTF-8.
    return Response(
        "\ufeff" + text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"', "Cache-Control": "no-store"},
    )


def _choices() -> dict[str, Any]:
    return {
        "event_types": [(t.value, event_type_label(t.value)) for t in AuditType],
        "outcomes": [(o.value, outcome_label(o.value)) for o in Outcome],
        "role_label": role_label,
        "event_type_label": event_type_label,
        "outcome_label": outcome_label,
    }
