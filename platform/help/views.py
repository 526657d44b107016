"""The help centre (``/help``), starting a flow, the runner pages, transcripts and outcome statistics.

Pages work without JavaScript: every answer is a plain POST form with CSRF.
Application admins see a session as an interactive checklist (the path so
far, ticked, and the step at hand); everybody else as a guided conversation.
Both are the same engine and the same POSTs.

Signed-out people may start only the sign-in help (``ANONYMOUS_FLOWS``); their
sessions are keyed by a random cookie.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup
from quart import Blueprint, Response, current_app, g, redirect, request, url_for

from lotse.engine.model import (
    ActionStep,
    ChecklistStep,
    Flow,
    FormStep,
    InfoStep,
    InputType,
    QuestionStep,
    Step,
)
from lotse.engine.runner import (
    Back,
    Cancel,
    Choose,
    Confirm,
    Continue,
    SessionState,
    Submit,
    Tick,
    UserInput,
)
from lotse.engine.views import (
    AnyView,
    ChecklistView,
    ConfirmView,
    EndView,
    FormView,
    InfoView,
    NoticeCode,
    QuestionView,
)
from lotse.platform.accounts.models import Role
from lotse.platform.errors import NotFoundError, ValidationError
from lotse.platform.help import queries
from lotse.platform.help.actions import (
    RUNNER,
    do_advance_session,
    do_start_session,
    flow_repository,
    load_flow_of,
    may_start,
)
from lotse.platform.help.adapters import ANONYMOUS_FLOWS, flow_translations
from lotse.platform.help.models import HelpSession
from lotse.platform.i18n import LANGUAGES, LazyText, _, _l, current_time_zone
from lotse.platform.permissions import Actor
from lotse.platform.templating import sync_environment
from lotse.platform.web import (
    actor,
    csrf_token,
    form_data,
    render,
    render_sync,
    services,
    signed_in,
)

blueprint = Blueprint("help", __name__)

HELP_COOKIE = "lotse_help"

FIELD_ERRORS: dict[str, LazyText] = {
    "required": _l("Please fill in this field."),
    "too long": _l("This is too long."),
    "not a number": _l("Please enter a number."),
    "yes or no": _l("Please choose yes or no."),
    "not a date (YYYY-MM-DD)": _l("Please enter a date."),
    "not a text": _l("This value is not valid."),
    "not an e-mail address": _l("Please enter a valid e-mail address."),
    "does not have the expected form": _l("This does not have the expected form."),
    "no such field": _l("This value is not valid."),
}

ACTION_LABELS: dict[str, LazyText] = {
    "account.reactivate": _l("Reactivate the account"),
    "account.resend_welcome_mail": _l("Send a new welcome mail"),
    "account.send_password_reset": _l("Send a link to set a new password"),
    "account.send_unblock_link": _l("Send a link to unblock the account"),
    "account.unblock": _l("Unblock the account"),
    "account.reset_two_factor": _l("Reset two-factor authentication"),
    "account.create_client": _l("Create the client account"),
    "account.update_email": _l("Change the e-mail address"),
    "caseload.search": _l("Search clients"),
    "caseload.link_professional": _l("Link the professional to the client"),
    "caseload.link_self": _l("Link yourself to the client"),
    "caseload.request_link": _l("Send the client a link request"),
    "caseload.unlink_professional": _l("Unlink the professional from the client"),
    "tasks.create": _l("Create a task"),
    "conversations.start": _l("Start a conversation"),
}

OUTCOME_LABELS: dict[str, LazyText] = {
    "resolved": _l("resolved"),
    "escalated": _l("escalated"),
    "not_resolved": _l("not resolved"),
    "abandoned": _l("abandoned"),
}

STATUS_LABELS: dict[str, LazyText] = {
    "active": _l("in progress"),
    "finished": _l("finished"),
    "abandoned": _l("abandoned"),
}


# --- small helpers -------------------------------------------------------------------


def _anonymous_key() -> str | None:
    value = request.cookies.get(HELP_COOKIE)
    return value[:100] if value else None


def _language() -> str:
    return str(g.get("language") or "nl")


def flow_title(flow: Flow, language: str | None = None) -> str:
    """Return the flow's title in the user's language (from flows.po), else the English one."""
    translated = flow_translations(services().settings.locales_dir).translate(
        language or _language(), f"{flow.id}/title", flow.title)
    return translated or flow.title


def flow_description(flow: Flow) -> str:
    if not flow.description:
        return ""
    translated = flow_translations(services().settings.locales_dir).translate(
        _language(), f"{flow.id}/description", flow.description)
    return RUNNER.renderer.html(translated or flow.description)


def startable_flows(who: Actor) -> list[Flow]:
    flows = flow_repository(services()).published().values()
    return sorted((f for f in flows if may_start(who, f)), key=lambda f: flow_title(f).lower())


WARM_TEMPLATES = ("base.html", "help/index.html")
# Drawn synchronously (``render_sync``): the start form and the runner page, on every click.
SYNC_TEMPLATES = ("base.html", "help/start.html", "help/session.html")


@blueprint.before_app_serving
async def warm_up() -> None:
    """Do the help pages' one-time work before the first request instead of during it.

    Parsing the published flows, reading flows.po and compiling the runner's templates
    otherwise falls on the first people to click, and every request behind them waits
    (one worker serves one request at a time).
    """
    svc = services()
    flow_repository(svc).published()
    translations = flow_translations(svc.settings.locales_dir)
    for language in LANGUAGES:
        translations.translate(language, "", "")
    for name in WARM_TEMPLATES:
        current_app.jinja_env.get_template(name)
    for name in SYNC_TEMPLATES:
        sync_environment(current_app).get_template(name)


@blueprint.app_context_processor
async def help_links() -> dict[str, Any]:
    """Give every page ``help_flows(kind)``: the flows the user may start for a context."""

    def help_flows(kind: str, flow_id: str | None = None) -> list[tuple[str, str, str]]:
        """Return (flow id, title, input id) of startable flows for ``kind`` (client, email, sign_in)."""
        try:
            who = actor()
            found = []
            for flow in startable_flows(who):
                if flow_id is not None and flow.id != flow_id:
                    continue
                wanted = {"client": InputType.CLIENT, "email": InputType.EMAIL}.get(kind)
                if kind == "sign_in":
                    if flow.id in ANONYMOUS_FLOWS:
                        found.append((flow.id, flow_title(flow), ""))
                    continue
                for spec in flow.inputs:
                    if spec.type is wanted:
                        found.append((flow.id, flow_title(flow), spec.id))
                        break
            return found
        except Exception:
            return []

    return {"help_flows": help_flows}


# --- help centre ---------------------------------------------------------------------


@blueprint.route("/help")
async def index() -> Any:
    """The help centre: the flows the user may start (searchable) and sessions in progress."""
    who = actor()
    query = " ".join(request.args.get("q", "").split())[:100]
    flows = startable_flows(who)
    if query:
        needle = query.lower()
        flows = [f for f in flows if needle in flow_title(f).lower() or needle in f.title.lower()
                 or any(needle in tag.lower() for tag in f.tags)]
    sessions = await queries.my_sessions(who, _anonymous_key(), active_only=True, limit=20)
    return await render("help/index.html", flows=flows, query=query, sessions=sessions,
                        titles=_titles(sessions), flow_title=flow_title, flow_description=flow_description,
                        is_admin=who.role is Role.APP_ADMIN)


def _titles(sessions: list[HelpSession]) -> dict[int, str]:
    repo = flow_repository(services())
    published = repo.published()
    titles = {}
    for session in sessions:
        flow = published.get(session.flow_id)
        titles[session.id] = flow_title(flow) if flow is not None else session.flow_id
    return titles


@blueprint.route("/help/sessions")
async def my_sessions() -> Any:
    """Every help session of the user: in progress, finished, abandoned."""
    who = actor()
    sessions = await queries.my_sessions(who, _anonymous_key())
    return await render("help/sessions.html", sessions=sessions, titles=_titles(sessions),
                        status_labels=STATUS_LABELS, outcome_labels=OUTCOME_LABELS)


# --- starting ------------------------------------------------------------------------


def _input_kind(spec_type: InputType) -> str:
    return {InputType.EMAIL: "email", InputType.DATE: "date"}.get(spec_type, "text")


@blueprint.route("/help/start/<flow_id>", methods=["GET", "POST"])
async def start(flow_id: str) -> Any:
    """Say what the flow is about (pick the subject, type an address), then start it."""
    svc = services()
    who = actor()
    flow = flow_repository(svc).published_flow(flow_id)
    if flow is None or not may_start(who, flow):
        raise NotFoundError()
    values: dict[str, str] = {}
    for spec in flow.inputs:
        given = request.args.get(spec.id) or request.args.get(spec.type.value)
        if given:
            values[spec.id] = given[:300]
    errors: dict[str, str] = {}
    find: dict[str, str] = {}  # per account input: the part of a name or address its list is narrowed by
    form: dict[str, str] = {}
    if request.method == "POST":
        form = await form_data()
        values = {spec.id: form.get(f"in_{spec.id}", "").strip()[:300] for spec in _inputs_for(who, flow)}
        find = {spec.id: form.get(f"find_{spec.id}", "").strip()[:100] for spec in _inputs_for(who, flow)
                if spec.type in queries.ACCOUNT_TYPES}
    if request.method == "POST" and not form.get("find"):
        inputs, errors = _bind_inputs(flow, values, await queries.posted_choices(who, flow, values, g.get("organisation")))
        if not errors:
            anonymous_key = _anonymous_key() or (secrets.token_urlsafe(32) if who.role is None else None)
            try:
                session, _view = await do_start_session(svc, who, flow, inputs=inputs, locale=_language(),
                                                        anonymous_key=anonymous_key,
                                                        organisation=g.get("organisation"))
            except ValidationError as error:
                errors = {name: str(message) for name, message in error.fields.items()}
            else:
                response = redirect(url_for("help.session", public_id=session.public_id), 303)
                if who.role is None and anonymous_key and anonymous_key != request.cookies.get(HELP_COOKIE):
                    response.set_cookie(HELP_COOKIE, anonymous_key, httponly=True, samesite="Lax",
                                        secure=svc.settings.secure_cookies, max_age=60 * 60 * 24 * 30)
                return response
    picks = await queries.subject_choices(svc, who, flow, g.get("organisation"), find)
    return await render_sync("help/start.html", 422 if errors else 200, flow=flow, title=flow_title(flow),
                        description=flow_description(flow), picks=picks, values=values, errors=errors,
                        input_kind=_input_kind, labels=_input_labels(flow), inputs=_inputs_for(who, flow))


def _inputs_for(who: Actor, flow: Flow) -> list[Any]:
    """The inputs a person fills in to start: signed out, nobody to pick (accounts stay empty)."""
    if who.role is None:
        return [spec for spec in flow.inputs if spec.type not in queries.ACCOUNT_TYPES]
    return list(flow.inputs)


def _input_labels(flow: Flow) -> dict[str, str]:
    translations = flow_translations(services().settings.locales_dir)
    labels = {}
    for spec in flow.inputs:
        english = spec.label or spec.id.replace("-", " ").replace("_", " ").capitalize()
        labels[spec.id] = translations.translate(_language(), f"{flow.id}/inputs/{spec.id}/label", english) or english
    return labels


def _bind_inputs(
    flow: Flow, values: Mapping[str, str], choices: Mapping[str, list[queries.Choice]]
) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn the start form into the flow's inputs: account references for accounts, text otherwise."""
    inputs: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for spec in flow.inputs:
        if spec.id not in values:
            continue
        raw = values.get(spec.id, "")
        if not raw:
            if spec.required:
                errors[spec.id] = _("Please fill in this field.")
            continue
        if spec.type in queries.ACCOUNT_TYPES:
            options = choices.get(spec.id, [])
            chosen = next((c for c in options if c.value == raw), None)
            if chosen is not None:
                inputs[spec.id] = chosen.ref
            elif options:
                errors[spec.id] = _("Please choose one of the offered values.")
            else:
                # Nobody to choose from that the user may see: a name only, which no action will accept.
                inputs[spec.id] = {"id": None, "name": raw, "email": "", "role": spec.type.value}
        elif spec.type is InputType.EMAIL:
            if "@" not in raw or " " in raw or "." not in raw.split("@")[-1]:
                errors[spec.id] = _("Please enter a valid e-mail address.")
            else:
                inputs[spec.id] = raw.lower()
        else:
            inputs[spec.id] = raw
    return inputs, errors


# --- the runner --------------------------------------------------------------------------


def _input_from_form(form: Mapping[str, str], view_step: str | None = None) -> UserInput | None:
    kind = form.get("input", "")
    step = form.get("step") or view_step
    match kind:
        case "continue":
            return Continue(step)
        case "choose":
            return Choose(form.get("option", ""), step)
        case "submit":
            return Submit({k[2:]: v for k, v in form.items() if k.startswith("f_")}, step)
        case "tick":
            return Tick(tuple(k[5:] for k, v in form.items() if k.startswith("item_") and v), False, step)
        case "confirm":
            return Confirm(step)
        case "cancel":
            return Cancel(step)
        case "back":
            visit = form.get("visit", "")
            return Back(int(visit) if visit.isdigit() else None)
    return None


async def _load(public_id: str) -> HelpSession:
    return await queries.get_session_for(actor(), public_id, _anonymous_key())


@blueprint.route("/help/sessions/<public_id>", methods=["GET", "POST"])
async def session(public_id: str) -> Any:
    """One help session: the step at hand, the path so far, going back."""
    svc = services()
    who = actor()
    row = await _load(public_id)
    user_input = None
    if request.method == "POST":
        user_input = _input_from_form(await form_data())
        if user_input is None:
            raise ValidationError(fields={"input": _l("This value is not valid.")})
    row, state, view = await do_advance_session(svc, who, row, user_input, locale=_language(),
                                                organisation=g.get("organisation"))
    # The answer's page is shown right away (no redirect): one request per click. Reloading it
    # sends the answer again, which the engine ignores (it names a step that is no longer current).
    flow = await load_flow_of(svc, row)
    page = _page(flow, row, state, view, who)
    return await render_sync("help/session.html", 422 if request.method == "POST" and view.problems else 200, **page)


def _page(flow: Flow, row: HelpSession, state: SessionState, view: AnyView, who: Actor) -> dict[str, Any]:
    kind = {InfoView: "info", QuestionView: "question", FormView: "form", ChecklistView: "checklist",
            ConfirmView: "confirm", EndView: "end"}[type(view)]
    field_errors = {}
    if isinstance(view, FormView):
        for f in view.fields:
            if f.error:
                message = FIELD_ERRORS.get(f.error)
                if message is None and f.error.startswith("one of"):
                    message = _l("Please choose one of the offered values.")
                field_errors[f.id] = str(message or _l("This value is not valid."))
    other_problems = bool(view.problems) and not field_errors
    notices = []
    for notice in view.notices:
        if notice.code is NoticeCode.ACTION_ALREADY_RAN:
            notices.append(_("An action of this step already ran at %(time)s; going back does not undo it.",
                             time=_time(notice.at)))
        elif notice.code is NoticeCode.ALREADY_ANSWERED:
            notices.append(_("This step was already answered; nothing changed."))
        elif notice.code is NoticeCode.ACTION_FAILED:
            notices.append(_("The action did not succeed."))
        elif notice.code is NoticeCode.CANNOT_GO_ON:
            notices.append(_("This help cannot go on from here, so it has ended. Please start it again, "
                             "or ask your organisation for help."))
    previous = [_("This was already done at %(time)s. Confirming again runs it once more.", time=_time(n.at))
                for n in getattr(view, "previous_runs", ())]
    return {
        "action": url_for("help.session", public_id=row.public_id),
        "csrf": csrf_token(),
        "flow": flow,
        "row": row,
        "state": state,
        "view": view,
        "kind": kind,
        "title": flow_title(flow),
        "mode": "checklist" if who.role is Role.APP_ADMIN else "conversation",
        "past": _past(flow, state, view),
        "field_errors": field_errors,
        "other_problems": other_problems,
        "notices": notices,
        "previous_runs": previous,
        "suggested_notice": isinstance(view, QuestionView) and view.suggested is not None,
        "action_label": ACTION_LABELS.get(view.action) if isinstance(view, ConfirmView) else None,
        "action_subjects": _subjects(view.args) if isinstance(view, ConfirmView) else [],
        "outcome_label": OUTCOME_LABELS.get(view.outcome.value) if isinstance(view, EndView) else None,
        "last_result": _last_result(state),
    }


def _time(at: str) -> str:
    """Return HH:MM of an engine time stamp (ISO, UTC) in the user's time zone."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return at[11:16] if len(at) >= 16 else at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(ZoneInfo(current_time_zone.get())).strftime("%H:%M")


def _moment(at: str) -> datetime | str:
    """Return an engine time stamp as a datetime for the ``|datetime`` filter (as given if it is none)."""
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        return at
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _subjects(args: Mapping[str, Any]) -> list[str]:
    """Names of the people an action is about, for the confirmation ("to whom")."""
    names = []
    for value in args.values():
        if isinstance(value, Mapping) and value.get("name"):
            names.append(str(value["name"]))
        elif isinstance(value, str) and "@" in value:
            names.append(value)
    return names


def _last_result(state: SessionState) -> dict[str, Any] | None:
    if not state.executions:
        return None
    last = state.executions[-1]
    if state.visits and last.visit < len(state.visits) - 2:
        return None
    return {"action": ACTION_LABELS.get(last.action, last.action), "error": last.error, "at": _time(last.at)}


def _step_text(flow: Flow, step: Step, state: SessionState, frame_index: int = 0) -> str:
    """The first paragraph of a step's text, in the session's language, with the session's values inserted (HTML)."""
    english = getattr(step, "text", "") or ""
    if isinstance(step, ActionStep):
        label = ACTION_LABELS.get(step.action)
        return str(label) if label else step.action
    if not english:
        return step.id.replace("-", " ").capitalize()
    translated = flow_translations(services().settings.locales_dir).translate(
        state.locale, f"{flow.id}/{step.id}/text", english) or english
    # The first paragraph, not the first line: a line break inside a sentence would cut it (and its markup) short.
    paragraph = translated.strip().split("\n\n")[0]
    first = " ".join(paragraph.split()) if paragraph.strip() else step.id
    frame = state.frames[frame_index]
    answers = {r.step: r.value for r in state.records if r.kind == "answer" and r.frame == frame_index}
    results = {r.step: r.value for r in state.records if r.kind == "result" and r.frame == frame_index}
    context = {"inputs": frame.inputs, "answers": answers, "results": results, "facts": {}, "user": state.user,
               "org": state.org}
    try:
        return RUNNER.renderer.render(first, context, inline=True)
    except Exception:
        return RUNNER.renderer.html(first.replace("{{", "").replace("}}", ""), inline=True)


def _answer_text(flow: Flow, step: Step, value: Any, state: SessionState) -> str:
    if isinstance(step, QuestionStep) and isinstance(value, str):
        option = step.option(value)
        if option is not None:
            english = option.label
            translated = flow_translations(services().settings.locales_dir).translate(
                state.locale, f"{flow.id}/{step.id}/{option.id}/label", english) or english
            try:
                return RUNNER.renderer.html(translated.replace("{{", "").replace("}}", ""), inline=True)
            except Exception:
                return value
    if isinstance(step, FormStep) and isinstance(value, Mapping):
        return ", ".join(str(v) for v in value.values())
    if isinstance(step, ChecklistStep):
        return _("all ticked")
    return ""


@dataclasses.dataclass
class PastStep:
    visit: int
    text: str
    answer: str
    auto: bool
    can_go_back: bool
    result: str


def _past(flow: Flow, state: SessionState, view: AnyView) -> list[PastStep]:
    """The path so far (root flow and sub-flows), with answers, for the checklist and the conversation."""
    returnable = {h.visit for h in view.history}
    answers = {r.visit: r for r in state.records}
    svc = services()
    repo = flow_repository(svc)
    texts = _past_texts(svc)
    past = []
    for index, visit in enumerate(state.visits[:-1]):
        # A visit's time names it for good: going back removes later visits, and a step seen
        # again is a new visit. So its text and answer, once drawn, are kept (per language).
        key = (state.session_id, index, visit.frame, visit.step, visit.at, state.locale)
        drawn = texts.get(key)
        if drawn is None:
            drawn = texts[key] = _draw_past(flow, repo, state, visit, answers.get(index))
            if len(texts) > PAST_TEXTS_KEPT:
                texts.popitem(last=False)
        if drawn is _SKIPPED:
            continue
        text, answer, auto, result = drawn
        past.append(PastStep(visit=index, text=text, answer=answer, auto=auto, can_go_back=index in returnable,
                             result=result))
    return past


PAST_TEXTS_KEPT = 50_000
_SKIPPED = ("", "", False, "")


def _past_texts(svc: Any) -> OrderedDict[tuple[Any, ...], tuple[str, str, bool, str]]:
    """Return the app's cache of drawn past steps (made on first use)."""
    texts = svc.extras.get("help.past_texts")
    if texts is None:
        texts = svc.extras["help.past_texts"] = OrderedDict()
    return texts  # type: ignore[no-any-return]


def _draw_past(flow: Flow, repo: Any, state: SessionState, visit: Any, record: Any) -> tuple[str, str, bool, str]:
    """Return (text, answer, answered from data, action result) of one past visit, or ``_SKIPPED``."""
    frame = state.frames[visit.frame]
    step_flow = flow if visit.frame == 0 else repo.cached(frame.content_hash)
    step = step_flow.step(visit.step) if step_flow is not None else None
    if step is None or not isinstance(step, InfoStep | QuestionStep | FormStep | ChecklistStep | ActionStep):
        return _SKIPPED
    result = ""
    if isinstance(step, ActionStep) and record is not None:
        result = _("failed (%(code)s)", code=record.error) if record.error else _("done")
    answer = _answer_text(step_flow, step, record.value, state) if record is not None and record.kind == "answer" else ""
    return (_step_text(step_flow, step, state, visit.frame), answer,
            visit.auto and isinstance(step, QuestionStep | ChecklistStep), result)


# --- transcripts -----------------------------------------------------------------------


class FlowNames:
    """The ``TranscriptNames`` of one session: its flows' step texts, options and fields, translated, as plain text.

    Steps of the root flow and of sub-flows are named from the flow versions
    the session is pinned to; anything no longer to be found keeps its id.
    """

    def __init__(self, flows: Mapping[str, Flow], state: SessionState) -> None:
        self._flows = flows
        self._state = state
        self._frames: dict[str, int] = {}
        for index, frame in enumerate(state.frames):
            self._frames.setdefault(frame.flow_id, index)
        self._translations = flow_translations(services().settings.locales_dir)

    def _translate(self, flow_id: str, key: str, english: str) -> str:
        return self._translations.translate(self._state.locale, f"{flow_id}/{key}", english) or english

    @staticmethod
    def _plain(html: str) -> str:
        # Only to strip the tags of the renderer's (sanitised) HTML; the text is escaped again where shown.
        return Markup(html).striptags()  # noqa: S704

    def step(self, flow_id: str, step_id: str) -> str:
        flow = self._flows.get(flow_id)
        step = flow.step(step_id) if flow is not None else None
        if flow is None or step is None:
            return step_id
        if not getattr(step, "text", "") and not isinstance(step, ActionStep):
            return ""  # a branch or sub-flow call: nothing a person saw
        return self._plain(_step_text(flow, step, self._state, self._frames.get(flow_id, 0)))

    def option(self, flow_id: str, step_id: str, option_id: str) -> str:
        flow = self._flows.get(flow_id)
        step = flow.step(step_id) if flow is not None else None
        english = None
        if isinstance(step, QuestionStep) and (option := step.option(option_id)) is not None:
            english = option.label
        elif isinstance(step, ChecklistStep):
            english = next((item.label for item in step.items if item.id == option_id), None)
        if english is None:
            return option_id
        text = self._translate(flow_id, f"{step_id}/{option_id}/label", english)
        return self._plain(RUNNER.renderer.html(text.replace("{{", "").replace("}}", ""), inline=True))

    def field(self, flow_id: str, step_id: str, field_id: str) -> str:
        flow = self._flows.get(flow_id)
        step = flow.step(step_id) if flow is not None else None
        found = next((f for f in step.fields if f.id == field_id), None) if isinstance(step, FormStep) else None
        if found is None:
            return field_id
        return self._plain(RUNNER.renderer.html(self._translate(flow_id, f"{step_id}/{field_id}/label", found.label),
                                                inline=True))

    def action(self, name: str) -> str:
        label = ACTION_LABELS.get(name)
        return str(label) if label is not None else name

    def outcome(self, value: str) -> str:
        label = OUTCOME_LABELS.get(value)
        return str(label) if label is not None else value

    def status(self, value: str) -> str:
        label = STATUS_LABELS.get(value)
        return str(label) if label is not None else value

    def flow(self, flow_id: str) -> str:
        flow = self._flows.get(flow_id)
        return flow_title(flow, self._state.locale) if flow is not None else flow_id


async def _names(flow: Flow, state: SessionState) -> FlowNames:
    repo = flow_repository(services())
    flows: dict[str, Flow] = {flow.id: flow}
    for frame in state.frames:
        if frame.flow_id not in flows:
            found = await repo.pinned(frame.flow_id, frame.content_hash)
            if found is not None:
                flows[frame.flow_id] = found
    return FlowNames(flows, state)


@blueprint.route("/help/sessions/<public_id>/transcript")
async def transcript(public_id: str) -> Any:
    """The transcript of a session: questions, answers, actions with results and times."""
    row = await _load(public_id)
    flow = await load_flow_of(services(), row)
    state = _shown_in_my_language(SessionState.from_dict(row.state))
    return await render("help/transcript.html", row=row, title=flow_title(flow),
                        lines=queries.transcript_lines(state, await _names(flow, state)), status_labels=STATUS_LABELS,
                        outcome_labels=OUTCOME_LABELS, moment=_moment)


def _shown_in_my_language(state: SessionState) -> SessionState:
    language = _language()
    return dataclasses.replace(state, locale=language) if language != state.locale else state


@blueprint.route("/help/sessions/<public_id>/transcript.md")
async def transcript_download(public_id: str) -> Response:
    """The transcript as a Markdown file (audited as an export)."""
    row = await _load(public_id)
    flow = await load_flow_of(services(), row)
    state = _shown_in_my_language(SessionState.from_dict(row.state))
    text = await queries.export_transcript(services(), actor(), row, flow_title(flow), await _names(flow, state))
    response = Response(text)
    response.headers["Content-Type"] = "text/markdown; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="help-session-{row.id}.md"'
    return response


# --- outcomes ------------------------------------------------------------------------------


@blueprint.route("/help/outcomes")
@signed_in([Role.APP_ADMIN])
async def outcomes() -> Any:
    """Per flow: started, resolved, escalated, abandoned; and at which step people leave."""
    stats = await queries.flow_outcomes(services(), actor())
    published = flow_repository(services()).published()
    selected = request.args.get("flow", "")
    detail = stats.get(selected)
    rows = sorted(stats.values(), key=lambda s: -s.started)
    widest = max((s.started for s in rows), default=0) or 1
    steps: list[tuple[str, int, int]] = []
    if detail is not None:
        steps = sorted(((step, detail.reached[step], detail.left_at[step]) for step in detail.reached),
                       key=lambda item: -item[1])
    return await render("help/outcomes.html", rows=rows, widest=widest, detail=detail, steps=steps,
                        titles={fid: flow_title(f) for fid, f in published.items()},
                        most_reached=max((s[1] for s in steps), default=0) or 1)
