"""How many SQL statements an action step of a help session runs (SQLite only: its trace callback).

Each statement is an ORM call and a hop to the database thread, and the help sessions benchmark's
slowest steps are the action steps; these tests pin the count so that an extra read fails here.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tortoise import connections

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services
from lotse.platform.audit.models import AuditEvent, Outcome
from lotse.platform.help.actions import flow_repository
from lotse.platform.help.adapters import PlatformActions
from lotse.platform.help.models import ActionRun, HelpSession
from lotse.platform.organisations.models import Organisation
from lotse.platform.permissions import Actor
from lotse.platform.tasks.models import Task
from tests.factories import make_account, make_org


@pytest.fixture
async def statements(svc: Services) -> AsyncIterator[list[str]]:
    """The SQL statements run from now on, as SQLite traces them (first word and table)."""
    db = connections.get("default")
    if db.capabilities.dialect != "sqlite":
        pytest.skip("counts statements with SQLite's trace callback")
    seen: list[str] = []
    connection: Any = db._connection  # type: ignore[attr-defined]
    await connection.set_trace_callback(seen.append)
    try:
        yield seen
    finally:
        await connection.set_trace_callback(None)


def _short(statements: list[str]) -> list[str]:
    return [" ".join(s.split()[:3])[:60] for s in statements]


async def _executor(svc: Services, admin: Account, organisation: Organisation | None) -> PlatformActions:
    repo = flow_repository(svc)
    flow = repo.published_flow("reactivate-therapist")
    assert flow is not None
    version = await repo.pin(flow, svc.now())
    session = await HelpSession.create(public_id=secrets.token_urlsafe(16), flow_id=flow.id, flow_version=version,
                                       version=1, account=admin, started_at=svc.now(), updated_at=svc.now())
    return PlatformActions(svc, Actor.of(admin), session.id, session.flow_id, "en", organisation)


async def test_reactivation_runs_seven_statements_and_a_repeat_two(svc: Services, statements: list[str]) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    executor = await _executor(svc, admin, await Organisation.get(id=org.id))  # as the request's session look-up has it
    statements.clear()
    result = await executor.run_action("account.reactivate", {"account": therapist.id}, idempotency_key="s:1")
    ran = _short(statements)
    assert result.ok, result
    # Claim the run, read the account, the action's transaction (update, audit), record the result.
    assert len(ran) == 7, ran
    statements.clear()
    again = await executor.run_action("account.reactivate", {"account": therapist.id}, idempotency_key="s:1")
    assert again == result
    assert len(statements) == 2, _short(statements)  # the claim fails; the recorded result is read
    assert (await Account.get(id=therapist.id)).status is AccountStatus.ACTIVE
    audit = await AuditEvent.get(action="account.reactivate", outcome=Outcome.SUCCESS)
    assert audit.reason == f"help session {executor.context.session_id}"
    run = await ActionRun.get(key="s:1")
    assert run.done
    assert run.value == result.value
    assert run.error is None


async def test_a_task_for_a_colleague_runs_eight_statements(svc: Services, statements: list[str]) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org)
    executor = await _executor(svc, admin, await Organisation.get(id=org.id))
    statements.clear()
    result = await executor.run_action("tasks.create", {"assignee": therapist.id, "note": "Please call."},
                                       idempotency_key="s:2")
    ran = _short(statements)
    assert result.ok, result
    # Claim, the assignee, the transaction (task, its id, audit), record the result.
    assert len(ran) == 8, ran
    task = await Task.get(assignee_id=therapist.id)
    assert task.data == {"help_session": executor.context.session_id, "flow": "reactivate-therapist"}


async def test_without_the_organisation_at_hand_the_action_loads_it(svc: Services, statements: list[str]) -> None:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, status=AccountStatus.DEACTIVATED)
    other = await make_org(svc)
    for organisation in (None, other):  # none given, or not the actor's: ignored
        executor = await _executor(svc, admin, organisation)
        assert executor.context.organisation is None
    statements.clear()
    result = await executor.run_action("account.reactivate", {"account": therapist.id}, idempotency_key="s:3")
    assert result.ok, result
    assert len(statements) == 8, _short(statements)
    assert any('FROM "organisation"' in s for s in statements)
