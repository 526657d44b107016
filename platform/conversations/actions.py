"""Every change to a conversation: start, post, edit, participants, hand-over, leave,
read state, data-leak removal and purge, and the clean-up of empty conversations.

Who may talk to whom (``contact_problem``): professionals with each other;
a client only with therapists linked to them (treating or read-only link);
a supervisor never with a client; clients are never alone together. The rule
holds for every pair in a conversation, so adding someone, or handing over
to someone, is checked against everyone already in it.

The manager (who started it, until handed over) changes the subject, adds
and removes participants, edits messages and hands over management to a
professional to whom every client in the conversation is linked. Anyone
may leave except the manager, who hands over first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import cast

from tortoise.expressions import F

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import MailSpec, Services, Unit, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.caseload.models import CaseloadLink
from lotse.platform.conversations.events import (
    AddedToConversation,
    ConversationDeleted,
    ManagerChanged,
    MessageEdited,
    MessagePosted,
    MessageRemoved,
    MessagesRead,
    ParticipantJoined,
    ParticipantLeft,
    SubjectChanged,
)
from lotse.platform.conversations.models import (
    ChatAttachment,
    ChatMessage,
    ChatParticipant,
    Conversation,
    DataLeakDeletion,
)
from lotse.platform.conversations.presence import presence
from lotse.platform.conversations.uploads import (
    StoredUpload,
    attachment_too_large,
    message_too_large,
)
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.files import file_store
from lotse.platform.i18n import LazyText, _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission
from lotse.platform.tasks.actions import add_task, close_tasks
from lotse.platform.tasks.models import TaskKind

MAX_SUBJECT = 200
MAX_BODY = 20_000
NOTIFY_INTERVAL = timedelta(hours=1)
EMPTY_LIFETIME = timedelta(hours=24)


def iso(moment: object) -> str:
    return moment.isoformat() if moment is not None else ""  # type: ignore[attr-defined]


# --- who may talk to whom -----------------------------------------------------------


async def contact_problem(people: Sequence[Account]) -> LazyText | None:
    """Return why these people may not be in one conversation together, or None."""
    clients = [p for p in people if p.role is Role.CLIENT]
    professionals = [p for p in people if p.role is not Role.CLIENT]
    if clients and not professionals:
        return _l("Clients can only have conversations with their therapists.")
    if not clients:
        return None
    links = {
        (link.client_id, link.professional_id)
        for link in await CaseloadLink.filter(
            client_id__in=[c.id for c in clients], professional_id__in=[p.id for p in professionals]
        )
    }
    for professional in professionals:
        if professional.role is Role.SUPERVISOR:
            return _l("Supervisors cannot have conversations with clients (%(name)s is a supervisor).",
                      name=professional.name)
        for client in clients:
            if professional.role is not Role.THERAPIST or (client.id, professional.id) not in links:
                return _l("%(professional)s is not linked to %(client)s, so they cannot talk in a conversation.",
                          professional=professional.name, client=client.name)
    return None


async def _members(conversation: Conversation, *, active: bool = True) -> list[ChatParticipant]:
    query = ChatParticipant.filter(conversation_id=conversation.id)
    if active:
        query = query.filter(left_at=None)
    return await query.select_related("account").order_by("id")


def _check_people(actor: Actor, people: Iterable[Account]) -> None:
    for person in people:
        if person.organisation_id != actor.organisation_id:
            raise ValidationError(fields={"participants": _l("This person does not work in this organisation.")})
        if not person.is_active:
            raise ValidationError(fields={"participants": _l(
                "The account of %(name)s is deactivated.", name=person.name)})


async def _client_subject(conversation_id: int) -> Account | None:
    """The first client in a conversation: whom its audit rows are about (for the contact history)."""
    row = await ChatParticipant.filter(conversation_id=conversation_id, account__role=Role.CLIENT).order_by(
        "id").select_related("account").first()
    return row.account if row is not None else None


# --- starting and posting -------------------------------------------------------------


async def do_start_conversation(
    svc: Services,
    actor: Actor,
    *,
    subject: str,
    participants: Sequence[Account],
    first_message: str = "",
) -> Conversation:
    """Start a conversation with the given people; the actor becomes its manager."""
    organisation = await Organisation.get_or_none(id=actor.organisation_id) if actor.organisation_id else None
    async with unit(svc, actor, "conversation.start", Permission.CONVERSATION_START, organisation) as u:
        subject = " ".join(subject.split())[:MAX_SUBJECT]
        if not subject:
            raise ValidationError(fields={"subject": _l("Please enter a subject.")})
        starter = await Account.get(id=actor.account_id)
        others = [p for p in {p.id: p for p in participants}.values() if p.id != starter.id]
        if not others:
            raise ValidationError(fields={"participants": _l("Choose at least one person to talk with.")})
        _check_people(actor, others)
        problem = await contact_problem([starter, *others])
        if problem is not None:
            raise NotPermittedError("cannot_contact", problem)
        conversation = await Conversation.create(
            organisation_id=actor.organisation_id, subject=subject, manager=starter, created_by_id=starter.id,
            created_at=u.now,
        )
        for person in [starter, *others]:
            await ChatParticipant.create(conversation=conversation, account=person, joined_at=u.now)
            u.event(ParticipantJoined(conversation.id, person.id, person.name, person.role.value))
            u.event(AddedToConversation(person.id, conversation.id))
        client = next((p for p in [starter, *others] if p.role is Role.CLIENT), None)
        u.audit(AuditType.CREATE, subject=client, details={
            "conversation_id": conversation.id, "participants": [p.id for p in [starter, *others]]})
        if first_message.strip():
            await _post(svc, u, conversation, starter, first_message, [])
    return conversation


async def do_post_message(
    svc: Services,
    actor: Actor,
    conversation: Conversation,
    body: str,
    uploads: Sequence[StoredUpload] = (),
) -> ChatMessage:
    """Post a message (text and/or attachments already stored) as an active participant."""
    async with unit(svc, actor, "conversation.post", Permission.CONVERSATION_POST, conversation) as u:
        author = await Account.get(id=actor.account_id)
        message = await _post(svc, u, conversation, author, body, uploads)
        u.audit(AuditType.CREATE, subject=await _client_subject(conversation.id), details={
            "conversation_id": conversation.id, "message_id": message.id, "attachments": len(uploads)})
    return message


async def _post(
    svc: Services, u: Unit, conversation: Conversation, author: Account, body: str,
    uploads: Sequence[StoredUpload],
) -> ChatMessage:
    body = body.strip()
    if not body and not uploads:
        raise ValidationError(fields={"body": _l("Please write a message or add an attachment.")})
    if len(body) > MAX_BODY:
        raise ValidationError(fields={"body": _l("The message is too long.")})
    limits = svc.settings
    if any(upload.size > limits.max_attachment_bytes for upload in uploads):
        raise attachment_too_large(limits.max_attachment_bytes)
    if sum(upload.size for upload in uploads) > limits.max_message_bytes:
        raise message_too_large(limits.max_message_bytes)
    message = await ChatMessage.create(conversation=conversation, author=author, body=body, created_at=u.now)
    attachments = []
    for upload in uploads:
        row = await ChatAttachment.create(message=message, file_key=upload.key, filename=upload.filename,
                                          content_type=upload.content_type, size=upload.size, created_at=u.now)
        attachments.append({"id": row.id, "filename": row.filename, "size": row.size,
                            "content_type": row.content_type})
    # Counted in the database: two posts at once from copies loaded before either must both count.
    await Conversation.filter(id=conversation.id).update(last_message_at=u.now,
                                                         message_count=F("message_count") + 1)
    conversation.message_count += 1
    conversation.last_message_at = u.now
    await ChatParticipant.filter(conversation_id=conversation.id, account_id=author.id).update(last_read_id=message.id)
    # The author has read their own message: ``message.posted`` says so, no separate read event.
    u.event(MessagePosted(conversation.id, message.id, author.id, author.name, body, iso(u.now), attachments))
    await _notify(svc, u, conversation, author)
    return message


async def _notify(svc: Services, u: Unit, conversation: Conversation, author: Account) -> None:
    """Mail the participants who are not online "there is a new message": at most hourly, never the text."""
    members = [m for m in await _members(conversation) if m.account_id != author.id]
    if not members:
        return
    online = await presence(svc).online(m.account_id for m in members)
    organisation = await Organisation.get(id=conversation.organisation_id)
    for member in members:
        account: Account = member.account
        if account.id in online or not account.is_active:
            continue
        if member.last_notified_at is not None and u.now - member.last_notified_at < NOTIFY_INTERVAL:
            continue
        member.last_notified_at = u.now
        await member.save(update_fields=["last_notified_at"])
        u.mail(MailSpec(
            kind="new_message", to=account.email, language=account.locale or organisation.default_language,
            context={"name": account.name, "organisation_name": organisation.name,
                     "conversation_id": conversation.id},
            account_id=account.id, organisation_id=organisation.id,
        ))


# --- the manager's rights ---------------------------------------------------------------


async def do_edit_message(svc: Services, actor: Actor, message: ChatMessage, body: str) -> ChatMessage:
    """Change a message's text (the manager)."""
    conversation = await Conversation.get(id=message.conversation_id)
    async with unit(svc, actor, "conversation.edit_message", Permission.CONVERSATION_MANAGE, conversation) as u:
        fresh = await ChatMessage.get(id=message.id)
        if fresh.removed:
            raise ConflictError("message_removed", _l("This message was removed."))
        body = body.strip()
        if not body and not await ChatAttachment.filter(message_id=fresh.id, removed_at=None).exists():
            raise ValidationError(fields={"body": _l("Please write a message or add an attachment.")})
        if len(body) > MAX_BODY:
            raise ValidationError(fields={"body": _l("The message is too long.")})
        fresh.body = body
        fresh.edited_at = u.now
        await fresh.save(update_fields=["body", "edited_at"])
        u.audit(AuditType.UPDATE, subject=await _client_subject(conversation.id),
                details={"conversation_id": conversation.id, "message_id": fresh.id})
        u.event(MessageEdited(conversation.id, fresh.id, body, iso(u.now)))
    return fresh


async def do_change_subject(svc: Services, actor: Actor, conversation: Conversation, subject: str) -> Conversation:
    """Change the subject (the manager)."""
    async with unit(svc, actor, "conversation.change_subject", Permission.CONVERSATION_MANAGE, conversation) as u:
        subject = " ".join(subject.split())[:MAX_SUBJECT]
        if not subject:
            raise ValidationError(fields={"subject": _l("Please enter a subject.")})
        conversation.subject = subject
        await conversation.save(update_fields=["subject"])
        u.audit(AuditType.UPDATE, subject=await _client_subject(conversation.id),
                details={"conversation_id": conversation.id})
        u.event(SubjectChanged(conversation.id, subject))
    return conversation


async def do_add_participant(svc: Services, actor: Actor, conversation: Conversation, person: Account) -> None:
    """Add someone (the manager); everyone in the conversation must be allowed to talk with them."""
    async with unit(svc, actor, "conversation.add_participant", Permission.CONVERSATION_MANAGE, conversation) as u:
        await _add(u, conversation, person)


async def _add(u: Unit, conversation: Conversation, person: Account) -> ChatParticipant:
    _check_people(u.actor, [person])
    members = await _members(conversation)
    if any(m.account_id == person.id for m in members):
        raise ConflictError("already_participant", _l("%(name)s already takes part in this conversation.",
                                                      name=person.name))
    problem = await contact_problem([*(m.account for m in members), person])
    if problem is not None:
        raise NotPermittedError("cannot_contact", problem)
    row = await ChatParticipant.get_or_none(conversation_id=conversation.id, account_id=person.id)
    if row is None:
        row = await ChatParticipant.create(conversation=conversation, account=person, joined_at=u.now)
    else:
        row.left_at = None
        row.visible_up_to = None
        row.joined_at = u.now
        await row.save(update_fields=["left_at", "visible_up_to", "joined_at"])
    u.audit(AuditType.UPDATE, subject=person if person.role is Role.CLIENT else await _client_subject(conversation.id),
            details={"conversation_id": conversation.id, "added": person.id})
    u.event(ParticipantJoined(conversation.id, person.id, person.name, person.role.value))
    u.event(AddedToConversation(person.id, conversation.id))
    return row


async def do_remove_participant(svc: Services, actor: Actor, conversation: Conversation, person: Account) -> None:
    """Remove someone (the manager); their history stays, they post nothing new."""
    async with unit(svc, actor, "conversation.remove_participant", Permission.CONVERSATION_MANAGE,
                    conversation) as u:
        if person.id == conversation.manager_id:
            raise ConflictError("manager_cannot_leave", _l(
                "The manager cannot leave the conversation. Hand over the management first."))
        await _leave(u, conversation, person, removed_by=actor.account_id)


async def do_leave_conversation(svc: Services, actor: Actor, conversation: Conversation) -> None:
    """Leave a conversation; the manager must hand over first."""
    async with unit(svc, actor, "conversation.leave", Permission.CONVERSATION_POST, conversation) as u:
        if actor.account_id == conversation.manager_id:
            raise ConflictError("manager_cannot_leave", _l(
                "The manager cannot leave the conversation. Hand over the management first."))
        person = await Account.get(id=actor.account_id)
        await _leave(u, conversation, person, removed_by=None)


async def _leave(u: Unit, conversation: Conversation, person: Account, *, removed_by: int | None) -> None:
    newest = await ChatMessage.filter(conversation_id=conversation.id).order_by("-id").first()
    updated = await ChatParticipant.filter(conversation_id=conversation.id, account_id=person.id,
                                           left_at=None).update(left_at=u.now,
                                                                visible_up_to=newest.id if newest else 0)
    if not updated:
        raise ConflictError("not_participant", _l("%(name)s does not take part in this conversation.",
                                                  name=person.name))
    u.audit(AuditType.UPDATE, subject=person if person.role is Role.CLIENT else await _client_subject(conversation.id),
            details={"conversation_id": conversation.id, "left": person.id})
    u.event(ParticipantLeft(conversation.id, person.id, removed_by))


async def do_hand_over(svc: Services, actor: Actor, conversation: Conversation, successor: Account) -> Conversation:
    """Make another professional the manager; every client in the conversation must be linked to them."""
    async with unit(svc, actor, "conversation.hand_over", Permission.CONVERSATION_MANAGE, conversation) as u:
        if successor.role is Role.CLIENT:
            raise ValidationError(fields={"successor": _l("Only a professional can manage a conversation.")})
        if successor.id == conversation.manager_id:
            raise ConflictError("already_manager", _l("%(name)s already manages this conversation.",
                                                      name=successor.name))
        _check_people(actor, [successor])
        members = await _members(conversation)
        clients = [m.account for m in members if m.account.role is Role.CLIENT]
        linked = set(cast("list[int]", await CaseloadLink.filter(
            professional_id=successor.id, client_id__in=[c.id for c in clients]).values_list("client_id", flat=True)))
        unlinked = [c for c in clients if c.id not in linked]
        if unlinked:
            names = ", ".join(c.name for c in unlinked)
            raise ConflictError(
                "clients_not_linked",
                _l("Management can only go to a professional linked to every client in the conversation. "
                   "%(successor)s is not linked to: %(clients)s.", successor=successor.name, clients=names),
                data={"clients": [{"id": c.id, "name": c.name} for c in unlinked]},
            )
        if not any(m.account_id == successor.id for m in members):
            await _add(u, conversation, successor)
        conversation.manager_id = successor.id
        await conversation.save(update_fields=["manager_id"])
        u.audit(AuditType.UPDATE, subject=clients[0] if clients else None,
                details={"conversation_id": conversation.id, "manager": successor.id})
        u.event(ManagerChanged(conversation.id, successor.id))
    return conversation


async def do_mark_read(svc: Services, actor: Actor, conversation: Conversation, up_to: int) -> int:
    """Mark messages read up to ``up_to``; return the participant's read mark.

    Not audited: opening a conversation is audited as a read already, and a
    row per message seen would drown the log.
    """
    async with unit(svc, actor, "conversation.mark_read", Permission.CONVERSATION_READ, conversation) as u:
        member = await ChatParticipant.get(conversation_id=conversation.id, account_id=actor.account_id)
        newest = await ChatMessage.filter(conversation_id=conversation.id, id__lte=up_to).order_by("-id").first()
        if newest is None or newest.id <= member.last_read_id:
            return member.last_read_id
        member.last_read_id = newest.id
        await member.save(update_fields=["last_read_id"])
        u.event(MessagesRead(conversation.id, actor.account_id or 0, newest.id))
    return newest.id


# --- data leaks -----------------------------------------------------------------------------


async def do_remove_data_leak(
    svc: Services,
    actor: Actor,
    message: ChatMessage,
    *,
    attachment: ChatAttachment | None = None,
    confirmed: bool,
) -> DataLeakDeletion:
    """Remove a message (or one attachment) that held sensitive data; the app admins get a purge task."""
    conversation = await Conversation.get(id=message.conversation_id)
    async with unit(svc, actor, "conversation.leak_remove", Permission.CONVERSATION_LEAK_REMOVE, conversation) as u:
        if not confirmed:
            raise ValidationError(fields={"confirm": _l(
                "Please confirm that the message contained sensitive data that does not belong here.")})
        fresh = await ChatMessage.get(id=message.id)
        if fresh.removed:
            raise ConflictError("message_removed", _l("This message was removed."))
        if attachment is not None:
            target = await ChatAttachment.get_or_none(id=attachment.id, message_id=fresh.id, removed_at=None)
            if target is None:
                raise ConflictError("message_removed", _l("This message was removed."))
            target.removed_at = u.now
            await target.save(update_fields=["removed_at"])
        else:
            fresh.removed_at = u.now
            await fresh.save(update_fields=["removed_at"])
        entry = await DataLeakDeletion.create(
            organisation_id=conversation.organisation_id, conversation_id=conversation.id, message_id=fresh.id,
            attachment_id=attachment.id if attachment is not None else None, removed_by_id=actor.account_id,
            removed_at=u.now,
        )
        task = await add_task(u, organisation_id=conversation.organisation_id, kind=TaskKind.MESSAGE_PURGE,
                              assignee_role=Role.APP_ADMIN, data={"deletion_id": entry.id})
        entry.task_id = task.id
        await entry.save(update_fields=["task_id"])
        u.audit(AuditType.DELETE, subject=await _client_subject(conversation.id), details={
            "conversation_id": conversation.id, "message_id": fresh.id, "deletion_id": entry.id,
            "attachment_id": entry.attachment_id})
        u.event(MessageRemoved(conversation.id, fresh.id, entry.attachment_id))
    return entry


async def do_purge_data_leak(svc: Services, actor: Actor, entry: DataLeakDeletion) -> DataLeakDeletion:
    """Erase a removed message's text and attachment files for good (application admins; content unseen)."""
    organisation = await Organisation.get_or_none(id=entry.organisation_id)
    async with unit(svc, actor, "conversation.purge", Permission.CONVERSATION_PURGE, organisation) as u:
        fresh = await DataLeakDeletion.get(id=entry.id)
        if fresh.purged_at is not None:
            raise ConflictError("already_purged", _l("This removal was purged already."))
        keys: list[str] = []
        if fresh.attachment_id is None:
            attachments = await ChatAttachment.filter(message_id=fresh.message_id)
            await ChatMessage.filter(id=fresh.message_id).update(body="", purged_at=u.now)
        else:
            attachments = await ChatAttachment.filter(id=fresh.attachment_id)
        keys = [a.file_key for a in attachments]
        await ChatAttachment.filter(id__in=[a.id for a in attachments]).delete()
        fresh.purged_at = u.now
        fresh.purged_by_id = actor.account_id
        await fresh.save(update_fields=["purged_at", "purged_by_id"])
        if fresh.task_id is not None:
            await close_tasks(u, id=fresh.task_id)
        u.audit(AuditType.DELETE, details={"deletion_id": fresh.id, "message_id": fresh.message_id,
                                           "attachment_id": fresh.attachment_id, "files": len(keys)})
    # Files go once the rows are gone for good; a file left by a crash here has no row pointing at it.
    store = file_store(svc)
    for key in keys:
        await store.delete(key)
    return fresh


# --- clean-up -----------------------------------------------------------------------------------


async def do_delete_empty_conversation(svc: Services, actor: Actor, conversation: Conversation) -> bool:
    """Delete a conversation that has had no message for 24 hours since it was created (a job's action)."""
    if not actor.is_system:
        raise NotPermittedError()
    async with unit(svc, actor, "conversation.delete_empty", None) as u:
        fresh = await Conversation.get_or_none(id=conversation.id)
        if fresh is None or fresh.message_count or fresh.created_at > u.now - EMPTY_LIFETIME:
            return False
        if await ChatMessage.filter(conversation_id=fresh.id).exists():
            return False
        client = await _client_subject(fresh.id)
        await fresh.delete()
        u.audit(AuditType.DELETE, subject=client, details={"conversation_id": conversation.id})
        u.event(ConversationDeleted(conversation.id))
    return True
