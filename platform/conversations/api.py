"""JSON API of conversations: list, start, read one (its state), post, mark read.

The same actions and queries as the pages. Attachments are sent with the
page's multipart form (``POST /conversations/<id>/messages`` with
``Accept: application/json``), which streams them within the limits; this
API posts text.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint
from quart_schema import validate_request

from lotse.platform.accounts.models import Account
from lotse.platform.conversations import actions, queries
from lotse.platform.errors import NotFoundError
from lotse.platform.web import actor, services, signed_in

blueprint = Blueprint("conversations_api", __name__, url_prefix="/api/v1/conversations")


@blueprint.get("")
@signed_in()
async def list_() -> Any:
    """Your conversations, newest activity first, with unread counts."""
    rows = await queries.list_conversations(actor("api"))
    return {"conversations": [
        {**asdict(row), "last_message_at": row.last_message_at.isoformat() if row.last_message_at else None,
         "created_at": row.created_at.isoformat()}
        for row in rows
    ]}


class StartConversation(BaseModel):
    subject: str
    participants: list[int] = Field(min_length=1)
    message: str = ""


@blueprint.post("")
@validate_request(StartConversation)
@signed_in()
async def start(data: StartConversation) -> Any:
    """Start a conversation with the given accounts; you become its manager."""
    me = actor("api")
    people = await Account.filter(id__in=data.participants, organisation_id=me.organisation_id)
    if len(people) != len(set(data.participants)):
        raise NotFoundError()
    conversation = await actions.do_start_conversation(services(), me, subject=data.subject, participants=people,
                                                       first_message=data.message)
    return {"id": conversation.id}, 201


@blueprint.get("/<int:conversation_id>")
@signed_in()
async def show(conversation_id: int) -> Any:
    """One conversation as you see it: subject, manager, participants with read marks, messages."""
    conversation = await queries.open_conversation(services(), actor("api"), conversation_id)
    return await queries.conversation_state(actor("api"), conversation)


class PostMessage(BaseModel):
    body: str


@blueprint.post("/<int:conversation_id>/messages")
@validate_request(PostMessage)
@signed_in()
async def post(conversation_id: int, data: PostMessage) -> Any:
    """Post a text message."""
    conversation = await queries.open_conversation(services(), actor("api"), conversation_id, audit=False)
    message = await actions.do_post_message(services(), actor("api"), conversation, data.body)
    return {"message_id": message.id}, 201


class MarkRead(BaseModel):
    message_id: int


@blueprint.post("/<int:conversation_id>/read")
@validate_request(MarkRead)
@signed_in()
async def read(conversation_id: int, data: MarkRead) -> Any:
    """Mark the messages up to ``message_id`` read."""
    conversation = await queries.open_conversation(services(), actor("api"), conversation_id, audit=False)
    return {"last_read_id": await actions.do_mark_read(services(), actor("api"), conversation, data.message_id)}
