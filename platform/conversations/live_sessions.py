"""Live sockets end with their session: sign-out, deactivation, blocking, expiry.

A WebSocket is authenticated once, at the handshake; this keeps it honest
afterwards. Every open socket registers its session here (no task of its
own); one guard per worker

- listens on the bus for the events after which a session may have ended
  (``auth.signed_out``, ``auth.account_blocked``, ``auth.password_changed``
  on ``account.<id>``; ``account.deactivated``, ``account.updated``,
  ``account.two_factor_reset`` on their own topics) and re-checks the
  sessions of that account at once;
- re-checks every registered session every ``CHECK_EVERY`` seconds as a
  backstop (one query for all of them), for whatever ends a session without
  an event (idle expiry, a row deleted by hand, an event lost between
  workers).

A session that is gone gets its sockets' ``close`` callbacks called (once).
Checking does not count as activity: an open socket does not keep an idle
session alive.

Usage from any socket handler::

    guard = session_guard(svc)
    watch = await guard.watch(account_id, session_key, close)   # close(): end the socket
    try:
        ...
    finally:
        guard.unwatch(watch)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lotse.platform.accounts.sessions import live_session_hashes
from lotse.platform.accounts.tokens import hash_secret

log = logging.getLogger(__name__)

CHECK_EVERY = 60.0
ACCOUNT_EVENTS = frozenset({"auth.signed_out", "auth.account_blocked", "auth.password_changed"})
GLOBAL_TOPICS = ("account.deactivated", "account.updated", "account.two_factor_reset")


@dataclass(eq=False)
class Watch:
    account_id: int
    key_hash: str
    close: Callable[[], None]
    closed: bool = field(default=False)


class SessionGuard:
    def __init__(self, svc: Any, check_every: float = CHECK_EVERY) -> None:
        self.svc = svc
        self.check_every = check_every
        self._watches: dict[int, set[Watch]] = {}
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(1000)
        self._subscriptions: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []   # unsubscribing after the last socket of an account
        self._loops: list[asyncio.Task[None]] = []
        self._started: asyncio.Future[None] | None = None

    async def watch(self, account_id: int, session_key: str, close: Callable[[], None]) -> Watch:
        """Register an open socket; return once events that end its session will reach it."""
        await self._start()
        watch = Watch(account_id, hash_secret(session_key), close)
        self._watches.setdefault(account_id, set()).add(watch)
        await self._follow(f"account.{account_id}")
        return watch

    def unwatch(self, watch: Watch) -> None:
        watches = self._watches.get(watch.account_id)
        if watches is None:
            return
        watches.discard(watch)
        if not watches:
            del self._watches[watch.account_id]
            subscription = self._subscriptions.pop(f"account.{watch.account_id}", None)
            if subscription is not None:
                task = asyncio.ensure_future(subscription.__aexit__(None, None, None))
                self._tasks.append(task)
                task.add_done_callback(self._forget)

    async def check(self, account_ids: list[int] | None = None) -> None:
        """Re-check the sessions of these accounts (all when None); close the sockets of ended ones."""
        ids = list(self._watches) if account_ids is None else [i for i in account_ids if i in self._watches]
        watches = [w for i in ids for w in self._watches.get(i, ()) if not w.closed]
        if not watches:
            return
        live = await live_session_hashes({w.key_hash for w in watches}, self.svc.now())
        for w in watches:
            if w.key_hash not in live and not w.closed:
                w.closed = True
                with contextlib.suppress(Exception):
                    w.close()

    async def close(self) -> None:
        for task in [*self._loops, *self._tasks]:
            task.cancel()
        for subscription in list(self._subscriptions.values()):
            with contextlib.suppress(Exception):
                await subscription.__aexit__(None, None, None)
        self._subscriptions.clear()

    # --- inside ---------------------------------------------------------------

    def _forget(self, task: asyncio.Task[None]) -> None:
        with contextlib.suppress(ValueError):
            self._tasks.remove(task)

    async def _follow(self, topic: str) -> None:
        if topic in self._subscriptions:
            return
        subscription = self.svc.bus.subscribe(topic, queue=self._queue)
        self._subscriptions[topic] = subscription
        try:
            await subscription.__aenter__()
        except BaseException:
            self._subscriptions.pop(topic, None)
            raise

    async def _start(self) -> None:
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                for topic in GLOBAL_TOPICS:
                    await self._follow(topic)
            except BaseException as error:
                self._started.set_exception(error)
                self._started = None
                raise
            self._loops = [asyncio.create_task(self._events()), asyncio.create_task(self._timer())]
            self._started.set_result(None)
        await asyncio.shield(self._started)

    async def _events(self) -> None:
        while True:
            topic, payload = await self._queue.get()
            account_id = payload.get("account_id")
            if not isinstance(account_id, int) or account_id not in self._watches:
                continue
            if topic in GLOBAL_TOPICS or payload.get("event") in ACCOUNT_EVENTS:
                try:
                    await self.check([account_id])
                except Exception:
                    log.warning("could not re-check the sessions of account %s", account_id, exc_info=True)

    async def _timer(self) -> None:
        while True:
            await asyncio.sleep(self.check_every)
            try:
                await self.check()
            except Exception:
                log.warning("could not re-check the open sockets' sessions", exc_info=True)


def session_guard(svc: Any) -> SessionGuard:
    """Return the worker's guard (one per app's services)."""
    found = svc.extras.get("session_guard")
    if found is None:
        found = svc.extras["session_guard"] = SessionGuard(svc)
    return found  # type: ignore[no-any-return]
