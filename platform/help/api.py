"""JSON API of help sessions: the same engine, actions and access checks as the runner pages.

    GET  /api/v1/help/flows                           the flows you may start
    POST /api/v1/help/sessions                        {"flow": id, "inputs": {...}} (account inputs by id)
    GET  /api/v1/help/sessions/<id>                   where the session stands
    POST /api/v1/help/sessions/<id>/input             one engine input, e.g. {"step": "s", "choose": "yes"}

Views are returned as the engine's view data (``kind`` plus its fields).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, g
from quart_schema import validate_request

from lotse.engine.problems import Problem
from lotse.engine.runner import input_from_data
from lotse.engine.views import AnyView
from lotse.platform.errors import NotFoundError, ValidationError
from lotse.platform.help import queries
from lotse.platform.help.actions import (
    do_advance_session,
    do_start_session,
    flow_repository,
    may_start,
)
from lotse.platform.help.models import HelpSession
from lotse.platform.help.views import _bind_inputs, flow_title, startable_flows
from lotse.platform.i18n import _l
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("help_api", __name__, url_prefix="/api/v1/help")


def view_data(view: AnyView) -> dict[str, Any]:
    data = dataclasses.asdict(view)
    data["kind"] = type(view).__name__.removesuffix("View").lower()
    return data


def session_data(row: HelpSession, view: AnyView) -> dict[str, Any]:
    return {"id": row.public_id, "flow": row.flow_id, "version": row.version, "status": row.status.value,
            "outcome": row.outcome, "view": view_data(view)}


@blueprint.get("/flows")
@signed_in()
async def flows() -> Any:
    return {"flows": [
        {"id": f.id, "version": f.version, "title": flow_title(f), "tags": list(f.tags),
         "inputs": [{"id": i.id, "type": i.type.value, "required": i.required} for i in f.inputs]}
        for f in startable_flows(actor("api"))
    ]}


class StartSession(BaseModel):
    flow: str
    inputs: dict[str, Any] = {}


@blueprint.post("/sessions")
@validate_request(StartSession)
@signed_in()
async def start(data: StartSession) -> Any:
    svc = services()
    who = actor("api")
    flow = flow_repository(svc).published_flow(data.flow)
    if flow is None or not may_start(who, flow):
        raise NotFoundError()
    values = {k: str(v) for k, v in data.inputs.items() if v is not None}
    inputs, errors = _bind_inputs(flow, values, await queries.posted_choices(who, flow, values))
    if errors:
        raise ValidationError(fields={name: _l("This value is not valid.") for name in errors})
    from lotse.platform.i18n import current_locale

    row, view = await do_start_session(svc, who, flow, inputs=inputs, locale=current_locale.get())
    return session_data(row, view), 201


@blueprint.get("/sessions/<public_id>")
@signed_in()
async def show(public_id: str) -> Any:
    who = actor("api")
    row = await queries.get_session_for(who, public_id)
    row, _state, view = await do_advance_session(services(), who, row, None)
    return session_data(row, view)


class Input(BaseModel):
    model_config = {"extra": "allow"}


@blueprint.post("/sessions/<public_id>/input")
@validate_request(Input)
@signed_in()
async def send_input(public_id: str, data: Input) -> Any:
    who = actor("api")
    row = await queries.get_session_for(who, public_id)
    parsed = input_from_data(data.model_dump())
    if isinstance(parsed, Problem):
        raise ValidationError(fields={"input": _l("This value is not valid.")})
    row, _state, view = await do_advance_session(services(), who, row, parsed, organisation=g.get("organisation"))
    return session_data(row, view)
