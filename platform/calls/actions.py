"""Every change to a call: start, join, leave, invite, end, and the metadata purge.

- Any active participant of a conversation starts a call in it, where the
  organisation offers video calls; while one runs, starting again returns
  it. Everybody in the conversation at that moment is invited.
- An invited person who still takes part in the conversation joins while
  fewer than the call's cap (the organisation's ``participant_cap``, 12 by
  default) are in it; the media unit enforces the same cap on its own.
- The conversation's manager invites people added to the conversation
  later, and ends the call for everybody. When the last person leaves, the
  call ends by itself.
- Only metadata is kept (who, when, how long); it is purged 90 days after
  the call ended.

Joining is checked twice: ``check_join`` before the offer goes to the media
unit (so a refusal costs nothing there), and ``do_join_call`` records the
stay once the unit has accepted the participant.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import cast

from tortoise.exceptions import IntegrityError

from lotse.platform.accounts.models import Account, Role
from lotse.platform.actions import Services, Unit, require, unit
from lotse.platform.audit.models import AuditType
from lotse.platform.calls.events import CallEnded, CallInvited, CallJoined, CallLeft, CallStarted
from lotse.platform.calls.media import call_media
from lotse.platform.calls.models import Call, CallAttendance, CallInvitation
from lotse.platform.conversations.models import ChatParticipant, Conversation
from lotse.platform.errors import ConflictError, NotFoundError, NotPermittedError
from lotse.platform.i18n import _l
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor, Permission

RETENTION = timedelta(days=90)
MIN_CAP, MAX_CAP = 2, 12


class VideoCallsOffError(NotPermittedError):
    default_code = "video_calls_off"
    default_message = _l("Your organisation does not offer video calls.")


class CallEndedError(ConflictError):
    default_code = "call_ended"
    default_message = _l("This call has ended.")


class CallFullError(ConflictError):
    default_code = "call_full"
    default_message = _l("This call is full.")

    def __init__(self, cap: int) -> None:
        super().__init__(message=_l(
            "This call is full: at most %(cap)s people can take part at the same time. "
            "You can join as soon as someone leaves.", cap=cap), data={"cap": cap})


async def _client_subject(conversation_id: int) -> Account | None:
    """The first client in the conversation: whom the call's audit rows are about (contact history)."""
    row = await ChatParticipant.filter(conversation_id=conversation_id, account__role=Role.CLIENT).order_by(
        "id").select_related("account").first()
    return row.account if row is not None else None


async def _video_on(organisation_id: int) -> Organisation:
    organisation = await Organisation.get_or_none(id=organisation_id)
    if organisation is None or not organisation.video_calls:
        raise VideoCallsOffError()
    return organisation


async def attending(call: Call) -> int:
    """Return how many people are in the call now."""
    return await CallAttendance.filter(call_id=call.id, left_at=None).count()


async def running_call(conversation: Conversation) -> Call | None:
    return await Call.filter(conversation_id=conversation.id, ended_at=None).order_by("-id").first()


# --- start ----------------------------------------------------------------------------


async def do_start_call(svc: Services, actor: Actor, conversation: Conversation) -> Call:
    """Start a video call in ``conversation``, or return the one that runs.

    Two people starting at the same moment both check, find no call and
    insert: the unique ``running_for`` lets one insert win, and the other's
    unit rolls back and returns the winner's call.
    """
    try:
        return await _start_call(svc, actor, conversation)
    except IntegrityError:
        existing = await running_call(conversation)
        if existing is None:
            raise
        return existing


async def _start_call(svc: Services, actor: Actor, conversation: Conversation) -> Call:
    async with unit(svc, actor, "call.start", Permission.CALL_START, conversation) as u:
        organisation = await _video_on(conversation.organisation_id)
        existing = await running_call(conversation)
        if existing is not None:
            return existing
        room_id = secrets.token_urlsafe(16)
        call = await Call.create(
            organisation_id=conversation.organisation_id, conversation_id=conversation.id, room_id=room_id,
            media_url=call_media(svc).pick(room_id), cap=max(MIN_CAP, min(MAX_CAP, organisation.participant_cap)),
            started_by_id=actor.account_id, started_at=u.now, running_for=conversation.id,
        )
        members = await ChatParticipant.filter(conversation_id=conversation.id, left_at=None).order_by("id")
        await CallInvitation.bulk_create([
            CallInvitation(call=call, account_id=m.account_id, invited_by_id=actor.account_id,
                           invited_at=u.now)
            for m in members
        ])
        u.audit(AuditType.CREATE, subject=await _client_subject(conversation.id),
                details={"call_id": call.id, "conversation_id": conversation.id, "cap": call.cap})
        u.event(CallStarted(conversation.id, call.id, actor.account_id, actor.name))
    return call


# --- join and leave -------------------------------------------------------------------


async def check_join(svc: Services, actor: Actor, call: Call) -> None:
    """Raise unless ``actor`` may join ``call`` now (a permission refusal is audited)."""
    await require(svc, actor, Permission.CALL_JOIN, call, "call.join")
    if not call.running:
        raise CallEndedError()
    await _video_on(call.organisation_id)
    stays = cast("list[int]", await CallAttendance.filter(call_id=call.id, left_at=None).values_list(
        "account_id", flat=True))
    if actor.account_id not in stays and len(stays) >= call.cap:
        raise CallFullError(call.cap)


async def do_join_call(svc: Services, actor: Actor, call: Call) -> CallAttendance:
    """Record that ``actor`` is in the call (after the media unit accepted them).

    The cap is counted again inside the transaction, with the call's row
    locked (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite has one writer at
    a time), so parallel joins cannot all pass ``check_join``'s count.
    """
    await check_join(svc, actor, call)
    async with unit(svc, actor, "call.join", None, call) as u:
        locked = await Call.filter(id=call.id).select_for_update().first()
        if locked is None or not locked.running:
            raise CallEndedError()
        stays = cast("list[int]", await CallAttendance.filter(call_id=call.id, left_at=None).values_list(
            "account_id", flat=True))
        if actor.account_id not in stays and len(stays) >= locked.cap:
            raise CallFullError(locked.cap)
        # A second tab or a reconnect closes the earlier stay first.
        await CallAttendance.filter(call_id=call.id, account_id=actor.account_id, left_at=None).update(left_at=u.now)
        stay = await CallAttendance.create(call=call, account_id=actor.account_id, joined_at=u.now)
        count = await attending(call)
        u.audit(AuditType.UPDATE, subject=await _client_subject(call.conversation_id),
                details={"call_id": call.id, "conversation_id": call.conversation_id, "attending": count})
        u.event(CallJoined(call.conversation_id, call.id, actor.account_id or 0, count))
    return stay


async def do_leave_call(svc: Services, actor: Actor, call: Call, reason: str = "left") -> bool:
    """Record that ``actor`` left; the call ends when nobody is left. False if they were not in it."""
    async with unit(svc, actor, "call.leave", None, call) as u:
        stay = await CallAttendance.filter(call_id=call.id, account_id=actor.account_id, left_at=None).first()
        if stay is None:
            return False
        stay.left_at = u.now
        await stay.save(update_fields=["left_at"])
        count = await attending(call)
        client = await _client_subject(call.conversation_id)
        u.audit(AuditType.UPDATE, subject=client, details={
            "call_id": call.id, "conversation_id": call.conversation_id, "reason": reason,
            "seconds": stay.seconds, "attending": count})
        u.event(CallLeft(call.conversation_id, call.id, actor.account_id or 0, count))
        if count == 0 and call.running:
            await _end(u, call, client, reason="empty")
    if call.ended_at is not None:
        await call_media(svc).close_room(call.media_url, call.room_id)
    return True


# --- the manager: invite and end ------------------------------------------------------


async def do_invite_to_call(svc: Services, actor: Actor, call: Call, person: Account) -> CallInvitation:
    """Invite a participant of the conversation who is not invited yet (the manager)."""
    async with unit(svc, actor, "call.invite", Permission.CALL_MANAGE, call) as u:
        if not call.running:
            raise CallEndedError()
        await _video_on(call.organisation_id)
        if not await ChatParticipant.filter(conversation_id=call.conversation_id, account_id=person.id,
                                            left_at=None).exists():
            raise NotFoundError("not_in_conversation", _l("This person does not take part in the conversation."))
        existing = await CallInvitation.get_or_none(call_id=call.id, account_id=person.id)
        if existing is not None:
            return existing
        if await attending(call) >= call.cap:
            raise CallFullError(call.cap)
        invitation = await CallInvitation.create(call=call, account_id=person.id, invited_by_id=actor.account_id,
                                                 invited_at=u.now)
        u.audit(AuditType.UPDATE, subject=person if person.role is Role.CLIENT else None,
                details={"call_id": call.id, "conversation_id": call.conversation_id, "invited": person.id})
        u.event(CallInvited(call.conversation_id, call.id, person.id, actor.name))
    return invitation


async def do_end_call(svc: Services, actor: Actor, call: Call) -> Call:
    """End the call for everybody (the manager)."""
    async with unit(svc, actor, "call.end", Permission.CALL_MANAGE, call) as u:
        if call.running:
            await CallAttendance.filter(call_id=call.id, left_at=None).update(left_at=u.now)
            await _end(u, call, await _client_subject(call.conversation_id), reason="ended")
    await call_media(svc).close_room(call.media_url, call.room_id)
    return call


async def _end(u: Unit, call: Call, client: Account | None, *, reason: str) -> None:
    call.ended_at = u.now
    call.running_for = None  # the conversation may start a new call
    await call.save(update_fields=["ended_at", "running_for"])
    u.audit(AuditType.UPDATE, subject=client, action="call.end", details={
        "call_id": call.id, "conversation_id": call.conversation_id, "reason": reason,
        "seconds": int((call.ended_at - call.started_at).total_seconds())})
    u.event(CallEnded(call.conversation_id, call.id))


# --- retention ------------------------------------------------------------------------


async def do_purge_call_metadata(svc: Services, actor: Actor) -> int:
    """Delete the metadata of calls that ended (or started, if never ended) over 90 days ago."""
    if not actor.is_system:
        raise NotPermittedError()
    async with unit(svc, actor, "call.purge", None) as u:
        cutoff = u.now - RETENTION
        old = await Call.filter(ended_at__lt=cutoff).values_list("id", flat=True)
        stale = await Call.filter(ended_at=None, started_at__lt=cutoff).values_list("id", flat=True)
        ids = [*old, *stale]
        if not ids:
            return 0
        await CallAttendance.filter(call_id__in=ids).delete()
        await CallInvitation.filter(call_id__in=ids).delete()
        await Call.filter(id__in=ids).delete()
        u.audit(AuditType.DELETE, details={"calls": len(ids), "before": cutoff.isoformat()})
    return len(ids)
