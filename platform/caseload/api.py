"""JSON API of the caseload: search inside and outside, for scripts and the flow engine's UI.

The same queries as the pages, so the same access checks and audit rows.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, request
from quart_schema import validate_request

from lotse.platform.caseload import queries
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("caseload_api", __name__, url_prefix="/api/v1/caseload")


def _plain(hit: Any) -> dict[str, Any]:
    data = asdict(hit)
    if data.get("date_of_birth") is not None:
        data["date_of_birth"] = data["date_of_birth"].isoformat()
    for person in data.get("professionals", []):
        person["role"] = str(person["role"])
        person["kind"] = str(person["kind"])
        person.pop("email", None)
    return data


@blueprint.get("/search")
@signed_in()
async def search() -> Any:
    """Search your caseload: ``q`` (name, e-mail, client ID, DD-MM-YYYY), ``inactive=1`` to include deactivated."""
    result = await queries.search_caseload(services(), actor("api"), request.args.get("q", ""),
                                           include_inactive=request.args.get("inactive") == "1")
    return {"results": [_plain(hit) for hit in result.hits], "truncated": result.truncated}


class OutsideSearch(BaseModel):
    q: str
    motivation: str
    include_inactive: bool = False


@blueprint.post("/search-outside")
@validate_request(OutsideSearch)
@signed_in()
async def search_outside(data: OutsideSearch) -> Any:
    """Search outside your caseload, where the organisation allows it; the motivation is recorded."""
    result = await queries.search_outside_caseload(services(), actor("api"), data.q, data.motivation,
                                                   include_inactive=data.include_inactive)
    return {"results": [_plain(hit) for hit in result.hits], "truncated": result.truncated,
            "search_id": result.audit_id}
