"""Help sessions over HTTP: the help centre, starting, the runner pages, idempotency, permissions,
version pinning, resuming after a restart, abandonment, transcripts, outcomes and the context links."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

from lotse.platform.accounts.models import Account, AccountStatus, Role
from lotse.platform.actions import Services
from lotse.platform.audit.models import AuditEvent, AuditType, Outcome
from lotse.platform.help.jobs import abandon_idle_sessions
from lotse.platform.help.models import ActionRun, FlowVersion, HelpSession, SessionStatus
from lotse.platform.mail.models import OutboxMessage
from lotse.platform.tasks.models import Task
from tests.factories import link, make_account, make_client, make_org


async def _admin_and_therapist(svc: Services, **therapist: Any) -> tuple[Account, Account]:
    org = await make_org(svc)
    admin = await make_account(svc, org, Role.APP_ADMIN)
    target = await make_account(svc, org, **therapist)
    return admin, target


def session_path(response: Any) -> str:
    """Return the runner page a start POST redirected to."""
    match = re.search(r"(/help/sessions/[A-Za-z0-9_-]+)", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


async def _start(post: Any, browser: Any, flow_id: str, /, **inputs: str) -> str:
    response = await post(browser, f"/help/start/{flow_id}", **{f"in_{k}": v for k, v in inputs.items()})
    assert response.status_code == 303, await response.get_data(as_text=True)
    return session_path(response)


async def _page(client: Any, path: str) -> str:
    response = await client.get(path)
    assert response.status_code == 200
    return await response.get_data(as_text=True)


async def test_help_centre_lists_the_flows_of_the_role_and_searches(svc: Services, sign_in_as: Any) -> None:
    org = await make_org(svc)
    therapist = await sign_in_as(await make_account(svc, org))
    page = await _page(therapist, "/help")
    assert "Ask the secretary about a client" in page
    assert "A therapist cannot sign in" not in page  # audience: app admins and supervisors
    found = await _page(therapist, "/help?q=password")  # a tag of login-help
    assert "/help/start/login-help" in found
    assert "Ask the secretary" not in found
    admin = await sign_in_as(await make_account(svc, org, Role.APP_ADMIN))
    assert "A therapist cannot sign in" in await _page(admin, "/help")


async def test_admin_reactivates_from_the_checklist_and_a_doubled_confirmation_runs_once(
    svc: Services, sign_in_as: Any, post_form: Any
) -> None:
    admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
    browser = await sign_in_as(admin, "de")
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    page = await _page(browser, path)
    assert "help-checklist" in page  # admins see the checklist
    assert "aus Plattformdaten beantwortet" in page  # auto-answered, in German, with "change"
    assert 'value="confirm"' in page
    assert therapist.name in page  # the confirmation names whom it is about
    first = await post_form(browser, path, input="confirm", step="reactivate")
    second = await post_form(browser, path, input="confirm", step="reactivate")
    assert first.status_code == 200
    assert "Das Konto wieder aktivieren: erledigt" in await first.get_data(as_text=True)  # the result afterwards
    assert second.status_code == 200
    assert "nichts wurde geändert" in await second.get_data(as_text=True)  # the doubled click changed nothing
    assert (await Account.get(id=therapist.id)).status is AccountStatus.ACTIVE
    assert await AuditEvent.filter(action="account.reactivate", outcome=Outcome.SUCCESS).count() == 1
    assert await ActionRun.filter(action="account.reactivate").count() == 1
    await post_form(browser, path, input="choose", option="yes", step="can-sign-in")
    session = await HelpSession.get(public_id=path.rsplit("/", 1)[1])
    assert session.status is SessionStatus.FINISHED
    assert session.outcome == "resolved"
    assert session.path == ["account-state", "reactivate", "can-sign-in", "done"]
    assert session.action_results[0]["action"] == "account.reactivate"
    assert session.action_results[0]["ok"] is True
    audit = await AuditEvent.get(action="account.reactivate", outcome=Outcome.SUCCESS)
    assert audit.reason == f"help session {session.id}"
    assert audit.via == "flow"


async def test_a_long_list_to_pick_from_is_narrowed_by_a_search_first(
    svc: Services, sign_in_as: Any, post_form: Any, monkeypatch: Any
) -> None:
    from lotse.platform.help import queries

    monkeypatch.setattr(queries, "PICK_LIMIT", 3)
    admin, _ = await _admin_and_therapist(svc)
    org = await admin.organisation
    wanted = await make_account(svc, org, first_name="Mila", last_name="Zander")
    for _n in range(4):
        await make_account(svc, org)
    browser = await sign_in_as(admin, "nl")
    page = await _page(browser, "/help/start/reactivate-therapist")
    assert 'name="find_therapist"' in page
    assert 'id="in_therapist"' not in page  # no list of 7 to scroll through, and no free text either
    assert "7 accounts komen overeen" in page
    found = await post_form(browser, "/help/start/reactivate-therapist", find="therapist", find_therapist="zander")
    assert found.status_code == 200
    narrowed = await found.get_data(as_text=True)
    assert f'<option value="{wanted.id}"' in narrowed
    offered = re.search(r'<select id="in_therapist".*?</select>', narrowed, re.S)
    assert offered is not None
    assert offered.group(0).count("<option") == 2  # "please choose" and the one match
    assert "1 account komt overeen" in narrowed
    assert not await HelpSession.exists()  # finding starts nothing
    nothing = await post_form(browser, "/help/start/reactivate-therapist", find="therapist", find_therapist="nobody")
    assert "Geen enkel account komt overeen" in await nothing.get_data(as_text=True)
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(wanted.id))
    session = await HelpSession.get(public_id=path.rsplit("/", 1)[1])
    assert session.subject_id == wanted.id


async def test_concurrent_confirmations_run_the_action_once(svc: Services, sign_in_as: Any, post_form: Any) -> None:
    admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
    browser = await sign_in_as(admin)
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    responses = await asyncio.gather(*(post_form(browser, path, input="confirm", step="reactivate")
                                       for _ in range(3)))
    assert all(r.status_code == 200 for r in responses)
    assert await AuditEvent.filter(action="account.reactivate", outcome=Outcome.SUCCESS).count() == 1
    session = await HelpSession.get(public_id=path.rsplit("/", 1)[1])
    assert session.step == "can-sign-in"


async def test_supervisor_cannot_run_what_a_supervisor_may_not_do(
    svc: Services, sign_in_as: Any, post_form: Any
) -> None:
    org = await make_org(svc)
    supervisor = await make_account(svc, org, Role.SUPERVISOR)
    # Active, so that a supervisor can pick it; the permission is checked before anything else.
    therapist = await make_account(svc, org)
    browser = await sign_in_as(supervisor)
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    page = await _page(browser, path)
    assert "help-conversation" not in page or 'name="option"' in page  # a question: the supervisor cannot see the state
    await post_form(browser, path, input="choose", option="deactivated", step="account-state")
    await post_form(browser, path, input="confirm", step="reactivate")
    session = await HelpSession.get(public_id=path.rsplit("/", 1)[1])
    assert session.outcome == "escalated"
    assert session.path[-1] == "ask-admin"
    refusal = await AuditEvent.get(action="account.reactivate")
    assert refusal.outcome is Outcome.REFUSED
    assert refusal.actor_id == supervisor.id
    assert refusal.via == "flow"
    assert refusal.reason == f"help session {session.id}"


async def test_publishing_a_changed_flow_does_not_disturb_a_session(
    svc: Services, sign_in_as: Any, post_form: Any, settings: Any
) -> None:
    admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
    browser = await sign_in_as(admin)
    old = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    flow_file = Path(settings.flows_dir) / "reactivate-therapist.yaml"
    text = flow_file.read_text()
    changed = (text.replace("version: 1", "version: 2")
               .replace("Can the therapist sign in now?", "Did the reactivation help?")
               .replace("next: can-sign-in", "next: done"))
    flow_file.write_text(changed)
    await post_form(browser, old, input="confirm", step="reactivate")
    page = await _page(browser, old)
    assert "Can the therapist sign in now?" in page  # the old version goes on
    other = await make_account(svc, await admin.organisation, status=AccountStatus.DEACTIVATED)
    new = await _start(post_form, browser, "reactivate-therapist", therapist=str(other.id))
    await post_form(browser, new, input="confirm", step="reactivate")
    new_session = await HelpSession.get(public_id=new.rsplit("/", 1)[1])
    assert new_session.version == 2
    assert new_session.outcome == "resolved"
    assert (await HelpSession.get(public_id=old.rsplit("/", 1)[1])).version == 1
    assert await FlowVersion.filter(flow_id="reactivate-therapist").count() == 2


async def test_resume_after_a_restart(settings: Any, clock: Any, post_form: Any) -> None:
    """Two app objects one after the other on the same database: the session goes on where it stopped."""
    from lotse.platform.accounts.sessions import start_session
    from lotse.platform.app import create_app
    from lotse.platform.web import SESSION_COOKIE

    first = create_app(settings, clock=clock, start_workers=False)
    async with first.test_app():
        svc = first.extensions["lotse"]
        admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
        key = await start_session(admin, svc.now(), pending_two_factor=False)
        browser = first.test_client()
        browser.set_cookie("localhost", SESSION_COOKIE, key)
        path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    second = create_app(settings, clock=clock, start_workers=False)
    async with second.test_app():
        again = second.test_client()
        again.set_cookie("localhost", SESSION_COOKIE, key)
        page = await _page(again, path)
        assert 'value="confirm"' in page
        assert therapist.name in page
        await post_form(again, path, input="confirm", step="reactivate")
        assert (await Account.get(id=therapist.id)).status is AccountStatus.ACTIVE


async def test_idle_sessions_are_abandoned_after_30_days(
    svc: Services, sign_in_as: Any, post_form: Any, clock: Any
) -> None:
    admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
    browser = await sign_in_as(admin)
    idle = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    clock.advance(days=20)
    browser = await sign_in_as(admin)
    busy = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    clock.advance(days=10, minutes=1)
    assert await abandon_idle_sessions(svc) == 1
    abandoned = await HelpSession.get(public_id=idle.rsplit("/", 1)[1])
    assert abandoned.status is SessionStatus.ABANDONED
    assert abandoned.outcome == "abandoned"
    assert (await HelpSession.get(public_id=busy.rsplit("/", 1)[1])).status is SessionStatus.ACTIVE
    assert await AuditEvent.filter(action="help.session.abandon", actor_role="system").count() == 1
    assert await abandon_idle_sessions(svc) == 0
    outcomes = await admin_outcomes(sign_in_as, admin)
    assert "<svg" in outcomes
    assert "reactivate" in outcomes


async def admin_outcomes(sign_in_as: Any, admin: Account) -> str:
    browser = await sign_in_as(admin)
    return await _page(browser, "/help/outcomes?flow=reactivate-therapist")


async def test_outcomes_page_is_for_application_admins(svc: Services, sign_in_as: Any) -> None:
    org = await make_org(svc)
    therapist = await sign_in_as(await make_account(svc, org))
    assert (await therapist.get("/help/outcomes")).status_code == 403


async def test_transcript_view_and_markdown_export(svc: Services, sign_in_as: Any, post_form: Any) -> None:
    admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
    browser = await sign_in_as(admin)
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    await post_form(browser, path, input="confirm", step="reactivate")
    page = await _page(browser, path + "/transcript")
    assert "Het account heractiveren: gedaan" in page  # the action's name in the reader's language, not its id
    assert "account.reactivate" not in page
    response = await browser.get(path + "/transcript.md")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/markdown")
    assert "attachment" in response.headers["Content-Disposition"]
    text = await response.get_data(as_text=True)
    assert "reactivate-therapist" in text
    assert "Het account heractiveren: gedaan" in text
    assert "account.reactivate" not in text
    assert await AuditEvent.filter(action="help.transcript.export", event_type=AuditType.EXPORT).count() == 1


async def test_someone_else_cannot_open_a_session(svc: Services, sign_in_as: Any, post_form: Any) -> None:
    admin, therapist = await _admin_and_therapist(svc)
    browser = await sign_in_as(admin)
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    other = await sign_in_as(await make_account(svc, await admin.organisation, Role.APP_ADMIN))
    assert (await other.get(path)).status_code == 404
    assert (await other.get(path + "/transcript.md")).status_code == 404


async def test_going_back_over_an_action_says_it_already_ran(
    svc: Services, sign_in_as: Any, post_form: Any
) -> None:
    admin, therapist = await _admin_and_therapist(svc, status=AccountStatus.DEACTIVATED)
    browser = await sign_in_as(admin, "nl")
    path = await _start(post_form, browser, "reactivate-therapist", therapist=str(therapist.id))
    await post_form(browser, path, input="confirm", step="reactivate")
    response = await post_form(browser, path, input="back", visit="1")
    page = await response.get_data(as_text=True)
    assert "ongedaan" in page  # "going back does not undo it", in Dutch
    assert "Dit is al om" in page  # the confirmation says it already happened


async def test_form_errors_in_the_users_language_then_a_task(
    svc: Services, sign_in_as: Any, post_form: Any
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    browser = await sign_in_as(therapist, "de")
    path = await _start(post_form, browser, "ask-secretary", client=str(client.id))
    page = await _page(browser, path)
    assert "help-conversation" not in page or "help-checklist" not in page
    refused = await post_form(browser, path, input="submit", step="details", f_note="", f_email="nope")
    assert refused.status_code == 422
    text = await refused.get_data(as_text=True)
    assert "Bitte geben Sie eine gültige E-Mail-Adresse ein." in text
    assert 'aria-invalid="true"' in text
    assert "Bitte füllen Sie dieses Feld aus." in text
    await post_form(browser, path, input="submit", step="details", f_note="Where is the address?", f_email="")
    await post_form(browser, path, input="tick", step="prepare", **{"item_checked-dossier": "1"})
    await post_form(browser, path, input="confirm", step="ask")
    task = await Task.get(client_id=client.id)
    assert task.assignee_role is Role.SECRETARY
    assert task.note == "Where is the address?"


async def test_signed_out_person_gets_a_reset_link_without_learning_anything(
    svc: Services, app: Any, post_form: Any
) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    browser = app.test_client()
    sign_in = await (await browser.get("/sign-in")).get_data(as_text=True)
    assert "/help/start/login-help" in sign_in
    assert (await browser.get("/help/start/login-help")).status_code == 200
    assert (await browser.get("/help/start/reactivate-therapist")).status_code == 404
    path = await _start(post_form, browser, "login-help", email=therapist.email)
    await post_form(browser, path, input="choose", option="forgot", step="what")
    await post_form(browser, path, input="confirm", step="reset")
    page = await _page(browser, path)
    assert "If an account has this address" in page
    assert await OutboxMessage.filter(recipient=therapist.email, kind="password_reset").count() == 1
    stranger = app.test_client()
    assert (await stranger.get(path)).status_code == 404
    # An unknown address walks the same path and reads the same.
    unknown = await _start(post_form, app.test_client(), "login-help", email="nobody@example.org")
    assert unknown != path


async def test_context_links(svc: Services, sign_in_as: Any, post_form: Any) -> None:
    org = await make_org(svc)
    therapist = await make_account(svc, org)
    client = await make_client(svc, org)
    await link(svc, client, therapist)
    browser = await sign_in_as(therapist)
    dossier = await _page(browser, f"/clients/{client.id}")
    assert f"/help/start/ask-secretary?client={client.id}" in dossier
    response = await post_form(browser, "/clients/new", first_name="Sam", last_name="Vries", email=client.email,
                               gender="other", date_of_birth="17-05-1990")
    page = await response.get_data(as_text=True)
    assert "/help/start/duplicate-email?email=" in page
    start = await _page(browser, f"/help/start/duplicate-email?email={client.email}")
    assert f'value="{client.email}"' in start


async def test_flows_translations_and_runner_templates_are_ready_before_the_first_request(
    app: Any, svc: Services, monkeypatch: Any
) -> None:
    """The one-time work is done at start-up, not by the first person to click."""
    from lotse.platform.help import adapters
    from lotse.platform.help.actions import flow_repository
    from lotse.platform.help.adapters import flow_translations

    parsed: list[str] = []
    monkeypatch.setattr(adapters, "load_flow", lambda *args, **kwargs: parsed.append(args[1]))
    assert flow_repository(svc).published()
    assert parsed == []  # every published flow was parsed already
    assert set(flow_translations(svc.settings.locales_dir)._loaded) >= {"de", "nl"}
    from lotse.platform.templating import sync_environment

    compiled = {key[1] for key in app.jinja_env.cache}
    assert {"base.html", "help/index.html"} <= compiled
    drawn_synchronously = {key[1] for key in sync_environment(app).cache}  # type: ignore[union-attr]
    assert {"base.html", "help/start.html", "help/session.html"} <= drawn_synchronously
