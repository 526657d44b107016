"""Reading conversations: the list with unread counts, one conversation's state,
attachments for download, and the deletion log.

``conversation_state`` is the one shape a conversation has for readers: the
page renders it, the JSON API returns it, and the events of
``conversations.events`` change it (``apply_event``). A removed message is in
it as ``removed`` with neither text nor attachments; someone who left sees
the messages up to their leaving.

Opening a conversation and downloading an attachment are audited as reads.
The list of one's own conversations is not (it shows only names and
subjects of what the reader takes part in); the deletion log is audited as a
read of the application admins.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services, record, require
from lotse.platform.audit.models import AuditType
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.conversations.models import (
    ChatAttachment,
    ChatMessage,
    ChatParticipant,
    Conversation,
    DataLeakDeletion,
)
from lotse.platform.errors import NotFoundError
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission, allowed


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@dataclass(frozen=True)
class ConversationRow:
    id: int
    subject: str
    participants: list[str]
    last_message_at: datetime | None
    last_message: str | None     # None: no message yet; "" : removed
    last_message_removed: bool
    unread: int
    active: bool
    created_at: datetime


async def list_conversations(actor: Actor) -> list[ConversationRow]:
    """Return the conversations the actor takes (or took) part in, newest activity first."""
    memberships = await ChatParticipant.filter(account_id=actor.account_id).select_related("conversation")
    if not memberships:
        return []
    ids = [m.conversation_id for m in memberships]
    people: dict[int, list[str]] = {}
    for row in await ChatParticipant.filter(conversation_id__in=ids, left_at=None).select_related("account"):
        if row.account_id != actor.account_id:
            people.setdefault(row.conversation_id, []).append(row.account.name)
    rows = []
    for member in memberships:
        conversation: Conversation = member.conversation
        visible = ChatMessage.filter(conversation_id=conversation.id)
        if member.visible_up_to is not None:
            visible = visible.filter(id__lte=member.visible_up_to)
        last = await visible.order_by("-id").first()
        unread = await visible.filter(id__gt=member.last_read_id).exclude(author_id=actor.account_id).count()
        rows.append(ConversationRow(
            id=conversation.id, subject=conversation.subject, participants=sorted(people.get(conversation.id, [])),
            last_message_at=last.created_at if last else None,
            last_message=None if last is None else ("" if last.removed else _preview(last.body)),
            last_message_removed=bool(last and last.removed), unread=unread, active=member.left_at is None,
            created_at=conversation.created_at,
        ))
    rows.sort(key=lambda r: (r.last_message_at or r.created_at, r.id), reverse=True)
    return rows


def _preview(body: str, length: int = 80) -> str:
    text = " ".join(body.split())
    return text if len(text) <= length else text[: length - 1] + "…"


async def unread_total(actor: Actor) -> int:
    """Return how many unread messages the actor has over all conversations (for the menu)."""
    rows = await list_conversations(actor)
    return sum(r.unread for r in rows)


async def open_conversation(svc: Services, actor: Actor, conversation_id: int, *, audit: bool = True) -> Conversation:
    """Return a conversation the actor may read (refusal audited; a read audited when ``audit``)."""
    conversation = await Conversation.get_or_none(id=conversation_id)
    if conversation is None or conversation.organisation_id != actor.organisation_id:
        raise NotFoundError()
    await require(svc, actor, Permission.CONVERSATION_READ, conversation, "conversation.read")
    if audit:
        await record_read(svc, actor, conversation)
    return conversation


async def record_read(svc: Services, actor: Actor, conversation: Conversation) -> None:
    """Audit one load of a conversation's content: a page view, a state fetch, a WebSocket's first state
    (the live events after it are not audited one by one)."""
    client = await ChatParticipant.filter(conversation_id=conversation.id, account__role=Role.CLIENT).order_by(
        "id").select_related("account").first()
    await record(svc, actor, "conversation.read", AuditType.READ, subject=client.account if client else None,
                 details={"conversation_id": conversation.id})


def message_json(message: ChatMessage, attachments: list[ChatAttachment]) -> dict[str, Any]:
    removed = message.removed
    return {
        "id": message.id,
        "author_id": message.author_id,
        "author_name": message.author.name if message.author is not None else "",
        "body": "" if removed else message.body,
        "created_at": _iso(message.created_at),
        "edited_at": None if removed else _iso(message.edited_at),
        "removed": removed,
        "attachments": [] if removed else [
            {"id": a.id, "filename": a.filename, "size": a.size, "content_type": a.content_type}
            for a in attachments if not a.removed
        ],
    }


async def conversation_state(actor: Actor, conversation: Conversation) -> dict[str, Any]:
    """Return the conversation as its reader sees it (see the module docstring); access checked by the caller."""
    members = await ChatParticipant.filter(conversation_id=conversation.id).select_related("account").order_by("id")
    me = next((m for m in members if m.account_id == actor.account_id), None)
    messages = ChatMessage.filter(conversation_id=conversation.id).select_related("author")
    if me is not None and me.visible_up_to is not None:
        messages = messages.filter(id__lte=me.visible_up_to)
    rows = await messages.order_by("id")
    attachments: dict[int, list[ChatAttachment]] = {}
    for attachment in await ChatAttachment.filter(message_id__in=[m.id for m in rows]):
        attachments.setdefault(attachment.message_id, []).append(attachment)
    return {
        "id": conversation.id,
        "subject": conversation.subject,
        "manager_id": conversation.manager_id,
        "me": actor.account_id,
        "active": me is not None and me.left_at is None,
        "deleted": False,
        "participants": {
            str(m.account_id): {
                "id": m.account_id, "name": m.account.name, "role": m.account.role.value,
                "active": m.left_at is None, "last_read_id": m.last_read_id,
            }
            for m in members
        },
        "messages": {str(m.id): message_json(m, attachments.get(m.id, [])) for m in rows},
    }


async def contact_candidates(actor: Actor) -> list[Account]:
    """Return the people the actor may start a conversation with (one by one)."""
    me = await Account.get(id=actor.account_id)
    if me.role is Role.CLIENT:
        ids = await CaseloadLink.filter(client_id=me.id).values_list("professional_id", flat=True)
        return await Account.filter(id__in=list(ids), role=Role.THERAPIST, status="active").order_by(
            "last_name", "first_name")
    people = await Account.filter(organisation_id=actor.organisation_id, status="active").exclude(
        id=me.id).exclude(role=Role.CLIENT).order_by("last_name", "first_name")
    if me.role is Role.THERAPIST:
        ids = await CaseloadLink.filter(professional_id=me.id).values_list("client_id", flat=True)
        clients = await Account.filter(id__in=list(ids), status="active").order_by("last_name", "first_name")
        people = [*clients, *people]
    return people


async def attachment_for_download(svc: Services, actor: Actor, attachment_id: int) -> ChatAttachment:
    """Return an attachment a participant may download (audited as a read); removed ones do not exist."""
    attachment = await ChatAttachment.get_or_none(id=attachment_id).select_related("message")
    if attachment is None or attachment.removed or attachment.message.removed:
        raise NotFoundError()
    message: ChatMessage = attachment.message
    conversation = await open_conversation(svc, actor, message.conversation_id, audit=False)
    member = await ChatParticipant.get(conversation_id=conversation.id, account_id=actor.account_id)
    if member.visible_up_to is not None and message.id > member.visible_up_to:
        raise NotFoundError()
    await record(svc, actor, "conversation.download", AuditType.READ, details={
        "conversation_id": conversation.id, "attachment_id": attachment.id})
    return attachment


@dataclass(frozen=True)
class DeletionRow:
    entry: DataLeakDeletion
    removed_by: str
    purged_by: str | None


async def deletion_log(svc: Services, actor: Actor) -> list[DeletionRow]:
    """Return the organisation's deletion log (application admins only; audited as a read)."""
    organisation = await Organisation.get_or_none(id=actor.organisation_id) if actor.organisation_id else None
    await require(svc, actor, Permission.CONVERSATION_PURGE, organisation, "conversation.deletion_log")
    entries = await DataLeakDeletion.filter(organisation_id=actor.organisation_id).order_by("-id")
    ids = {e.removed_by_id for e in entries} | {e.purged_by_id for e in entries}
    names = {a.id: a.name for a in await Account.filter(id__in=[i for i in ids if i is not None])}
    await record(svc, actor, "conversation.deletion_log", AuditType.READ)
    return [DeletionRow(e, names.get(e.removed_by_id or 0, "?"),
                        names.get(e.purged_by_id) if e.purged_by_id else None) for e in entries]


async def may(actor: Actor, permission: Permission, conversation: Conversation) -> bool:
    return await allowed(actor, permission, conversation)

