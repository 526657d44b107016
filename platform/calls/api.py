"""JSON API of calls: start (or find) a conversation's call, read its state, end it.

The same actions as the pages. Joining happens over the signalling
WebSocket (``/calls/<id>/ws``); ``signalling`` in the answers says where.
Where the organisation does not offer video, starting is refused with
``video_calls_off`` (403).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint, url_for

from lotse.platform.actions import require
from lotse.platform.calls import actions
from lotse.platform.calls.models import Call
from lotse.platform.conversations.queries import open_conversation
from lotse.platform.errors import NotFoundError
from lotse.platform.permissions import Permission
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("calls_api", __name__, url_prefix="/api/v1")


async def _describe(call: Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "conversation_id": call.conversation_id,
        "cap": call.cap,
        "started_at": call.started_at.isoformat(),
        "ended_at": call.ended_at.isoformat() if call.ended_at else None,
        "attending": await actions.attending(call),
        "page": url_for("calls.show", call_id=call.id),
        "signalling": url_for("calls_ws.signalling", call_id=call.id),
    }


@blueprint.post("/conversations/<int:conversation_id>/call")
@signed_in()
async def start(conversation_id: int) -> Any:
    """Start a video call in the conversation, or return the one that runs."""
    conversation = await open_conversation(services(), actor("api"), conversation_id, audit=False)
    call = await actions.do_start_call(services(), actor("api"), conversation)
    return await _describe(call), 201


@blueprint.get("/calls/<int:call_id>")
@signed_in()
async def show(call_id: int) -> Any:
    """A call you may join: cap, start, end, how many are in it."""
    call = await Call.get_or_none(id=call_id)
    me = actor("api")
    if call is None or call.organisation_id != me.organisation_id:
        raise NotFoundError()
    await require(services(), me, Permission.CALL_JOIN, call, "call.view")
    return await _describe(call)


@blueprint.post("/calls/<int:call_id>/end")
@signed_in()
async def end(call_id: int) -> Any:
    """End the call for everybody (the conversation's manager)."""
    call = await Call.get_or_none(id=call_id)
    me = actor("api")
    if call is None or call.organisation_id != me.organisation_id:
        raise NotFoundError()
    return await _describe(await actions.do_end_call(services(), me, call))
