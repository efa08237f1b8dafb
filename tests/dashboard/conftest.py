"""A dashboard over the memory backend and broker, for the fast tests: each test gets its own
store, a client built by ``dashboard(token=...)``, and helpers that put state into the store
the way the app's own processes would (a delayed message, a dead letter)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from jararaca import connect
from jararaca.brokers.memory import MemoryBroker
from jararaca.control import Control
from jararaca.dashboard import create_app
from jararaca.wire import TOPIC, Envelope
from tests.fixtures.dashboard_app import Reminder, app

TOKEN = "s3cret-token-for-tests"
DashboardFactory = Callable[..., TestClient]


class Store:
    """One memory store shared by the dashboard's Control and the test."""

    def __init__(self) -> None:
        self.name = f"dash-{uuid.uuid4().hex[:12]}"
        self.url = f"memory://{self.name}"

    def control(self, *, broker: bool = True) -> Control:
        return Control(app, backend_url=self.url, broker_url=self.url if broker else None)

    def app(self, *, token: str | None = None, broker: bool = True, **kwargs: object) -> FastAPI:
        return create_app(lambda: self.control(broker=broker), token=token, **kwargs)  # type: ignore[arg-type]

    def delay(self, text: str, seconds: float = 60, key: str | None = None) -> str:
        async def publish() -> str:
            async with connect(self.url, self.url) as publisher:
                return await publisher.delay(Reminder(text=text), seconds, idempotency_key=key)

        return asyncio.run(publish())

    def dead_letter(self, reason: str = "handler raised ValueError") -> str:
        message_id = uuid.uuid4().hex
        envelope = Envelope(
            message_id, "dashboard.poison", b'{"text": "x"}', {TOPIC: "dashboard.poison"}
        )
        asyncio.run(MemoryBroker(self.name).dead_letter(envelope, reason))
        return message_id

    def read(self, use: Callable[[Control], object]) -> object:
        """What Control says about the store now (to assert on state, not on pages)."""

        async def run() -> object:
            async with self.control() as control:
                return await use(control)  # type: ignore[misc]

        return asyncio.run(run())


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def dashboard(store: Store) -> Iterator[DashboardFactory]:
    """``dashboard(token=None, broker=True)``: a started TestClient on the store."""
    with ExitStack() as stack:

        def build(*, token: str | None = None, broker: bool = True, **kwargs: object) -> TestClient:
            client = TestClient(
                store.app(token=token, broker=broker, **kwargs), follow_redirects=False
            )
            return stack.enter_context(client)

        yield build
