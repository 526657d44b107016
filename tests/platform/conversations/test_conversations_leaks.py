"""Data-leak removal, the purge that leaves nothing behind, the deletion log, and the 24-hour clean-up."""

from __future__ import annotations

import pytest
from tortoise import connections

from lotse.platform.audit.models import AuditEvent, AuditType
from lotse.platform.conversations import actions, jobs
from lotse.platform.conversations.models import (
    ChatAttachment,
    ChatMessage,
    Conversation,
    DataLeakDeletion,
)
from lotse.platform.conversations.queries import conversation_state, deletion_log
from lotse.platform.conversations.uploads import StoredUpload
from lotse.platform.errors import NotPermittedError, ValidationError
from lotse.platform.files import file_store
from lotse.platform.permissions import Actor
from lotse.platform.tasks.actions import do_complete_task
from lotse.platform.tasks.models import Task, TaskKind, TaskStatus

SECRET = "BSN 123456782 of the wrong client"


async def _store(svc, data: bytes, name: str = "report.pdf") -> StoredUpload:
    writer = file_store(svc).open_writer()
    await writer.write(data)
    await writer.commit()
    return StoredUpload(writer.key, name, "application/pdf", len(data))


async def _conversation_with_leak(svc, people):
    conversation = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Plan",
                                                       participants=[people.client])
    upload = await _store(svc, b"%PDF-1.4 " + SECRET.encode())
    message = await actions.do_post_message(svc, Actor.of(people.therapist), conversation, SECRET, [upload])
    return conversation, message


async def _everything_in_the_database() -> str:
    conn = connections.get("default")
    try:
        tables = await conn.execute_query_dict("SELECT name FROM sqlite_master WHERE type = 'table'")
    except Exception:  # PostgreSQL
        tables = await conn.execute_query_dict(
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = current_schema()")
    dump = []
    for table in tables:
        for row in await conn.execute_query_dict(f'SELECT * FROM "{table["name"]}"'):  # noqa: S608 (names from sqlite_master)
            dump.append(repr(row))
    return "\n".join(dump)


async def test_removal_hides_the_content_and_gives_the_admins_a_task(svc, people):
    conversation, message = await _conversation_with_leak(svc, people)
    async with svc.bus.subscribe(f"conversation.{conversation.id}") as events:
        entry = await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, confirmed=True)
        payloads = [(await anext(events))[1] for _ in range(1)]
    assert payloads == [{"event": "message.removed", "conversation_id": conversation.id, "message_id": message.id,
                         "attachment_id": None}]
    state = await conversation_state(Actor.of(people.client), conversation)
    shown = state["messages"][str(message.id)]
    assert (shown["removed"], shown["body"], shown["attachments"]) == (True, "", [])
    task = await Task.get(id=entry.task_id)
    assert (task.kind, task.assignee_role.value, task.organisation_id) == (TaskKind.MESSAGE_PURGE, "app_admin",
                                                                          people.org.id)
    assert SECRET not in repr(task.data) + task.note
    audit = await AuditEvent.get(action="conversation.leak_remove")
    assert (audit.event_type, audit.details["message_id"]) == (AuditType.DELETE, message.id)


@pytest.mark.parametrize("who", ["client", "colleague", "admin"])
async def test_only_professionals_in_the_conversation_remove(svc, people, who):
    _conversation, message = await _conversation_with_leak(svc, people)
    with pytest.raises(NotPermittedError):
        await actions.do_remove_data_leak(svc, Actor.of(getattr(people, who)), message, confirmed=True)
    assert not (await ChatMessage.get(id=message.id)).removed


async def test_removal_needs_the_confirmation_and_the_setting(svc, people):
    _conversation, message = await _conversation_with_leak(svc, people)
    with pytest.raises(ValidationError):
        await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, confirmed=False)
    people.org.data_leak_deletion = False
    await people.org.save()
    with pytest.raises(NotPermittedError):
        await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, confirmed=True)


async def test_purge_leaves_nothing_behind(svc, people):
    conversation, message = await _conversation_with_leak(svc, people)
    [attachment] = await ChatAttachment.filter(message=message)
    store = file_store(svc)
    assert await store.exists(attachment.file_key)
    entry = await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, confirmed=True)
    assert SECRET in await _everything_in_the_database()  # kept until the purge
    with pytest.raises(NotPermittedError):
        await actions.do_purge_data_leak(svc, Actor.of(people.therapist), entry)
    await actions.do_purge_data_leak(svc, Actor.of(people.admin), entry)
    assert SECRET not in await _everything_in_the_database()
    assert not await ChatAttachment.filter(message_id=message.id).exists()
    assert store.keys() == []
    fresh = await DataLeakDeletion.get(id=entry.id)
    assert (fresh.purged_by_id, fresh.purged_at is not None) == (people.admin.id, True)
    assert (await Task.get(id=entry.task_id)).status is TaskStatus.DONE
    # Everyone still sees that a message was removed.
    state = await conversation_state(Actor.of(people.client), conversation)
    assert state["messages"][str(message.id)]["removed"] is True


async def test_one_attachment_removed_and_purged(svc, people):
    conversation = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Plan",
                                                       participants=[people.client])
    keep = await _store(svc, b"%PDF-1.4 keep", "keep.pdf")
    leak = await _store(svc, b"%PDF-1.4 " + SECRET.encode(), "leak.pdf")
    message = await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Two files", [keep, leak])
    leaked = await ChatAttachment.get(file_key=leak.key)
    entry = await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, attachment=leaked,
                                              confirmed=True)
    state = await conversation_state(Actor.of(people.client), conversation)
    assert [a["filename"] for a in state["messages"][str(message.id)]["attachments"]] == ["keep.pdf"]
    await actions.do_purge_data_leak(svc, Actor.of(people.admin), entry)
    assert file_store(svc).keys() == [keep.key]
    assert (await ChatMessage.get(id=message.id)).body == "Two files"


async def test_deletion_log_only_for_application_admins(svc, people):
    _conversation, message = await _conversation_with_leak(svc, people)
    await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, confirmed=True)
    [row] = await deletion_log(svc, Actor.of(people.admin))
    assert (row.entry.message_id, row.removed_by, row.purged_by) == (message.id, people.therapist.name, None)
    for who in ("therapist", "secretary", "client", "supervisor"):
        with pytest.raises(NotPermittedError):
            await deletion_log(svc, Actor.of(getattr(people, who)))


async def test_completing_the_purge_task_by_hand_does_not_purge(svc, people):
    """The task list's "done" closes the task; the log still shows the removal as not purged."""
    _conversation, message = await _conversation_with_leak(svc, people)
    entry = await actions.do_remove_data_leak(svc, Actor.of(people.therapist), message, confirmed=True)
    await do_complete_task(svc, Actor.of(people.admin), await Task.get(id=entry.task_id))
    [row] = await deletion_log(svc, Actor.of(people.admin))
    assert row.entry.purged_at is None


async def test_empty_conversations_are_deleted_after_24_hours(svc, people, clock):
    empty = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Empty",
                                                participants=[people.client])
    used = await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="Used",
                                               participants=[people.client], first_message="Hi")
    clock.advance(hours=23, minutes=59)
    assert await jobs.delete_empty_conversations(svc) == 0
    clock.advance(minutes=1)
    async with svc.bus.subscribe(f"conversation.{empty.id}") as events:
        assert await jobs.delete_empty_conversations(svc) == 1
        assert (await anext(events))[1]["event"] == "conversation.deleted"
    assert await jobs.delete_empty_conversations(svc) == 0  # idempotent
    assert not await Conversation.filter(id=empty.id).exists()
    assert await Conversation.filter(id=used.id).exists()
    audit = await AuditEvent.get(action="conversation.delete_empty")
    assert audit.details == {"conversation_id": empty.id}
    with pytest.raises(NotPermittedError):
        await actions.do_delete_empty_conversation(svc, Actor.of(people.admin), used)
