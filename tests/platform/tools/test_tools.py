"""Tools: the catalogue (application admins), assignment and archiving (linked therapists), progress (the client)."""

from __future__ import annotations

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.audit.models import AuditEvent
from lotse.platform.caseload.models import LinkKind
from lotse.platform.errors import ConflictError, NotPermittedError, ValidationError
from lotse.platform.permissions import Actor
from lotse.platform.tools.actions import (
    do_archive_tool,
    do_assign_tool,
    do_create_tool,
    do_record_progress,
)
from lotse.platform.tools.models import ToolKind
from tests.factories import link, make_account, make_client, make_org


@pytest.fixture
async def setting(svc):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    return {"org": org, "therapist": therapist, "client": client,
            "admin": await make_account(svc, org, Role.APP_ADMIN),
            "secretary": await make_account(svc, org, Role.SECRETARY),
            "supervisor": await make_account(svc, org, Role.SUPERVISOR)}


async def test_catalogue_assign_progress_archive(svc, setting):
    s = setting
    tool = await do_create_tool(svc, Actor.of(s["admin"]), s["org"], kind=ToolKind.MODULE, title="Sleep better", steps=8)
    with pytest.raises(ConflictError):
        await do_create_tool(svc, Actor.of(s["admin"]), s["org"], kind=ToolKind.MODULE, title="Sleep better")
    with pytest.raises(NotPermittedError):
        await do_create_tool(svc, Actor.of(s["therapist"]), s["org"], kind=ToolKind.DIARY, title="Mood")
    async with svc.bus.subscribe("tool.assigned") as events:
        assignment = await do_assign_tool(svc, Actor.of(s["therapist"]), s["client"], tool)
        _topic, payload = await anext(events)
    assert payload["supervisor_id"] == s["therapist"].id
    assert assignment.supervisor_id == s["therapist"].id
    with pytest.raises(ConflictError):
        await do_assign_tool(svc, Actor.of(s["therapist"]), s["client"], tool)
    progressed = await do_record_progress(svc, Actor.of(s["client"]), s["client"], assignment.id, 6)
    assert progressed.progress(tool.steps) == 75
    archived = await do_archive_tool(svc, Actor.of(s["therapist"]), s["client"], assignment.id)
    assert archived.archived_at == svc.now()
    actions = [row.action for row in await AuditEvent.filter(subject_id=s["client"].id).order_by("id")]
    assert actions == ["tool.assign", "tool.progress", "tool.archive"]


@pytest.mark.parametrize("who", ["secretary", "supervisor", "admin", "client"])
async def test_only_linked_therapists_assign(svc, setting, who):
    s = setting
    if who == "supervisor":
        await link(svc, s["client"], s["supervisor"], LinkKind.SUPERVISING)
    tool = await do_create_tool(svc, Actor.of(s["admin"]), s["org"], kind=ToolKind.QUESTIONNAIRE, title="PHQ")
    with pytest.raises(NotPermittedError):
        await do_assign_tool(svc, Actor.of(s[who]), s["client"], tool)


async def test_supervisor_of_a_tool_must_be_a_linked_therapist(svc, setting):
    s = setting
    tool = await do_create_tool(svc, Actor.of(s["admin"]), s["org"], kind=ToolKind.TRAINING, title="Breathing")
    with pytest.raises(ValidationError):
        await do_assign_tool(svc, Actor.of(s["therapist"]), s["client"], tool, supervisor=s["supervisor"])
