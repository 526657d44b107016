"""The conversation actions: effects, audit rows, events, mails and refusals."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.conversations import actions
from lotse.platform.conversations.models import ChatParticipant, Conversation
from lotse.platform.conversations.presence import presence
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.permissions import Actor
from tests.factories import link, make_account


async def start(svc, people, starter, *others, first=""):
    return await actions.do_start_conversation(svc, Actor.of(starter), subject="Intake", participants=list(others),
                                               first_message=first)


async def test_therapist_starts_a_conversation_with_a_linked_client(svc, people):
    received = []
    async with svc.bus.subscribe(f"account.{people.client.id}") as events:
        conversation = await start(svc, people, people.therapist, people.client)
        received.append(await anext(events))
    assert conversation.manager_id == people.therapist.id
    members = await ChatParticipant.filter(conversation=conversation).values_list("account_id", flat=True)
    assert sorted(members) == sorted([people.therapist.id, people.client.id])
    row = await AuditEvent.get(action="conversation.start")
    assert (row.event_type, row.subject_id, row.client_pseudonym) == (
        AuditType.CREATE, people.client.id, people.client.pseudonym)
    assert received[0][1] == {"event": "account.conversation_added", "account_id": people.client.id,
                              "conversation_id": conversation.id}


async def test_client_starts_with_own_therapist(svc, people):
    conversation = await start(svc, people, people.client, people.therapist)
    assert conversation.manager_id == people.client.id


@pytest.mark.parametrize(("starter", "others", "code"), [
    ("therapist", ["other_client"], "cannot_contact"),       # not linked
    ("supervisor", ["client"], "cannot_contact"),             # supervisors never with clients
    ("client", ["supervisor"], "cannot_contact"),
    ("client", ["colleague"], "cannot_contact"),              # not the client's therapist
    ("client", ["other_client"], "cannot_contact"),           # clients are never alone together
    ("secretary", ["client"], "cannot_contact"),
    ("therapist", ["client", "supervisor"], "cannot_contact"),
])
async def test_who_may_not_talk_to_whom(svc, people, starter, others, code):
    with pytest.raises(NotPermittedError) as refused:
        await start(svc, people, getattr(people, starter), *[getattr(people, o) for o in others])
    assert refused.value.code == code
    assert not await Conversation.exists()


async def test_supervisor_rule_names_the_supervisor(svc, people):
    with pytest.raises(NotPermittedError) as refused:
        await start(svc, people, people.supervisor, people.client)
    assert people.supervisor.name in refused.value.message.render("en")
    assert "Supervisors" in refused.value.message.render("en")
    # Professionals among themselves are fine, the supervisor included.
    conversation = await start(svc, people, people.supervisor, people.therapist, people.secretary)
    assert conversation.id


async def test_start_needs_a_subject_and_someone(svc, people):
    with pytest.raises(ValidationError) as missing:
        await actions.do_start_conversation(svc, Actor.of(people.therapist), subject=" ", participants=[people.client])
    assert "subject" in missing.value.fields
    with pytest.raises(ValidationError):
        await actions.do_start_conversation(svc, Actor.of(people.therapist), subject="x", participants=[])


async def test_post_message_event_audit_and_unread(svc, people):
    conversation = await start(svc, people, people.therapist, people.client)
    async with svc.bus.subscribe(f"conversation.{conversation.id}") as events:
        message = await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Hello there")
        _topic, payload = await anext(events)
    assert payload["event"] == "message.posted"
    assert (payload["message_id"], payload["body"], payload["author_id"]) == (message.id, "Hello there",
                                                                             people.therapist.id)
    row = await AuditEvent.get(action="conversation.post")
    assert row.details["message_id"] == message.id
    assert "Hello there" not in str(row.details)
    from lotse.platform.conversations.queries import list_conversations

    [listed] = await list_conversations(Actor.of(people.client))
    assert (listed.unread, listed.last_message) == (1, "Hello there")
    [own] = await list_conversations(Actor.of(people.therapist))
    assert own.unread == 0
    await actions.do_mark_read(svc, Actor.of(people.client), conversation, message.id)
    [listed] = await list_conversations(Actor.of(people.client))
    assert listed.unread == 0


async def test_message_count_counts_posts_made_from_stale_copies(svc, people):
    """Two posts at once, each from a copy of the conversation loaded before either: both count."""
    conversation = await start(svc, people, people.therapist, people.client)
    first_copy = await Conversation.get(id=conversation.id)
    second_copy = await Conversation.get(id=conversation.id)
    await actions.do_post_message(svc, Actor.of(people.therapist), first_copy, "One")
    await actions.do_post_message(svc, Actor.of(people.client), second_copy, "Two")
    assert (await Conversation.get(id=conversation.id)).message_count == 2


async def test_outsider_cannot_post(svc, people):
    conversation = await start(svc, people, people.therapist, people.client)
    with pytest.raises(NotPermittedError):
        await actions.do_post_message(svc, Actor.of(people.colleague), conversation, "Hi")
    refusal = await AuditEvent.get(action="conversation.post", outcome=Outcome.REFUSED)
    assert refusal.actor_id == people.colleague.id


async def test_offline_participants_get_one_mail_per_hour_without_content(svc, people, clock):
    conversation = await start(svc, people, people.therapist, people.client)
    await presence(svc).connect(people.therapist.id, "tab-1")
    await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Secret content 123")
    await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Second")
    mails = await OutboxMessage.filter(kind="new_message")
    assert [m.recipient for m in mails] == [people.client.email]
    assert mails[0].language == "de"
    assert "Secret content" not in mails[0].body_text + mails[0].body_html + mails[0].subject
    assert "neue Nachricht" in mails[0].subject
    # The therapist is online: no mail when the client answers.
    await actions.do_post_message(svc, Actor.of(people.client), conversation, "Answer")
    assert await OutboxMessage.filter(kind="new_message").count() == 1
    clock.advance(minutes=61)
    await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Third")
    assert await OutboxMessage.filter(kind="new_message", recipient=people.client.email).count() == 2


async def test_manager_changes_subject_and_edits(svc, people):
    conversation = await start(svc, people, people.therapist, people.client, first="Helo")
    message = (await conversation.messages.all())[0]
    await actions.do_change_subject(svc, Actor.of(people.therapist), conversation, "New subject")
    await actions.do_edit_message(svc, Actor.of(people.therapist), message, "Hello")
    assert (await Conversation.get(id=conversation.id)).subject == "New subject"
    await message.refresh_from_db()
    assert (message.body, message.edited_at is not None) == ("Hello", True)
    with pytest.raises(NotPermittedError):
        await actions.do_change_subject(svc, Actor.of(people.client), conversation, "Mine")
    with pytest.raises(NotPermittedError):
        await actions.do_edit_message(svc, Actor.of(people.client), message, "Changed")


async def test_participants_added_removed_and_leaving_keeps_history(svc, people):
    conversation = await start(svc, people, people.therapist, people.colleague)
    await actions.do_add_participant(svc, Actor.of(people.therapist), conversation, people.secretary)
    with pytest.raises(NotPermittedError):  # the colleague is not linked to the client
        await actions.do_add_participant(svc, Actor.of(people.therapist), conversation, people.client)
    with pytest.raises(NotPermittedError):
        await actions.do_add_participant(svc, Actor.of(people.colleague), conversation, people.supervisor)
    await actions.do_post_message(svc, Actor.of(people.secretary), conversation, "Before leaving")
    await actions.do_leave_conversation(svc, Actor.of(people.secretary), conversation)
    with pytest.raises(NotPermittedError):
        await actions.do_post_message(svc, Actor.of(people.secretary), conversation, "After")
    await actions.do_post_message(svc, Actor.of(people.therapist), conversation, "Not for the secretary")
    from lotse.platform.conversations.queries import conversation_state, open_conversation

    seen = await open_conversation(svc, Actor.of(people.secretary), conversation.id)
    state = await conversation_state(Actor.of(people.secretary), seen)
    assert [m["body"] for m in state["messages"].values()] == ["Before leaving"]
    assert state["active"] is False
    await actions.do_remove_participant(svc, Actor.of(people.therapist), conversation, people.colleague)
    assert not await ChatParticipant.filter(conversation=conversation, account=people.colleague, left_at=None).exists()


async def test_manager_cannot_leave_without_handing_over(svc, people):
    conversation = await start(svc, people, people.therapist, people.colleague)
    with pytest.raises(ConflictError) as refused:
        await actions.do_leave_conversation(svc, Actor.of(people.therapist), conversation)
    assert refused.value.code == "manager_cannot_leave"
    await actions.do_hand_over(svc, Actor.of(people.therapist), conversation, people.colleague)
    await actions.do_leave_conversation(svc, Actor.of(people.therapist), conversation)
    assert (await Conversation.get(id=conversation.id)).manager_id == people.colleague.id


async def test_hand_over_only_to_a_professional_linked_to_every_client(svc, people):
    second_client = await make_account(svc, people.org, Role.CLIENT, first_name="Noor", last_name="Smit")
    await link(svc, second_client, people.therapist)
    successor = await make_account(svc, people.org, Role.THERAPIST)
    await link(svc, people.client, successor)  # linked to one of the two clients only
    conversation = await start(svc, people, people.therapist, people.client, second_client)
    with pytest.raises(ConflictError) as refused:
        await actions.do_hand_over(svc, Actor.of(people.therapist), conversation, successor)
    assert refused.value.code == "clients_not_linked"
    assert refused.value.data["clients"] == [{"id": second_client.id, "name": "Noor Smit"}]
    assert "Noor Smit" in refused.value.message.render("en")
    assert people.client.name not in refused.value.message.render("en")
    assert (await Conversation.get(id=conversation.id)).manager_id == people.therapist.id
    await link(svc, second_client, successor)
    await actions.do_hand_over(svc, Actor.of(people.therapist), conversation, successor)
    fresh = await Conversation.get(id=conversation.id)
    assert fresh.manager_id == successor.id
    assert await ChatParticipant.filter(conversation=conversation, account=successor, left_at=None).exists()
    with pytest.raises(NotPermittedError):  # the former manager no longer manages
        await actions.do_change_subject(svc, Actor.of(people.therapist), conversation, "x")
    with pytest.raises(ValidationError):
        await actions.do_hand_over(svc, Actor.of(successor), conversation, people.client)


async def test_hand_over_without_clients_goes_to_any_professional(svc, people):
    conversation = await start(svc, people, people.therapist, people.secretary)
    await actions.do_hand_over(svc, Actor.of(people.therapist), conversation, people.secretary)
    assert (await Conversation.get(id=conversation.id)).manager_id == people.secretary.id
