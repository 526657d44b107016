"""Conversation pages: the list, starting one, the conversation with its plain
post form (live updates come from ``static/conversations.js`` over the
WebSocket in ``ws.py``), the manager's page, data-leak removal, downloads,
and the application admins' deletion log.

Thin views: read the input, call one action or query, render. A form that
posts with ``Accept: application/json`` (the script does) gets JSON back
instead of a redirect; the app's error handler answers errors in kind.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote

from quart import Blueprint, Response, flash, jsonify, redirect, request, url_for

from lotse.platform.accounts.models import Account, Role
from lotse.platform.conversations import actions, queries
from lotse.platform.conversations.models import ChatAttachment, ChatMessage, DataLeakDeletion
from lotse.platform.conversations.uploads import read_message_form
from lotse.platform.errors import NotFoundError, PlatformError
from lotse.platform.files import file_store
from lotse.platform.i18n import _, format_datetime
from lotse.platform.permissions import Permission
from lotse.platform.web import (
    actor,
    check_csrf,
    current_account,
    form_data,
    render,
    services,
    signed_in,
)

blueprint = Blueprint("conversations", __name__)

INLINE_SAFE = frozenset({"application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp", "text/plain"})


def _when(value: str | None) -> str:
    return format_datetime(datetime.fromisoformat(value), "short") if value else ""


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


async def _person(account_id: str | int | None) -> Account:
    try:
        person = await Account.get_or_none(id=int(account_id or 0))
    except ValueError:
        person = None
    if person is None or person.organisation_id != current_account().organisation_id:  # type: ignore[union-attr]
        raise NotFoundError()
    return person


async def _message(conversation_id: int, message_id: int) -> ChatMessage:
    message = await ChatMessage.get_or_none(id=message_id, conversation_id=conversation_id)
    if message is None:
        raise NotFoundError()
    return message


@blueprint.get("/conversations")
@signed_in()
async def index() -> Any:
    rows = await queries.list_conversations(actor())
    return await render("conversations/index.html", rows=rows)


@blueprint.route("/conversations/new", methods=["GET", "POST"])
@signed_in()
async def start() -> Any:
    candidates = await queries.contact_candidates(actor())
    values: dict[str, Any] = {"subject": request.args.get("subject", ""), "body": "",
                              "participants": [request.args.get("with", "")]}
    error: PlatformError | None = None
    if request.method == "POST":
        form = await request.form
        check_csrf(form.get("csrf_token"))
        values = {"subject": form.get("subject", ""), "body": form.get("body", ""),
                  "participants": form.getlist("participants")}
        chosen = {c.id: c for c in candidates}
        people = [chosen[int(i)] for i in values["participants"] if i.isdigit() and int(i) in chosen]
        try:
            conversation = await actions.do_start_conversation(
                services(), actor(), subject=values["subject"], participants=people, first_message=values["body"])
        except PlatformError as failure:
            error = failure
        else:
            return redirect(url_for("conversations.show", conversation_id=conversation.id))
    return await render("conversations/new.html", 422 if error else 200, candidates=candidates, values=values,
                        error=error)


async def _show(conversation_id: int, *, error: PlatformError | None = None, body: str = "",
                status: int = 200) -> Any:
    svc = services()
    conversation = await queries.open_conversation(svc, actor(), conversation_id)
    state = await queries.conversation_state(actor(), conversation)
    me = actor()
    can_remove = await queries.may(me, Permission.CONVERSATION_LEAK_REMOVE, conversation)
    is_manager = await queries.may(me, Permission.CONVERSATION_MANAGE, conversation)
    newest = max((m["id"] for m in state["messages"].values()), default=0)
    if state["active"] and newest > state["participants"][str(me.account_id)]["last_read_id"]:
        await actions.do_mark_read(svc, me, conversation, newest)
    return await render("conversations/show.html", status, conversation=conversation, state=state,
                        can_remove=can_remove, is_manager=is_manager, error=error, body=body, when=_when,
                        max_attachment_mb=svc.settings.max_attachment_bytes // (1024 * 1024),
                        max_message_mb=svc.settings.max_message_bytes // (1024 * 1024))


@blueprint.get("/conversations/<int:conversation_id>")
@signed_in()
async def show(conversation_id: int) -> Any:
    return await _show(conversation_id)


@blueprint.get("/conversations/<int:conversation_id>/state")
@signed_in()
async def state(conversation_id: int) -> Any:
    """The conversation as JSON (what the page's script starts from): a read, audited as the page is."""
    conversation = await queries.open_conversation(services(), actor(), conversation_id)
    return jsonify(await queries.conversation_state(actor(), conversation))


@blueprint.post("/conversations/<int:conversation_id>/messages")
@signed_in()
async def post_message(conversation_id: int) -> Any:
    svc = services()
    me = actor()
    conversation = await queries.open_conversation(svc, me, conversation_id, audit=False)
    # Refuse before a byte of an upload is stored.
    from lotse.platform.actions import require

    await require(svc, me, Permission.CONVERSATION_POST, conversation, "conversation.post")
    store = file_store(svc)
    try:
        form = await read_message_form(store, svc.settings.max_attachment_bytes, svc.settings.max_message_bytes,
                                       check_csrf=check_csrf)
    except PlatformError as failure:
        if _wants_json() or failure.code == "csrf_failed":
            raise
        return await _show(conversation_id, error=failure, status=failure.status)
    try:
        message = await actions.do_post_message(svc, me, conversation, form.fields.get("body", ""), form.uploads)
    except PlatformError as failure:
        for upload in form.uploads:
            await store.delete(upload.key)
        if _wants_json():
            raise
        return await _show(conversation_id, error=failure, body=form.fields.get("body", ""), status=failure.status)
    except BaseException:
        for upload in form.uploads:
            await store.delete(upload.key)
        raise
    if _wants_json():
        return jsonify({"message_id": message.id}), 201
    return redirect(url_for("conversations.show", conversation_id=conversation_id) + f"#m-{message.id}")


@blueprint.post("/conversations/<int:conversation_id>/read")
@signed_in()
async def mark_read(conversation_id: int) -> Any:
    form = await form_data()
    conversation = await queries.open_conversation(services(), actor(), conversation_id, audit=False)
    up_to = int(form.get("message_id", "0") or 0) if str(form.get("message_id", "0")).isdigit() else 0
    last = await actions.do_mark_read(services(), actor(), conversation, up_to)
    if _wants_json():
        return jsonify({"last_read_id": last})
    return redirect(url_for("conversations.show", conversation_id=conversation_id))


@blueprint.route("/conversations/<int:conversation_id>/messages/<int:message_id>/edit", methods=["GET", "POST"])
@signed_in()
async def edit_message(conversation_id: int, message_id: int) -> Any:
    svc = services()
    conversation = await queries.open_conversation(svc, actor(), conversation_id, audit=False)
    message = await _message(conversation_id, message_id)
    if message.removed:
        raise NotFoundError()
    error = None
    body = message.body
    if request.method == "POST":
        form = await form_data()
        body = form.get("body", "")
        try:
            await actions.do_edit_message(svc, actor(), message, body)
        except PlatformError as failure:
            if not failure.fields:
                raise
            error = failure
        else:
            await flash(_("The message was changed."), "ok")
            return redirect(url_for("conversations.show", conversation_id=conversation_id) + f"#m-{message.id}")
    elif not await queries.may(actor(), Permission.CONVERSATION_MANAGE, conversation):
        from lotse.platform.actions import require

        await require(svc, actor(), Permission.CONVERSATION_MANAGE, conversation, "conversation.edit_message")
    return await render("conversations/edit.html", 422 if error else 200, conversation=conversation,
                        message=message, body=body, error=error)


@blueprint.route("/conversations/<int:conversation_id>/messages/<int:message_id>/remove", methods=["GET", "POST"])
@signed_in()
async def remove_message(conversation_id: int, message_id: int) -> Any:
    svc = services()
    conversation = await queries.open_conversation(svc, actor(), conversation_id, audit=False)
    message = await _message(conversation_id, message_id)
    attachment_id = request.args.get("attachment", "")
    attachment = None
    if attachment_id.isdigit():
        attachment = await ChatAttachment.get_or_none(id=int(attachment_id), message_id=message.id, removed_at=None)
        if attachment is None:
            raise NotFoundError()
    if message.removed:
        raise NotFoundError()
    error = None
    if request.method == "POST":
        form = await form_data()
        try:
            await actions.do_remove_data_leak(svc, actor(), message, attachment=attachment,
                                              confirmed=form.get("confirm") == "yes")
        except PlatformError as failure:
            if not failure.fields:
                raise
            error = failure
        else:
            if _wants_json():
                return jsonify({"removed": message.id})
            await flash(_("The message was removed. The application admins will purge it permanently."), "ok")
            return redirect(url_for("conversations.show", conversation_id=conversation_id))
    elif not await queries.may(actor(), Permission.CONVERSATION_LEAK_REMOVE, conversation):
        from lotse.platform.actions import require

        await require(svc, actor(), Permission.CONVERSATION_LEAK_REMOVE, conversation, "conversation.leak_remove")
    return await render("conversations/remove.html", 422 if error else 200, conversation=conversation,
                        message=message, attachment=attachment, error=error)


@blueprint.route("/conversations/<int:conversation_id>/manage", methods=["GET", "POST"])
@signed_in()
async def manage(conversation_id: int) -> Any:
    """The manager's page: subject, participants, hand-over; and leaving, for everyone."""
    svc = services()
    me = actor()
    conversation = await queries.open_conversation(svc, me, conversation_id, audit=False)
    error: PlatformError | None = None
    if request.method == "POST":
        form = await form_data()
        operation = form.get("operation", "")
        try:
            if operation == "subject":
                await actions.do_change_subject(svc, me, conversation, form.get("subject", ""))
                await flash(_("The subject was changed."), "ok")
            elif operation == "add":
                await actions.do_add_participant(svc, me, conversation, await _person(form.get("account")))
                await flash(_("The participant was added."), "ok")
            elif operation == "remove":
                await actions.do_remove_participant(svc, me, conversation, await _person(form.get("account")))
                await flash(_("The participant was removed."), "ok")
            elif operation == "hand_over":
                await actions.do_hand_over(svc, me, conversation, await _person(form.get("account")))
                await flash(_("You handed over the management of this conversation."), "ok")
            elif operation == "leave":
                await actions.do_leave_conversation(svc, me, conversation)
                await flash(_("You left the conversation."), "ok")
                return redirect(url_for("conversations.index"))
            else:
                raise NotFoundError()
        except PlatformError as failure:
            if failure.status in (401, 404):
                raise
            error = failure
        else:
            return redirect(url_for("conversations.manage", conversation_id=conversation_id))
    state = await queries.conversation_state(me, conversation)
    is_manager = await queries.may(me, Permission.CONVERSATION_MANAGE, conversation)
    candidates = [c for c in await queries.contact_candidates(me)
                  if not state["participants"].get(str(c.id), {}).get("active")] if is_manager else []
    return await render("conversations/manage.html", 422 if error else 200, conversation=conversation, state=state,
                        is_manager=is_manager, candidates=candidates, error=error)


@blueprint.get("/conversations/attachments/<int:attachment_id>")
@signed_in()
async def download(attachment_id: int) -> Any:
    svc = services()
    attachment = await queries.attachment_for_download(svc, actor(), attachment_id)
    store = file_store(svc)
    if not await store.exists(attachment.file_key):
        raise NotFoundError()
    content_type = attachment.content_type if attachment.content_type in INLINE_SAFE else "application/octet-stream"
    if content_type == "text/plain":
        content_type = "text/plain; charset=utf-8"
    ascii_name = attachment.filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    response = Response(store.read(attachment.file_key), content_type=content_type)
    response.headers["Content-Disposition"] = (
        f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(attachment.filename)}")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Length"] = str(attachment.size)
    return response


@blueprint.get("/conversations/deletions")
@signed_in([Role.APP_ADMIN])
async def deletions() -> Any:
    rows = await queries.deletion_log(services(), actor())
    return await render("conversations/deletions.html", rows=rows)


@blueprint.post("/conversations/deletions/<int:deletion_id>/purge")
@signed_in([Role.APP_ADMIN])
async def purge(deletion_id: int) -> Any:
    await form_data()
    entry = await DataLeakDeletion.get_or_none(id=deletion_id, organisation_id=actor().organisation_id)
    if entry is None:
        raise NotFoundError()
    await actions.do_purge_data_leak(services(), actor(), entry)
    await flash(_("The removed content was purged permanently."), "ok")
    return redirect(url_for("conversations.deletions"))


def _install_jobs() -> None:
    from lotse.platform.conversations.jobs import install

    install(blueprint)


_install_jobs()
