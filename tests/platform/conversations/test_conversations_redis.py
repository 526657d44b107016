"""Two real Hypercorn worker processes share a real Redis: a message posted through one
arrives on a WebSocket connected to the other."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets

from lotse.platform.accounts.sessions import start_session
from lotse.platform.actions import Services
from lotse.platform.clock import SystemClock
from lotse.platform.config import Settings
from lotse.platform.conversations.actions import do_start_conversation
from lotse.platform.db import close_db, init_db
from lotse.platform.events import InProcessBus
from lotse.platform.permissions import Actor
from lotse.platform.web import SESSION_COOKIE
from tests.factories import link, make_account, make_client, make_org
from tests.platform.conversations.workers import RedisServer, Worker, redis_available

pytestmark = pytest.mark.skipif(not redis_available(), reason="redis-server is not installed "
                                "(apt-get install redis-server); CI installs it")

SECRET = "two-workers-secret"


async def _seed(settings: Settings) -> tuple[int, str, str]:
    await init_db(settings.database_url)
    try:
        svc = Services(settings=settings, clock=SystemClock(), bus=InProcessBus(), translations=None)  # type: ignore[arg-type]
        org = await make_org(svc)
        therapist = await make_account(svc, org)
        client = await make_client(svc, org)
        await link(svc, client, therapist)
        conversation = await do_start_conversation(svc, Actor.of(therapist), subject="Across workers",
                                                   participants=[client], first_message="Hello")
        therapist_key = await start_session(therapist, svc.now(), pending_two_factor=False)
        client_key = await start_session(client, svc.now(), pending_two_factor=False)
        return conversation.id, therapist_key, client_key
    finally:
        await close_db()


async def test_a_message_posted_through_one_worker_reaches_a_socket_on_the_other(tmp_path):
    redis = RedisServer().start()
    data_dir = tmp_path / "var"
    data_dir.mkdir()
    settings = Settings(data_dir=data_dir, database_url=f"sqlite://{data_dir / 'lotse.sqlite3'}", secret_key=SECRET)
    workers: list[Worker] = []
    try:
        conversation_id, therapist_key, client_key = await _seed(settings)
        base = "http://127.0.0.1"
        first = Worker(data_dir, redis.url, SECRET, base).start()
        second = Worker(data_dir, redis.url, SECRET, base).start()
        workers += [first, second]
        socket_url = second.url.replace("http", "ws") + f"/conversations/ws?conversation={conversation_id}"
        async with websockets.connect(socket_url, origin=second.url,
                                      additional_headers={"Cookie": f"{SESSION_COOKIE}={client_key}"}) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert [m["body"] for m in hello["state"]["messages"].values()] == ["Hello"]
            async with httpx.AsyncClient(base_url=first.url, cookies={SESSION_COOKIE: therapist_key}) as http:
                response = await http.post(f"/api/v1/conversations/{conversation_id}/messages",
                                           json={"body": "Posted on the first worker"})
            assert response.status_code == 201, response.text
            event = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert (event["event"], event["body"]) == ("message.posted", "Posted on the first worker")
            assert event["message_id"] == response.json()["message_id"]
        # Origin checks hold on every worker.
        with pytest.raises(websockets.exceptions.InvalidStatus):
            async with websockets.connect(socket_url, origin="https://evil.example",
                                          additional_headers={"Cookie": f"{SESSION_COOKIE}={client_key}"}):
                pass
    finally:
        for worker in workers:
            worker.stop()
        redis.stop()
