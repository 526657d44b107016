"""The call actions: effects, audit rows, events and refusals; the 90-day purge."""

from __future__ import annotations

from typing import Any

import pytest

from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.calls import actions
from lotse.platform.calls.jobs import purge_call_metadata
from lotse.platform.calls.models import Call, CallAttendance, CallInvitation
from lotse.platform.conversations.actions import do_add_participant, do_leave_conversation
from lotse.platform.errors import ConflictError, NotFoundError, NotPermittedError
from lotse.platform.permissions import Actor
from tests.factories import link, make_account
from tests.platform.calls.conftest import Party, make_party

pytestmark = pytest.mark.asyncio


async def test_starting_a_call_invites_the_conversation_and_is_audited(svc, party: Party, heard) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.colleague), party.conversation)

    assert call.running
    assert call.cap == 12
    assert call.conversation_id == party.conversation.id
    invited = set(await CallInvitation.filter(call_id=call.id).values_list("account_id", flat=True))
    assert invited == {p.id for p in party.members}
    row = await AuditEvent.get(action="call.start")
    assert row.event_type is AuditType.CREATE
    assert row.actor_id == party.colleague.id
    assert row.client_pseudonym == party.client.pseudonym
    assert row.details["call_id"] == call.id
    started = [e for e in heard if e["event"] == "call.started"]
    assert started == [{"event": "call.started", "conversation_id": party.conversation.id, "call_id": call.id,
                        "started_by_id": party.colleague.id, "started_by_name": party.colleague.name}]
    # Starting again while it runs returns the same call, audits nothing new.
    again = await actions.do_start_call(svc, Actor.of(party.client), party.conversation)
    assert again.id == call.id
    assert await AuditEvent.filter(action="call.start").count() == 1


async def test_the_cap_comes_from_the_organisation(svc) -> None:
    party = await make_party(svc, participant_cap=9)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    assert call.cap == 9


async def test_no_call_where_the_organisation_offers_no_video(svc) -> None:
    party = await make_party(svc, video_calls=False)
    with pytest.raises(NotPermittedError) as refused:
        await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    assert refused.value.code == "video_calls_off"
    assert await Call.all().count() == 0


@pytest.mark.parametrize("who", ["outsider", "former"])
async def test_only_active_participants_start_a_call(svc, party: Party, who: str) -> None:
    person = party.outsider
    if who == "former":
        person = party.colleague
        await do_leave_conversation(svc, Actor.of(person), party.conversation)
    with pytest.raises(NotPermittedError):
        await actions.do_start_call(svc, Actor.of(person), party.conversation)
    refusal = await AuditEvent.get(action="call.start")
    assert refusal.outcome is Outcome.REFUSED
    assert refusal.actor_id == person.id


async def test_join_and_leave_are_recorded_and_the_last_leave_ends_the_call(svc, party: Party, heard) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    await actions.do_join_call(svc, Actor.of(party.manager), call)
    svc.clock.advance(seconds=30)
    await actions.do_join_call(svc, Actor.of(party.client), call)
    assert await actions.attending(call) == 2
    svc.clock.advance(minutes=20)

    assert await actions.do_leave_call(svc, Actor.of(party.client), call) is True
    await call.refresh_from_db()
    assert call.running
    stay = await CallAttendance.get(call_id=call.id, account_id=party.client.id)
    assert stay.seconds == 20 * 60
    leave = await AuditEvent.get(action="call.leave")
    assert leave.actor_id == party.client.id
    assert leave.details["seconds"] == 1200

    assert await actions.do_leave_call(svc, Actor.of(party.manager), call) is True
    await call.refresh_from_db()
    assert not call.running
    assert await AuditEvent.filter(action="call.join").count() == 2
    end = await AuditEvent.get(action="call.end")
    assert end.details["reason"] == "empty"
    assert end.details["seconds"] == 20 * 60 + 30
    kinds = [e["event"] for e in heard if e["event"].startswith("call.")]
    assert kinds == ["call.started", "call.joined", "call.joined", "call.left", "call.left", "call.ended"]
    # Who is not in it leaves nothing.
    assert await actions.do_leave_call(svc, Actor.of(party.colleague), call) is False


async def test_a_join_beyond_the_cap_is_refused_with_a_clear_message(svc) -> None:
    party = await make_party(svc, participant_cap=2)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    await actions.do_join_call(svc, Actor.of(party.manager), call)
    await actions.do_join_call(svc, Actor.of(party.colleague), call)
    with pytest.raises(ConflictError) as full:
        await actions.do_join_call(svc, Actor.of(party.client), call)
    assert full.value.code == "call_full"
    assert "at most 2 people" in full.value.message.render("en")
    assert "höchstens 2 Personen" in full.value.message.render("de")
    assert "maximaal 2 personen" in full.value.message.render("nl")
    # Someone leaves: now there is room.
    await actions.do_leave_call(svc, Actor.of(party.colleague), call)
    await actions.do_join_call(svc, Actor.of(party.client), call)


@pytest.mark.parametrize("who", ["outsider", "former"])
async def test_non_participants_cannot_join(svc, party: Party, who: str) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    person = party.outsider
    if who == "former":
        person = party.colleague
        await do_leave_conversation(svc, Actor.of(person), party.conversation)
    with pytest.raises(NotPermittedError):
        await actions.do_join_call(svc, Actor.of(person), call)
    refusal = await AuditEvent.get(action="call.join")
    assert refusal.outcome is Outcome.REFUSED


async def test_no_join_once_video_is_switched_off_or_the_call_ended(svc, party: Party) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    party.org.video_calls = False
    await party.org.save()
    with pytest.raises(NotPermittedError):
        await actions.do_join_call(svc, Actor.of(party.client), call)
    party.org.video_calls = True
    await party.org.save()
    await actions.do_end_call(svc, Actor.of(party.manager), call)
    with pytest.raises(ConflictError) as ended:
        await actions.do_join_call(svc, Actor.of(party.client), call)
    assert ended.value.code == "call_ended"


async def test_the_manager_invites_people_added_later(svc, party: Party, heard) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    newcomer = await make_account(svc, party.org)
    await link(svc, party.client, newcomer)
    await do_add_participant(svc, Actor.of(party.manager), party.conversation, newcomer)
    with pytest.raises(NotPermittedError):
        await actions.do_join_call(svc, Actor.of(newcomer), call)

    await actions.do_invite_to_call(svc, Actor.of(party.manager), call, newcomer)
    await actions.do_join_call(svc, Actor.of(newcomer), call)
    row = await AuditEvent.get(action="call.invite")
    assert row.actor_id == party.manager.id
    assert row.details["invited"] == newcomer.id
    invited = [e for e in heard if e["event"] == "call.invited"]
    assert invited
    assert invited[0]["account_id"] == newcomer.id


@pytest.mark.parametrize("who", ["colleague", "client", "outsider"])
async def test_only_the_manager_invites_and_ends(svc, party: Party, who: str) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    newcomer = await make_account(svc, party.org)
    await link(svc, party.client, newcomer)
    await do_add_participant(svc, Actor.of(party.manager), party.conversation, newcomer)
    person = getattr(party, who)
    with pytest.raises(NotPermittedError):
        await actions.do_invite_to_call(svc, Actor.of(person), call, newcomer)
    with pytest.raises(NotPermittedError):
        await actions.do_end_call(svc, Actor.of(person), call)
    assert await AuditEvent.filter(action__in=["call.invite", "call.end"], outcome=Outcome.REFUSED).count() == 2


async def test_inviting_someone_outside_the_conversation_is_refused(svc, party: Party) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    with pytest.raises(NotFoundError) as refused:
        await actions.do_invite_to_call(svc, Actor.of(party.manager), call, party.outsider)
    assert refused.value.code == "not_in_conversation"


async def test_ending_closes_every_stay(svc, party: Party, heard) -> None:
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    for person in party.members:
        await actions.do_join_call(svc, Actor.of(person), call)
    await actions.do_end_call(svc, Actor.of(party.manager), call)
    assert await actions.attending(call) == 0
    assert not call.running
    row = await AuditEvent.get(action="call.end")
    assert row.actor_id == party.manager.id
    assert row.details["reason"] == "ended"
    assert heard[-1]["event"] == "call.ended"


async def test_metadata_is_purged_after_90_days(svc, party: Party, clock: Any) -> None:
    old = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    await actions.do_join_call(svc, Actor.of(party.manager), old)
    await actions.do_leave_call(svc, Actor.of(party.manager), old)
    clock.advance(days=60)
    recent = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    await actions.do_join_call(svc, Actor.of(party.client), recent)
    await actions.do_leave_call(svc, Actor.of(party.client), recent)

    clock.advance(days=29)
    assert await purge_call_metadata(svc) == 0
    clock.advance(days=2)  # the first call ended 91 days ago, the second 31
    assert await purge_call_metadata(svc) == 1
    assert await Call.filter(id=old.id).count() == 0
    assert await CallAttendance.filter(call_id=old.id).count() == 0
    assert await CallInvitation.filter(call_id=old.id).count() == 0
    assert await Call.filter(id=recent.id).count() == 1
    row = await AuditEvent.get(action="call.purge")
    assert row.event_type is AuditType.DELETE
    assert row.details["calls"] == 1
    assert row.actor_role == "system"
    clock.advance(days=60)
    assert await purge_call_metadata(svc) == 1
    assert await Call.all().count() == 0


async def test_the_purge_is_for_the_system_only(svc, party: Party) -> None:
    with pytest.raises(NotPermittedError):
        await actions.do_purge_call_metadata(svc, Actor.of(party.manager))
