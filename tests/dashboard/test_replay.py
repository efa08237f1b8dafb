"""Replay from the dead-letters page really republishes: a worker in the same event loop as the
dashboard (memory backend and broker, shared by name) handles the replayed message again, even
though it had handled that very message id once before (a replay is asked for, so it is not a
duplicate). Asserted on what the worker recorded and on the broker's dead-letter queue."""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import httpx
import pytest

from jararaca.brokers.memory import MemoryBroker
from jararaca.control import Control
from jararaca.messagebus.publisher import message_envelope
from jararaca.wire import Envelope
from jararaca.worker import Worker
from tests.dashboard.conftest import Store
from tests.fixtures.dashboard_app import INBOX, Reminder, app, handled


async def until(condition: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Poll ``condition`` (state, in this loop) until true, or fail at the deadline."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


def form_in(page: str, around: str) -> tuple[str, dict[str, str]]:
    """The action and hidden fields of the first POST form in the part of ``page`` from
    ``around`` on: what a browser submits when its button is pressed."""
    start = page.index(around)
    found = re.search(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page[start:], re.S)
    assert found, f"no form after {around!r}"
    fields = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', found.group(2))
    return html.unescape(found.group(1)), {k: html.unescape(v) for k, v in fields}


@asynccontextmanager
async def dashboard_and_worker(store: Store) -> AsyncIterator[tuple[httpx.AsyncClient, Control]]:
    """The dashboard (through its ASGI interface) and a worker of the app, in this loop."""
    worker = Worker(app, store.url, store.url, heartbeat=False, graceful_shutdown_seconds=0)
    web = store.app()
    await worker.start()
    try:
        async with (
            web.router.lifespan_context(web),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=web), base_url="http://127.0.0.1"
            ) as client,
        ):
            yield client, web.state.control
    finally:
        await worker.stop()


async def test_replay_from_the_page_publishes_the_dead_letter_and_it_is_handled_again(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(INBOX, str(tmp_path))
    broker = MemoryBroker(store.name)
    now = datetime.now(UTC)
    first, second = (message_envelope(Reminder(text=t), now=now) for t in ("apple", "pear"))

    def times_handled(envelope: Envelope) -> int:
        return sum(1 for r in handled(tmp_path) if r["message_id"] == envelope.message_id)

    async with dashboard_and_worker(store) as (client, control):

        async def letters() -> set[str]:
            return {d.id for d in await control.dead_letters()}

        async def handled_times(envelope: Envelope, count: int) -> bool:
            return times_handled(envelope) == count

        # Both handled once; then, as after a handling that failed for good, dead letters.
        await broker.publish([first, second])
        for envelope in (first, second):
            await until(partial(handled_times, envelope, 1), 10, "the first handling")
            await broker.dead_letter(envelope, "handler raised TimeoutError")
        assert await letters() == {first.message_id, second.message_id}

        # The Replay button of the first one's row.
        page = (await client.get("/dead-letters")).text
        action, fields = form_in(page, f'<tr data-message-id="{first.message_id}">')
        assert action == "/dead-letters/replay" and fields["id"] == first.message_id
        response = await client.post(action, data=fields)
        assert response.status_code == 303
        assert "notice=replayed&subject=1" in response.headers["location"]
        await until(partial(handled_times, first, 2), 10, "the replayed letter to be handled")
        assert await letters() == {second.message_id}
        assert times_handled(second) == 1  # the other letter stayed where it was

        # Replay all (the toolbar's form): the one left.
        page = (await client.get("/dead-letters")).text
        action, fields = form_in(page, 'class="toolbar"')
        assert "id" not in fields
        response = await client.post(action, data=fields)
        assert "notice=replayed&subject=1" in response.headers["location"]
        await until(partial(handled_times, second, 2), 10, "the other letter to be handled")
        assert await letters() == set()
        assert times_handled(first) == 2  # replayed once, handled once more
        assert "No dead letters" in (await client.get("/dead-letters")).text
