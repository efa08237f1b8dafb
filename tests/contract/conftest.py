"""Fixtures giving each contract test a backend and a broker of every kind.

The same test bodies run against the memory implementations and the real Redis and RabbitMQ;
each real one gets a namespace of its own and is cleaned up afterwards. The helpers below
(``env``, ``claim``, ``T0``, ``LEASE``) are shared by the backend contract files, one per
protocol of :mod:`jararaca.backends.base`.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jararaca.backends.base import Backend, FireClaim
from jararaca.brokers.base import Broker
from jararaca.clock import epoch_ms
from jararaca.wire import Envelope
from tests.services import AMQP_URL, REDIS_URL, require_rabbitmq, require_redis

BackendFactory = Callable[[str], Backend]
BrokerFactory = Callable[[str], Broker]

T0 = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


def env(message_id: str, payload: object = None, routing_key: str = "topic.a") -> Envelope:
    body = json.dumps(payload if payload is not None else {"id": message_id}).encode()
    return Envelope(message_id, routing_key, body, {"x-jararaca-kind": "message"})


def claim(action: str, at: datetime) -> FireClaim:
    fire_id = f"{action}@{epoch_ms(at)}"
    return FireClaim(fire_id, action, at, env(fire_id, routing_key="jararaca.action.default"))


# A Redis Cluster URL (``redis+cluster://...?shards=N``) adds a "redis-cluster" kind to every
# backend contract test: tests/faults/test_redis_cluster.py starts a private cluster and runs
# this suite against it. Unset (the usual case), the kind does not exist at all.
REDIS_CLUSTER_URL = os.environ.get("JARARACA_TEST_REDIS_CLUSTER_URL", "")
BACKEND_KINDS = ["memory", "redis", "sqlite", *(["redis-cluster"] if REDIS_CLUSTER_URL else [])]


@pytest.fixture(params=BACKEND_KINDS)
async def make_backend(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BackendFactory]:
    """Builds backends (not yet connected); the same ``namespace`` suffix gives the same store
    (for SQLite: one fresh file per test, each backend a connection of its own to it)."""
    kind: str = request.param
    tag = uuid.uuid4().hex[:10]
    made: list[Backend] = []
    if kind == "sqlite":
        from jararaca.backends.sqlite import SqliteBackend

        url = f"sqlite:///{tmp_path / 'contract.db'}"

        def build(namespace: str) -> Backend:
            backend = SqliteBackend(url, namespace=namespace)
            made.append(backend)
            return backend
    elif kind.startswith("redis"):
        url = REDIS_CLUSTER_URL if kind == "redis-cluster" else REDIS_URL
        if kind == "redis":
            require_redis()
        from jararaca.backends.redis import RedisBackend

        def build(namespace: str) -> Backend:
            backend = RedisBackend(url, namespace=f"test-{tag}-{namespace}")
            made.append(backend)
            return backend
    else:
        from jararaca.backends.memory import MemoryBackend

        def build(namespace: str) -> Backend:
            backend = MemoryBackend(tag, namespace=namespace)
            made.append(backend)
            return backend

    yield build
    for backend in made:
        if kind.startswith("redis"):
            await backend.delete_namespace()
        await backend.close()


@pytest.fixture
async def backend(make_backend: BackendFactory) -> Backend:
    backend = make_backend("main")
    await backend.connect()
    return backend


@pytest.fixture(params=["memory", "rabbitmq"])
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[BrokerFactory]:
    """Builds brokers (not yet connected); the same ``namespace`` suffix shares an exchange."""
    kind: str = request.param
    tag = uuid.uuid4().hex[:10]
    made: list[Broker] = []
    if kind == "rabbitmq":
        require_rabbitmq()
        from jararaca.brokers.rabbitmq import RabbitMQBroker

        def build(namespace: str) -> Broker:
            broker = RabbitMQBroker(AMQP_URL, namespace=f"test-{tag}-{namespace}", prefetch=8)
            made.append(broker)
            return broker
    else:
        from jararaca.brokers.memory import MemoryBroker

        def build(namespace: str) -> Broker:
            broker = MemoryBroker(tag, namespace=namespace, prefetch=8)
            made.append(broker)
            return broker

    yield build
    for broker in made:
        if kind == "rabbitmq":
            await broker.delete_topology()  # type: ignore[attr-defined]
        await broker.close()


@pytest.fixture
async def broker(make_broker: BrokerFactory) -> Broker:
    broker = make_broker("main")
    await broker.connect()
    return broker
