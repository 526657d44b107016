"""Call pages: start or join from a conversation, the pre-call check, the call,
the unsupported-browser page, and the manager's invite and end.

The call itself needs JavaScript (``static/call.js``: WebRTC has no
HTML-only form); without it the pages say so and everything else (start,
invite, end, leave) still works as plain forms and links.

The conversation page shows the call button through ``calls/_conversation_call.html``;
its data comes from ``conversation_call``, a context processor that only
does work on that page, so the conversations view needs no change.
"""

from __future__ import annotations

from typing import Any, cast

from quart import Blueprint, redirect, request, url_for

from lotse.platform.accounts.models import Account
from lotse.platform.calls import actions, jobs
from lotse.platform.calls.models import Call, CallInvitation
from lotse.platform.conversations.models import ChatParticipant, Conversation
from lotse.platform.conversations.queries import open_conversation
from lotse.platform.errors import NotFoundError
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Permission, allowed
from lotse.platform.web import actor, current_account, form_data, render, services, signed_in

blueprint = Blueprint("calls", __name__)


async def _call(call_id: int) -> Call:
    call = await Call.get_or_none(id=call_id)
    account = current_account()
    if call is None or account is None or call.organisation_id != account.organisation_id:
        raise NotFoundError()
    return call


@blueprint.app_context_processor
async def conversation_call() -> dict[str, Any]:
    """On the conversation page: whether video is offered and the call that runs there."""
    if request.endpoint != "conversations.show" or current_account() is None:
        return {}
    conversation = await Conversation.get_or_none(id=(request.view_args or {}).get("conversation_id", 0))
    if conversation is None:
        return {}
    me = actor()
    organisation = await Organisation.get_or_none(id=conversation.organisation_id)
    offered = organisation is not None and organisation.video_calls
    can_start = offered and await allowed(me, Permission.CALL_START, conversation)
    running = await actions.running_call(conversation) if offered else None
    invited = running is not None and await CallInvitation.filter(call_id=running.id,
                                                                  account_id=me.account_id).exists()
    return {"video_call": {
        "offered": offered, "can_start": can_start, "call": running, "invited": invited,
        "conversation_id": conversation.id,
    }}


@blueprint.post("/conversations/<int:conversation_id>/call")
@signed_in()
async def start(conversation_id: int) -> Any:
    """Start the conversation's call (or join the one that runs): on to the pre-call check."""
    await form_data()
    conversation = await open_conversation(services(), actor(), conversation_id, audit=False)
    call = await actions.do_start_call(services(), actor(), conversation)
    return redirect(url_for("calls.check", call_id=call.id))


@blueprint.get("/calls/<int:call_id>/check")
@signed_in()
async def check(call_id: int) -> Any:
    """Test camera, microphone and connection before joining."""
    call = await _call(call_id)
    await actions.check_join(services(), actor(), call)
    return await render("calls/check.html", call=call)


@blueprint.get("/calls/<int:call_id>")
@signed_in()
async def show(call_id: int) -> Any:
    call = await _call(call_id)
    me = actor()
    await actions.check_join(services(), me, call)
    conversation = await Conversation.get(id=call.conversation_id)
    is_manager = await allowed(me, Permission.CALL_MANAGE, call)
    invitable: list[Account] = []
    if is_manager:
        invited = set(cast("list[int]", await CallInvitation.filter(call_id=call.id).values_list(
            "account_id", flat=True)))
        rows = await ChatParticipant.filter(conversation_id=call.conversation_id, left_at=None).select_related(
            "account").order_by("id")
        invitable = [row.account for row in rows if row.account.id not in invited]
    return await render("calls/show.html", call=call, conversation=conversation, is_manager=is_manager,
                        invitable=invitable, attending=await actions.attending(call))


@blueprint.get("/calls/unsupported")
async def unsupported() -> Any:
    """For browsers without WebRTC."""
    return await render("calls/unsupported.html")


@blueprint.post("/calls/<int:call_id>/invite")
@signed_in()
async def invite(call_id: int) -> Any:
    form = await form_data()
    call = await _call(call_id)
    value = form.get("account_id", "")
    person = await Account.get_or_none(id=int(value)) if value.isdigit() else None
    if person is None or person.organisation_id != call.organisation_id:
        raise NotFoundError()
    await actions.do_invite_to_call(services(), actor(), call, person)
    return redirect(url_for("calls.show", call_id=call.id) + "#invite")


@blueprint.post("/calls/<int:call_id>/end")
@signed_in()
async def end(call_id: int) -> Any:
    await form_data()
    call = await _call(call_id)
    await actions.do_end_call(services(), actor(), call)
    return redirect(url_for("conversations.show", conversation_id=call.conversation_id))


@blueprint.post("/calls/<int:call_id>/leave")
@signed_in()
async def leave(call_id: int) -> Any:
    """Leave without JavaScript (the script leaves over the socket)."""
    await form_data()
    call = await _call(call_id)
    await actions.do_leave_call(services(), actor(), call)
    return redirect(url_for("conversations.show", conversation_id=call.conversation_id))


@blueprint.after_app_serving
async def close_media() -> None:
    """Close the in-process media unit's rooms when the app stops."""
    media = services().extras.pop("call_media", None)
    if media is not None:
        await media.close()


jobs.install(blueprint)
