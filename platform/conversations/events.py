"""What happens in a conversation, as events published after commit.

Every conversation event travels on the topic ``conversation.<id>``; the
events that tell a person they joined or left one also travel on
``account.<id>``, so that a WebSocket can start (or stop) listening to a
conversation it did not know of. A client that applies these events, in
order, to the state it fetched (``queries.conversation_state``) has the same
state as a fresh fetch; ``apply_event`` is that rule, written once, and used
by the tests and mirrored by ``static/conversations.js``.

Message text travels in ``MessagePosted`` / ``MessageEdited`` between the
app's own processes only (in process, or through the deployment's Redis);
the WebSocket forwards it only to people who may read the conversation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from lotse.platform.events import Event


@dataclass(frozen=True)
class ConversationEvent(Event):
    conversation_id: int

    @property
    def topic(self) -> str:
        return f"conversation.{self.conversation_id}"


@dataclass(frozen=True)
class MessagePosted(ConversationEvent):
    name = "message.posted"
    message_id: int
    author_id: int | None
    author_name: str
    body: str
    created_at: str
    attachments: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class MessageEdited(ConversationEvent):
    name = "message.edited"
    message_id: int
    body: str
    edited_at: str


@dataclass(frozen=True)
class MessageRemoved(ConversationEvent):
    """A message (``attachment_id`` None) or one attachment was removed as a data leak."""

    name = "message.removed"
    message_id: int
    attachment_id: int | None


@dataclass(frozen=True)
class ParticipantJoined(ConversationEvent):
    name = "participant.joined"
    account_id: int
    account_name: str
    role: str


@dataclass(frozen=True)
class ParticipantLeft(ConversationEvent):
    name = "participant.left"
    account_id: int
    removed_by_id: int | None


@dataclass(frozen=True)
class SubjectChanged(ConversationEvent):
    name = "conversation.subject_changed"
    subject: str


@dataclass(frozen=True)
class ManagerChanged(ConversationEvent):
    name = "conversation.manager_changed"
    manager_id: int


@dataclass(frozen=True)
class MessagesRead(ConversationEvent):
    name = "conversation.read"
    account_id: int
    last_read_id: int


@dataclass(frozen=True)
class ConversationDeleted(ConversationEvent):
    name = "conversation.deleted"


@dataclass(frozen=True)
class AddedToConversation(Event):
    """Told to the person added (topic ``account.<id>``)."""

    name = "account.conversation_added"
    account_id: int
    conversation_id: int

    @property
    def topic(self) -> str:
        return f"account.{self.account_id}"


def apply_event(state: dict[str, Any], payload: dict[str, Any]) -> dict[str, Any]:
    """Return ``state`` (as ``conversation_state`` builds it) with one event applied.

    Idempotent: applying an event twice, or one already contained in the
    state, changes nothing, so a client may subscribe before it fetches.
    """
    state = copy.deepcopy(state)
    kind = payload.get("event")
    messages: dict[str, Any] = state["messages"]
    participants: dict[str, Any] = state["participants"]
    if kind == "message.posted":
        key = str(payload["message_id"])
        if key not in messages:
            messages[key] = {
                "id": payload["message_id"], "author_id": payload["author_id"],
                "author_name": payload["author_name"], "body": payload["body"],
                "created_at": payload["created_at"], "edited_at": None, "removed": False,
                "attachments": [dict(a) for a in payload["attachments"]],
            }
        author = participants.get(str(payload["author_id"]))
        if author is not None:  # the author has read their own message
            author["last_read_id"] = max(author["last_read_id"], payload["message_id"])
    elif kind == "message.edited":
        message = messages.get(str(payload["message_id"]))
        if message is not None and not message["removed"]:
            message["body"] = payload["body"]
            message["edited_at"] = payload["edited_at"]
    elif kind == "message.removed":
        message = messages.get(str(payload["message_id"]))
        if message is not None:
            if payload["attachment_id"] is None:
                message.update(body="", removed=True, attachments=[])
            else:
                message["attachments"] = [a for a in message["attachments"] if a["id"] != payload["attachment_id"]]
    elif kind == "participant.joined":
        participants[str(payload["account_id"])] = {
            "id": payload["account_id"], "name": payload["account_name"], "role": payload["role"],
            "active": True, "last_read_id": participants.get(str(payload["account_id"]), {}).get("last_read_id", 0),
        }
    elif kind == "participant.left":
        person = participants.get(str(payload["account_id"]))
        if person is not None:
            person["active"] = False
    elif kind == "conversation.subject_changed":
        state["subject"] = payload["subject"]
    elif kind == "conversation.manager_changed":
        state["manager_id"] = payload["manager_id"]
    elif kind == "conversation.read":
        person = participants.get(str(payload["account_id"]))
        if person is not None:
            person["last_read_id"] = max(person["last_read_id"], payload["last_read_id"])
    elif kind == "conversation.deleted":
        state["deleted"] = True
    return state
