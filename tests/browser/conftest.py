"""Real-browser tests: the real app under Hypercorn, driven by Debian's Chromium.

One server per test module, served inside the module's own event loop on a
free 127.0.0.1 port (``hypercorn.asyncio.serve`` with a shutdown trigger,
see TOOLCHAIN.md), with the real clock, a temporary data directory and a
SQLite file. Test data is written straight into that database with the
builders of ``tests/factories.py`` (``server.svc`` is the app's own
services object).

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright's async API;
``playwright install`` is never called. Each test gets a fresh browser
context with its ``locale`` (``de-DE`` or ``nl-NL``), which is what the
browser sends as ``Accept-Language``.

``axe(page)`` injects axe-core (``npm install --prefix tests/browser``) and
fails on any violation of impact serious or critical. The context bypasses
the page's Content-Security-Policy for that: the policy forbids inline
scripts, and an injected script tag is one.

The fixtures and tests share the module's event loop, so a browser test
module sets ``pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from lotse.platform.actions import Services
from lotse.platform.config import Settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE_JS = HERE / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOCALES = {"de": "de-DE", "nl": "nl-NL"}
BLOCKING_IMPACTS = frozenset({"serious", "critical"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is not installed (apt-get install chromium); .ci/run installs it")
    for item in items:
        if item.get_closest_marker("browser"):
            item.add_marker(skip)


@dataclass
class Server:
    """The running app: its base URL and its services (settings, clock, bus)."""

    url: str
    svc: Services
    app: Any

    def at(self, path: str) -> str:
        return self.url + path


def _listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    # Listening before Hypercorn starts: early connections wait in the backlog
    # instead of being refused, so nobody has to poll for the server.
    sock.listen(128)
    return sock


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    """Serve the real app on 127.0.0.1 for the whole module."""
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    from lotse.platform.app import create_app

    sock = _listening_socket()
    host, port = sock.getsockname()
    url = f"http://{host}:{port}"
    data_dir = tmp_path_factory.mktemp("browser-data")
    settings = Settings(
        data_dir=data_dir,
        database_url=f"sqlite://{data_dir / 'lotse.sqlite3'}",
        base_url=url,
        secret_key="browser-test-secret-key",
        flows_dir=REPO / "flows",
        locales_dir=REPO / "locales",
        testing=True,
    )
    app = create_app(settings, start_workers=False)
    config = Config()
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns the socket from here on
    config.accesslog = None
    config.errorlog = None
    config.graceful_timeout = 1
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    try:
        # The first answer comes once start-up (database, schema) is done.
        async with httpx.AsyncClient() as http:
            await http.get(url + "/static/lotse.css", timeout=30)
        yield Server(url=url, svc=app.extensions["lotse"], app=app)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser(server: Server) -> AsyncIterator[Any]:
    """Debian's Chromium, headless, with a fresh profile."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest_asyncio.fixture(loop_scope="module")
async def new_page(browser: Any) -> AsyncIterator[Any]:
    """Return ``await new_page(language)``: a page in a fresh context for ``de`` or ``nl``."""
    contexts: list[Any] = []

    async def make(language: str) -> Any:
        context = await browser.new_context(locale=LOCALES[language], bypass_csp=True)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return await context.new_page()

    yield make
    for context in contexts:
        with contextlib.suppress(Exception):
            await context.close()


async def axe(page: Any) -> None:
    """Assert that axe-core finds no serious or critical accessibility violation on ``page``."""
    if not AXE_JS.exists():
        pytest.fail(f"axe-core is missing: run `npm install --prefix {HERE.relative_to(REPO)}`")
    await page.add_script_tag(path=str(AXE_JS))
    result = await page.evaluate("async () => await axe.run(document)")
    blocking = [v for v in result["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"axe-core found {len(blocking)} serious/critical problem(s) on {page.url}:"]
        for violation in blocking:
            lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
            for node in violation["nodes"]:
                lines.append(f"    {node.get('target')}: {node.get('html', '')[:200]}")
        pytest.fail("\n".join(lines))


async def signed_in_page(server: Server, new_page: Any, account: Any, language: str) -> Any:
    """Return a page whose browser holds a live session of ``account`` (no password round trip)."""
    from lotse.platform.accounts.sessions import start_session
    from lotse.platform.web import SESSION_COOKIE

    page = await new_page(language)
    key = await start_session(account, server.svc.now(), pending_two_factor=False, source_address="127.0.0.1")
    await page.context.add_cookies([{"name": SESSION_COOKIE, "value": key, "url": server.url}])
    return page
