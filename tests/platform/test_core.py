"""The core every domain stands on: actions, audit, permissions, languages."""

from __future__ import annotations

import re

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.actions import unit
from lotse.platform.audit.models import AuditEvent, AuditLogIsAppendOnlyError, AuditType, Outcome
from lotse.platform.errors import NotPermittedError
from lotse.platform.i18n import choose_language, negotiate
from lotse.platform.permissions import Actor, Permission, allowed
from tests.factories import link, make_account, make_org


async def test_unit_writes_audit_and_publishes_after_commit(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    therapist = await make_account(svc, org, Role.THERAPIST)
    received = []
    async with svc.bus.subscribe("*") as events:
        async with unit(svc, Actor.of(admin), "probe.change", Permission.PROFESSIONAL_MANAGE, therapist) as u:
            u.audit(AuditType.UPDATE, subject=therapist)
        # Nothing is published inside the transaction; after it, the event arrives.
        from lotse.platform.events import Event

        class Probed(Event):
            name = "probe"

        async with unit(svc, Actor.of(admin), "probe.event", None) as u:
            u.event(Probed())
        _topic, payload = await anext(events)
        received.append(payload)
    assert received == [{"event": "probe"}]
    row = await AuditEvent.filter(action="probe.change").get()
    assert (row.actor_id, row.actor_role, row.subject_id, row.outcome) == (admin.id, "app_admin", therapist.id, Outcome.SUCCESS)


async def test_refusal_is_audited_and_nothing_written(svc):
    org = await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    other = await make_account(svc, org, Role.THERAPIST)
    with pytest.raises(NotPermittedError):
        async with unit(svc, Actor.of(therapist), "account.deactivate", Permission.PROFESSIONAL_MANAGE, other) as u:
            u.audit(AuditType.UPDATE, subject=other)
    rows = await AuditEvent.filter(action="account.deactivate").all()
    assert [(r.outcome, r.actor_id) for r in rows] == [(Outcome.REFUSED, therapist.id)]


async def test_rollback_drops_the_audit_rows_of_a_failed_action(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    with pytest.raises(RuntimeError):
        async with unit(svc, Actor.of(admin), "probe.fail", None) as u:
            u.audit(AuditType.UPDATE)
            raise RuntimeError("boom")
    assert not await AuditEvent.filter(action="probe.fail").exists()


async def test_audit_rows_cannot_be_changed_or_deleted(svc):
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    async with unit(svc, Actor.of(admin), "probe.x", None) as u:
        u.audit(AuditType.UPDATE)
    row = await AuditEvent.filter(action="probe.x").get()
    row.reason = "changed"
    with pytest.raises(AuditLogIsAppendOnlyError):
        await row.save()
    with pytest.raises(AuditLogIsAppendOnlyError):
        await row.delete()
    # Underneath the model, the database itself refuses (SQLite and asyncpg
    # raise different classes; the trigger's message is the same).
    with pytest.raises(Exception, match="append-only"):
        await AuditEvent.filter(id=row.id).update(reason="changed")
    with pytest.raises(Exception, match="append-only"):
        await AuditEvent.filter(id=row.id).delete()
    assert (await AuditEvent.get(id=row.id)).reason == ""


async def test_permission_table_respects_organisation_and_links(svc):
    org, other_org = await make_org(svc), await make_org(svc)
    therapist = await make_account(svc, org, Role.THERAPIST)
    client = await make_account(svc, org, Role.CLIENT)
    foreign_admin = await make_account(svc, other_org, Role.APP_ADMIN)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    assert not await allowed(Actor.of(therapist), Permission.CLIENT_MANAGE, client)
    await link(svc, client, therapist)
    assert await allowed(Actor.of(therapist), Permission.CLIENT_MANAGE, client)
    assert await allowed(Actor.of(admin), Permission.PROFESSIONAL_MANAGE, therapist)
    assert not await allowed(Actor.of(foreign_admin), Permission.PROFESSIONAL_MANAGE, therapist)
    assert not await allowed(Actor.of(admin), Permission.CLIENT_VIEW, client)


@pytest.mark.parametrize(
    ("profile", "org", "header", "expected"),
    [
        ("de", "nl", "nl", "de"),
        (None, "de", "nl-NL,nl;q=0.9", "de"),
        (None, None, "fr-FR, de-AT;q=0.8, nl;q=0.5", "de"),
        (None, None, "en-GB", "nl"),
        (None, None, None, "nl"),
        (None, None, "de;q=0", "nl"),
    ],
)
def test_language_choice(profile, org, header, expected):
    assert choose_language(profile, org, header) == expected


def test_accept_language_ignores_garbage():
    assert negotiate(";;,q=abc,de;q=x") in {None, "de"}


async def test_templates_and_code_format_messages_alike(app):
    from lotse.platform.i18n import _l, current_locale

    current_locale.set("nl")
    template = app.jinja_env.from_string(
        '{{ ngettext("%(num)s file of %(name)s", "%(num)s files of %(name)s", 2, name="Eva") }}|{{ _("100%% sure") }}'
    )
    assert await template.render_async() == "2 files of Eva|100% sure"
    assert str(_l("100%% sure")) == "100% sure"


@pytest.mark.parametrize("path", ["/api/v1/session", "/api/v1/clients", "/api/v1/conversations"])
async def test_api_refuses_state_changes_not_sent_as_json(client, path):
    response = await client.post(path, form={"email": "x@example.org"})
    assert response.status_code == 415
    assert (await response.get_json())["code"] == "unsupported_media_type"


@pytest.mark.parametrize("target", ["//evil.example/", "/\t/evil.example", "https://evil.example/", "/\\evil"])
async def test_language_switch_never_redirects_off_site(client, target):
    page = await client.get("/sign-in")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.get_data(as_text=True)).group(1)
    response = await client.post("/language", form={"csrf_token": token, "language": "de", "next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
