"""One scenario run's own exchange (= Redis namespace), and removing all of it afterwards."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Sequence

from bench.config import AMQP_URL, REDIS_URL
from jararaca.backends.redis import RedisBackend
from jararaca.brokers.base import QueueSpec
from jararaca.brokers.rabbitmq import RabbitMQBroker
from jararaca.microservice import Microservice
from jararaca.registry import action_queues, build_registry


class Namespace:
    def __init__(self, label: str) -> None:
        self.exchange = f"bench-{label}-{uuid.uuid4().hex[:8]}"
        # BENCH_BROKER_QUERY adds options for experiments, e.g. "&prefetch_count=256".
        extra = os.environ.get("BENCH_BROKER_QUERY", "")
        self.broker_url = f"{AMQP_URL}?exchange={self.exchange}{extra}"
        self.backend_url = REDIS_URL

    def cleanup(self, app: Microservice) -> None:
        """Delete the namespace's Redis keys and every queue and exchange of ``app`` on it."""
        registry = build_registry(app)
        queues = [h.queue for h in registry.handlers] + action_queues(registry.actions)
        asyncio.run(self._remove([q for q in queues if not q.broadcast]))

    async def _remove(self, queues: Sequence[QueueSpec]) -> None:
        backend = RedisBackend(self.backend_url, namespace=self.exchange)
        await backend.connect()
        try:
            await backend.delete_namespace()
        finally:
            await backend.close()
        broker = RabbitMQBroker(AMQP_URL, namespace=self.exchange, prefetch=1)
        await broker.connect()
        try:
            # delete_topology() removes what this broker declared: declare the app's queues
            # (idempotent) so that it knows them.
            await broker.declare(queues)
            await broker.delete_topology()
        finally:
            await broker.close()
