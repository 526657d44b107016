"""The audit view: filters, pagination, names, organisation scope, refusals,
reading and exporting recorded — through the query layer, the page, the CSV
export and the JSON API."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from lotse.platform.accounts.models import Role
from lotse.platform.actions import record
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.audit.queries import (
    AuditFilters,
    describe_action,
    export_audit_log,
    filters_from_args,
    list_events,
    read_audit_log,
)
from lotse.platform.errors import NotPermittedError, ValidationError
from lotse.platform.permissions import Actor
from tests.factories import make_account, make_org

NON_ADMINS = [Role.THERAPIST, Role.SUPERVISOR, Role.SECRETARY, Role.CLIENT, Role.CONTENT_EDITOR, Role.SERVICEDESK]


@pytest.fixture
async def world(svc, clock):
    """One organisation with a few events over three days, and a second organisation."""
    org = await make_org(svc, time_zone="Europe/Amsterdam")
    admin = await make_account(svc, org, Role.APP_ADMIN, email="admin@example.org")
    therapist = await make_account(svc, org, Role.THERAPIST, email="therapist@example.org")
    client = await make_account(svc, org, Role.CLIENT, email="client@example.org")
    other_org = await make_org(svc)
    other_admin = await make_account(svc, other_org, Role.APP_ADMIN)
    other_client = await make_account(svc, other_org, Role.CLIENT)

    as_therapist = Actor.of(therapist, source_address="10.0.0.7")
    # 2 March 2026, 10:00 in Amsterdam
    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    await record(svc, as_therapist, "auth.sign_in", AuditType.SIGN_IN, subject=therapist)
    clock.advance(hours=1)
    await record(svc, as_therapist, "account.update", AuditType.UPDATE, subject=client, reason="new phone number")
    # 3 March, 00:30 in Amsterdam (still 2 March in UTC)
    clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    await record(svc, as_therapist, "account.deactivate", AuditType.UPDATE, subject=client,
                 outcome=Outcome.REFUSED)
    clock.set(datetime(2026, 3, 4, 8, 0, tzinfo=UTC))
    await record(svc, Actor.of(admin), "account.reactivate", AuditType.UPDATE, subject=therapist)
    await record(svc, Actor.of(other_admin), "account.update", AuditType.UPDATE, subject=other_client)
    clock.set(datetime(2026, 3, 5, 8, 0, tzinfo=UTC))
    return {"org": org, "admin": admin, "therapist": therapist, "client": client,
            "other_org": other_org, "other_admin": other_admin, "other_client": other_client}


async def read_actions(svc, actor, **filters):
    page = await read_audit_log(svc, actor, AuditFilters(organisation_id=actor.organisation_id, **filters))
    # The admin's own earlier reads are in the log too; these tests are about the others.
    return [row.action for row in page.rows if row.action != "audit.read"]


async def test_newest_first_and_only_the_own_organisation(svc, world):
    actions = await read_actions(svc, Actor.of(world["admin"]))
    assert actions == ["account.reactivate", "account.deactivate", "account.update", "auth.sign_in"]


async def test_filters_narrow_the_rows(svc, world):
    admin = Actor.of(world["admin"])
    therapist, client = world["therapist"], world["client"]
    assert await read_actions(svc, admin, event_type=AuditType.SIGN_IN) == ["auth.sign_in"]
    assert await read_actions(svc, admin, outcome=Outcome.REFUSED) == ["account.deactivate"]
    assert await read_actions(svc, admin, user=str(world["admin"].id)) == ["account.reactivate"]
    assert await read_actions(svc, admin, user="THERAPIST@example.org") == [
        "account.deactivate", "account.update", "auth.sign_in"]
    assert await read_actions(svc, admin, client=client.pseudonym) == ["account.deactivate", "account.update"]
    assert await read_actions(svc, admin, client="client@example.org") == ["account.deactivate", "account.update"]
    assert await read_actions(svc, admin, user="nobody@example.org") == []
    assert await read_actions(svc, admin, user="99999999999999999999") == []
    # Another organisation's client cannot be found by e-mail or pseudonym.
    assert await read_actions(svc, admin, client=world["other_client"].email) == []
    assert await read_actions(svc, admin, client=world["other_client"].pseudonym) == []
    assert therapist.id  # the fixture's therapist exists


async def test_period_is_read_in_the_organisations_time_zone(svc, world):
    admin = Actor.of(world["admin"])
    zone = "Europe/Amsterdam"
    assert await read_actions(svc, admin, date_from=date(2026, 3, 2), date_to=date(2026, 3, 2), time_zone=zone) == [
        "account.update", "auth.sign_in"]
    # 23:30 UTC on 2 March is 00:30 on 3 March in Amsterdam.
    assert await read_actions(svc, admin, date_from=date(2026, 3, 3), date_to=date(2026, 3, 3), time_zone=zone) == [
        "account.deactivate"]
    assert await read_actions(svc, admin, date_from=date(2026, 3, 4), time_zone=zone) == ["account.reactivate"]


async def test_keyset_pagination(svc, world):
    admin = Actor.of(world["admin"])
    filters = AuditFilters(organisation_id=world["org"].id, event_type=AuditType.UPDATE)
    first = await read_audit_log(svc, admin, filters, limit=2)
    assert [r.action for r in first.rows] == ["account.reactivate", "account.deactivate"]
    assert first.next_after_id == first.rows[-1].id
    second = await read_audit_log(svc, admin, filters, after_id=first.next_after_id, limit=2)
    assert [r.action for r in second.rows] == ["account.update"]
    assert second.next_after_id is None


async def test_rows_carry_names_roles_and_plain_words(svc, world):
    admin = Actor.of(world["admin"])
    await record(svc, Actor(987654, Role.THERAPIST, world["org"].id, "gone"), "probe.unknown", AuditType.READ)
    page = await read_audit_log(svc, admin, AuditFilters(organisation_id=world["org"].id))
    by_action = {row.action: row for row in page.rows}
    update = by_action["account.update"]
    assert update.actor_name == world["therapist"].name
    assert update.actor_role == "therapist"
    assert update.subject_name.render("nl") == f"cliënt {world['client'].pseudonym}"
    assert update.reason == "new phone number"
    assert update.source_address == "10.0.0.7"
    assert update.action_text.render("de") == "Kontodaten geändert"
    gone = by_action["probe.unknown"]
    assert gone.actor_name.render("de") == "gelöschtes Konto #987654"
    assert gone.action_text == "probe.unknown"  # no description: the raw name


def test_describe_action_falls_back_to_the_name():
    assert describe_action("account.reactivate").render("de") == "Konto reaktiviert"
    assert describe_action("account.reactivate").render("nl") == "Account opnieuw geactiveerd"
    assert describe_action("something.new") == "something.new"


async def test_reading_is_itself_audited_with_the_filters(svc, world):
    admin = Actor.of(world["admin"], source_address="192.0.2.1")
    filters = AuditFilters(organisation_id=world["org"].id, event_type=AuditType.UPDATE, user="therapist@example.org")
    await read_audit_log(svc, admin, filters)
    row = await AuditEvent.filter(action="audit.read").get()
    assert (row.event_type, row.outcome, row.actor_id, row.organisation_id) == (
        AuditType.READ, Outcome.SUCCESS, world["admin"].id, world["org"].id)
    # Which filters were used, but no e-mail address: the audit trail outlives an erasure.
    assert row.details["filters"] == {"event_type": "update", "user": "e-mail address"}
    assert "@" not in str(row.details)
    assert row.source_address == "192.0.2.1"


@pytest.mark.parametrize("role", NON_ADMINS)
async def test_only_application_admins_may_read_and_refusals_are_audited(svc, world, role):
    someone = await make_account(svc, world["org"], role, password=None)
    with pytest.raises(NotPermittedError):
        await read_audit_log(svc, Actor.of(someone), AuditFilters(organisation_id=world["org"].id))
    with pytest.raises(NotPermittedError):
        await export_audit_log(svc, Actor.of(someone), AuditFilters(organisation_id=world["org"].id))
    refusals = await AuditEvent.filter(actor_id=someone.id, outcome=Outcome.REFUSED).order_by("id")
    assert [(r.action, r.event_type) for r in refusals] == [
        ("audit.read", AuditType.READ), ("audit.export", AuditType.EXPORT)]


async def test_another_organisations_admin_never_sees_these_rows(svc, world):
    other = Actor.of(world["other_admin"])
    # Even when asking for the first organisation explicitly, the scope is the reader's own.
    page = await read_audit_log(svc, other, AuditFilters(organisation_id=world["org"].id))
    assert [r.action for r in page.rows] == ["account.update"]
    assert page.rows[0].subject_id == world["other_client"].id
    text, count = await export_audit_log(svc, other, AuditFilters(organisation_id=world["org"].id))
    assert count == 2  # the update and the other admin's own reading
    assert world["therapist"].name not in text


async def test_csv_export_is_audited_and_defuses_formulas(svc, world):
    admin = Actor.of(world["admin"])
    await record(svc, Actor.of(world["therapist"]), "account.update", AuditType.UPDATE, reason="=HYPERLINK(1)")
    text, count = await export_audit_log(svc, admin, AuditFilters(organisation_id=world["org"].id))
    rows = list(csv.reader(io.StringIO(text)))
    assert count == 5
    assert len(rows) == 6  # header + 5
    assert rows[1][-1] == "'=HYPERLINK(1)"
    export = await AuditEvent.filter(action="audit.export").get()
    assert (export.event_type, export.details["rows"]) == (AuditType.EXPORT, 5)


def test_filters_from_args_name_the_bad_fields():
    with pytest.raises(ValidationError) as caught:
        filters_from_args({"date_from": "2026-13-01", "event_type": "nonsense", "outcome": "maybe"}, 1)
    assert set(caught.value.fields) == {"date_from", "event_type", "outcome"}
    with pytest.raises(ValidationError) as caught:
        filters_from_args({"date_from": "2026-03-05", "date_to": "2026-03-01"}, 1)
    assert set(caught.value.fields) == {"date_to"}
    filters = filters_from_args({"date_from": "2026-03-01", "client": " Client@Example.org ", "event_type": "read"}, 1,
                                "Europe/Berlin")
    assert (filters.date_from, filters.client, filters.event_type, filters.time_zone) == (
        date(2026, 3, 1), "client@example.org", AuditType.READ, "Europe/Berlin")


async def test_list_events_is_the_bare_query(svc, world):
    """Reused by the contact history: no permission check, no audit row of its own."""
    rows = await list_events(AuditFilters(organisation_id=world["org"].id, client=world["client"].pseudonym))
    assert [r.action for r in rows] == ["account.deactivate", "account.update"]
    assert not await AuditEvent.filter(action="audit.read").exists()


# --- Over HTTP -------------------------------------------------------------------------


async def test_page_shows_the_log_in_the_readers_language(svc, world, sign_in_as):
    browser = await sign_in_as(world["admin"], "de")
    response = await browser.get("/audit?event_type=update")
    html = await response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Konto reaktiviert" in html
    assert world["therapist"].name in html
    assert "auth.sign_in" not in html
    assert "Angemeldet" not in html
    # Time in the organisation's zone (Amsterdam): 08:00 UTC is 09:00.
    assert "09:00" in html
    assert await AuditEvent.filter(action="audit.read", actor_id=world["admin"].id).count() == 1


async def test_page_in_dutch_with_pagination_links(svc, world, sign_in_as, clock):
    for _ in range(55):
        await record(svc, Actor.of(world["therapist"]), "auth.sign_in", AuditType.SIGN_IN)
    browser = await sign_in_as(world["admin"], "nl")
    first = await (await browser.get("/audit")).get_data(as_text=True)
    assert "Aangemeld" in first
    assert "after=" in first
    after = first.split("after=")[1].split("&")[0].split('"')[0]
    second = await browser.get(f"/audit?after={after}")
    assert second.status_code == 200
    assert "account.reactivate" not in (await second.get_data(as_text=True))


async def test_page_marks_bad_filters(svc, world, sign_in_as):
    browser = await sign_in_as(world["admin"], "de")
    response = await browser.get("/audit?date_from=gestern")
    html = await response.get_data(as_text=True)
    assert response.status_code == 422
    assert 'aria-invalid="true"' in html
    assert 'aria-describedby="audit-date_from-error"' in html
    assert 'role="alert"' in html


@pytest.mark.parametrize("role", [Role.THERAPIST, Role.SECRETARY, Role.CLIENT])
async def test_page_refuses_others_and_records_it(svc, world, sign_in_as, role):
    someone = await make_account(svc, world["org"], role, password=None)
    browser = await sign_in_as(someone)
    for path in ("/audit", "/audit?date_from=bad", "/audit/export.csv", "/api/v1/audit"):
        response = await browser.get(path)
        assert response.status_code == 403, path
    assert await AuditEvent.filter(actor_id=someone.id, outcome=Outcome.REFUSED).count() == 4


async def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = await client.get("/audit")
    assert response.status_code in (302, 303)
    api = await client.get("/api/v1/audit")
    assert api.status_code == 401


async def test_csv_download(svc, world, sign_in_as):
    browser = await sign_in_as(world["admin"], "de")
    response = await browser.get("/audit/export.csv?outcome=refused")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = (await response.get_data(as_text=True)).lstrip("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "Nummer"
    assert [row[3] for row in rows[1:]] == ["account.deactivate"]
    export = await AuditEvent.filter(action="audit.export").get()
    assert export.details["filters"] == {"outcome": "refused"}


async def test_api_lists_pages_and_records_the_read(svc, world, sign_in_as):
    browser = await sign_in_as(world["admin"], "nl")
    response = await browser.get("/api/v1/audit?limit=3")
    assert response.status_code == 200
    body = await response.get_json()
    assert [e["action"] for e in body["events"]] == ["account.reactivate", "account.deactivate", "account.update"]
    assert body["events"][0]["action_text"] == "Account opnieuw geactiveerd"
    assert body["next_after"] == body["events"][-1]["id"]
    rest = await (await browser.get(f"/api/v1/audit?after={body['next_after']}")).get_json()
    assert [e["action"] for e in rest["events"]] == ["auth.sign_in"]
    assert rest["next_after"] is None
    reads = await AuditEvent.filter(action="audit.read", via="api").count()
    assert reads == 2


async def test_api_filters_and_rejects_bad_input(svc, world, sign_in_as):
    browser = await sign_in_as(world["admin"])
    body = await (await browser.get(f"/api/v1/audit?client={world['client'].email}&outcome=success")).get_json()
    assert [e["action"] for e in body["events"]] == ["account.update"]
    for query in ("event_type=nonsense", "limit=0", "limit=100000", "date_from=yesterday",
                  "after=99999999999999999999999", "user=" + "x" * 300):
        response = await browser.get(f"/api/v1/audit?{query}")
        assert response.status_code in (400, 422), query
        error = await response.get_json()
        assert error["code"] == "invalid"
        assert error["fields"], query


async def test_the_api_is_described_in_openapi(client):
    spec = await (await client.get("/api/v1/openapi.json")).get_json()
    operation = spec["paths"]["/api/v1/audit"]["get"]
    assert "application admins" in operation["description"]
    assert {p["name"] for p in operation["parameters"]} >= {"date_from", "user", "client", "event_type", "after"}


async def test_reading_does_not_see_its_own_record_on_the_same_page(svc, world, clock):
    admin = Actor.of(world["admin"])
    page = await read_audit_log(svc, admin, AuditFilters(organisation_id=world["org"].id))
    assert "audit.read" not in [r.action for r in page.rows]
    clock.advance(timedelta(minutes=1))
    page = await read_audit_log(svc, admin, AuditFilters(organisation_id=world["org"].id))
    assert page.rows[0].action == "audit.read"
