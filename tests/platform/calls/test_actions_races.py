"""Calls under concurrency: two starts make one call, parallel joins keep the cap.

The actions run side by side with ``asyncio.gather``; on PostgreSQL
(``LOTSE_TEST_DATABASE_URL``) each unit has a connection of its own, so the
check and the write of one action interleave with the other's.
"""

from __future__ import annotations

import asyncio

import pytest

from lotse.platform.calls import actions
from lotse.platform.calls.models import Call, CallAttendance
from lotse.platform.errors import ConflictError
from lotse.platform.permissions import Actor
from tests.factories import link, make_account
from tests.platform.calls.conftest import make_party

pytestmark = pytest.mark.asyncio


async def test_two_people_starting_at_once_get_one_call(svc) -> None:
    party = await make_party(svc)
    starters = [party.manager, party.colleague, party.client] * 2
    calls = await asyncio.gather(*(actions.do_start_call(svc, Actor.of(who), party.conversation)
                                   for who in starters))
    assert len({call.id for call in calls}) == 1
    assert await Call.filter(conversation_id=party.conversation.id, ended_at=None).count() == 1
    # Once it ended, the next start makes a new call.
    await actions.do_end_call(svc, Actor.of(party.manager), calls[0])
    again = await actions.do_start_call(svc, Actor.of(party.client), party.conversation)
    assert again.id != calls[0].id
    assert again.running


async def test_parallel_joins_never_exceed_the_cap(svc) -> None:
    party = await make_party(svc, participant_cap=2)
    from lotse.platform.conversations.actions import do_add_participant

    extra = [await make_account(svc, party.org) for _ in range(3)]
    for person in extra:
        await link(svc, party.client, person)
        await do_add_participant(svc, Actor.of(party.manager), party.conversation, person)
    call = await actions.do_start_call(svc, Actor.of(party.manager), party.conversation)
    people = [party.manager, party.colleague, party.client, *extra]
    results = await asyncio.gather(*(actions.do_join_call(svc, Actor.of(who), call) for who in people),
                                   return_exceptions=True)
    joined = [r for r in results if isinstance(r, CallAttendance)]
    refused = [r for r in results if isinstance(r, ConflictError)]
    assert len(joined) == 2, results
    assert len(refused) == len(people) - 2, results
    assert {r.code for r in refused} == {"call_full"}
    assert await CallAttendance.filter(call_id=call.id, left_at=None).count() == 2
