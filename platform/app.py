"""``create_app(settings)``: the Quart app, its services, blueprints and error handling.

The composition root: here the platform's pieces are put together (database,
clock, event bus, translations, mail delivery) and handed to views through
``app.extensions["lotse"]``; nothing else holds global state.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from typing import Any

from quart import Quart, Response, g, jsonify, redirect, request, url_for
from quart_schema import QuartSchema, RequestSchemaValidationError
from werkzeug.exceptions import HTTPException

from lotse.platform import i18n, staticfiles
from lotse.platform.accounts import sessions
from lotse.platform.actions import Services
from lotse.platform.clock import Clock, SystemClock
from lotse.platform.config import Settings, load_settings
from lotse.platform.db import close_db, init_db
from lotse.platform.errors import (
    NotSignedInError,
    PlatformError,
    UnsupportedMediaTypeError,
    ValidationError,
)
from lotse.platform.events import InProcessBus
from lotse.platform.i18n import _l
from lotse.platform.templating import configure, drop_flask_context_processors
from lotse.platform.web import CSRF_COOKIE, SESSION_COOKIE, csrf_token

# Domains whose ``views.py`` / ``api.py`` define a ``blueprint``; missing ones are skipped
# while the platform grows.
BLUEPRINT_MODULES: tuple[str, ...] = (
    "lotse.platform.home.views",
    "lotse.platform.auth.views",
    "lotse.platform.auth.api",
    "lotse.platform.accounts.views",
    "lotse.platform.accounts.api",
    "lotse.platform.organisations.views",
    "lotse.platform.organisations.api",
    "lotse.platform.audit.views",
    "lotse.platform.audit.api",
    "lotse.platform.caseload.views",
    "lotse.platform.caseload.api",
    "lotse.platform.tasks.views",
    "lotse.platform.help.views",
    "lotse.platform.help.api",
    "lotse.platform.conversations.views",
    "lotse.platform.conversations.api",
    "lotse.platform.conversations.ws",
    "lotse.platform.calls.views",
    "lotse.platform.calls.api",
    "lotse.platform.calls.ws",
)

LANGUAGE_COOKIE = "lotse_lang"


def create_app(settings: Settings | None = None, *, clock: Clock | None = None, start_workers: bool = True) -> Quart:
    """Build the app; the database is opened when it starts serving."""
    settings = settings or load_settings()
    app = Quart(__name__, static_folder=None)
    staticfiles.install(app)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=settings.max_message_bytes + 1024 * 1024,
        TEMPLATES_AUTO_RELOAD=False,
    )
    configure(app.jinja_env)
    app.jinja_env.globals["csrf_token"] = csrf_token
    QuartSchema(
        app,
        openapi_path="/api/v1/openapi.json",
        swagger_ui_path="/api/v1/docs",
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": "Lotse API", "version": "1"},
    )
    translations = i18n.Translations(settings.locales_dir)
    bus: Any = InProcessBus()
    if settings.redis_url:
        from lotse.platform.events_redis import RedisBus

        bus = RedisBus(settings.redis_url)
    svc = Services(settings=settings, clock=clock or SystemClock(), bus=bus, translations=translations)
    app.extensions["lotse"] = svc
    i18n.active_translations.set(translations)

    for module_name in BLUEPRINT_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if not error.name or not module_name.startswith(error.name):
                raise
            continue
        app.register_blueprint(module.blueprint)
    drop_flask_context_processors(app)

    _install_lifecycle(app, svc, start_workers)
    _install_request_hooks(app, svc)
    _install_error_handlers(app)
    return app


def _install_lifecycle(app: Quart, svc: Services, start_workers: bool) -> None:
    tasks: list[asyncio.Task[Any]] = []

    @app.before_serving
    async def startup() -> None:
        i18n.active_translations.set(svc.translations)
        await init_db(svc.settings.database_url)
        if start_workers:
            try:
                from lotse.platform.mail.delivery import run_delivery_worker
            except ModuleNotFoundError:
                return
            wake = asyncio.Event()
            svc.mail_queued = wake.set
            tasks.append(asyncio.create_task(run_delivery_worker(svc, wake)))

    @app.after_serving
    async def shutdown() -> None:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await svc.bus.close()
        await close_db()


def _install_request_hooks(app: Quart, svc: Services) -> None:
    @app.before_request
    async def load_user() -> None:
        i18n.active_translations.set(svc.translations)
        # Static files need no session (and no database round trip).
        session = (None if request.endpoint == staticfiles.ENDPOINT
                   else await sessions.load_session(request.cookies.get(SESSION_COOKIE), svc.now()))
        g.web_session = session
        g.account = session.account if session is not None and not session.pending_two_factor else None
        account = g.account
        organisation_language = None
        profile_language = None
        time_zone = i18n.DEFAULT_TIME_ZONE
        if account is not None:
            organisation = account.organisation  # fetched with the session
            organisation_language = organisation.default_language
            profile_language = account.locale
            time_zone = organisation.time_zone
            g.organisation = organisation
        chosen = profile_language or request.cookies.get(LANGUAGE_COOKIE)
        g.language = i18n.choose_language(chosen, organisation_language, request.headers.get("Accept-Language"))
        i18n.current_locale.set(g.language)
        i18n.current_time_zone.set(time_zone)

    @app.before_request
    async def api_requires_json() -> None:
        """Refuse state-changing API calls that are not ``application/json`` (415).

        A cross-site HTML form cannot send that type without a CORS pre-flight,
        which Lotse never grants: this is the JSON API's CSRF defence (pages use
        CSRF tokens). Uploads go through the pages' multipart forms.
        """
        if (
            request.path.startswith("/api/")
            and request.method in {"POST", "PUT", "PATCH", "DELETE"}
            and request.mimetype != "application/json"
        ):
            raise UnsupportedMediaTypeError()

    @app.after_request
    async def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "style-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
        )
        new_csrf = g.get("new_csrf_cookie")
        if new_csrf:
            response.set_cookie(CSRF_COOKIE, new_csrf, httponly=True, samesite="Lax",
                                secure=svc.settings.secure_cookies)
        response.headers.setdefault("Content-Language", g.get("language", i18n.DEFAULT_LANGUAGE))
        return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.accept_mimetypes.best == "application/json"


def _install_error_handlers(app: Quart) -> None:
    from quart import render_template

    async def respond(error: PlatformError) -> Any:
        if wants_json():
            return jsonify(error.to_json()), error.status
        if isinstance(error, NotSignedInError):
            return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
        return await render_template("error.html", error=error), error.status

    @app.errorhandler(PlatformError)
    async def platform_error(error: PlatformError) -> Any:
        return await respond(error)

    @app.errorhandler(RequestSchemaValidationError)
    async def schema_error(error: RequestSchemaValidationError) -> Any:
        fields: dict[str, Any] = {}
        validation = error.validation_error
        for item in getattr(validation, "errors", list)():
            location = ".".join(str(part) for part in item.get("loc", ()) if part != "body") or "body"
            fields[location] = _l("This value is not valid.")
        if not fields:
            fields["body"] = _l("The request body is not valid JSON of the expected shape.")
        return await respond(ValidationError(fields=fields))

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Any:
        status = error.code or 500
        messages = {
            400: ("bad_request", _l("The request could not be processed.")),
            404: ("not_found", _l("This page does not exist.")),
            405: ("method_not_allowed", _l("This is not possible here.")),
            413: ("too_large", _l("The upload is larger than allowed.")),
        }
        code, message = messages.get(status, ("error", _l("Something went wrong. Please try again.")))
        platform = PlatformError(code, message)
        platform.status = status
        return await respond(platform)
