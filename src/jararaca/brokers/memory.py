"""In-process broker (``memory://[name]``): a topic exchange, queues and a dead-letter queue.

It exists for the embedded mode and users' tests, and passes the same contract tests as the
RabbitMQ broker: at most ``prefetch`` unsettled deliveries per consumer, competing consumers
on a queue, broadcast queues per consumer, requeue marks ``redelivered``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from jararaca.brokers.base import (
    DEFAULT_PREFETCH,
    UNROUTED,
    ConnectionListener,
    DeliveryCallback,
    QueueSpec,
)
from jararaca.brokers.topic import topic_matches
from jararaca.errors import BrokerError
from jararaca.wire import DEAD_LETTER_REASON, Envelope

DEAD_LETTER_QUEUE = "dead-letter"


@dataclass(eq=False)
class _Queue:
    name: str
    routing_keys: tuple[str, ...]
    messages: deque[tuple[Envelope, bool]] = field(default_factory=deque)
    consumers: list[_MemoryConsumer] = field(default_factory=list)

    def put(self, envelope: Envelope, *, redelivered: bool = False, front: bool = False) -> None:
        if front:
            self.messages.appendleft((envelope, redelivered))
        else:
            self.messages.append((envelope, redelivered))
        for consumer in self.consumers:
            consumer.wake.set()


@dataclass
class _Exchange:
    queues: dict[str, _Queue] = field(default_factory=dict)
    dead: _Queue = field(default_factory=lambda: _Queue(DEAD_LETTER_QUEUE, ()))

    def route(self, routing_key: str) -> list[_Queue]:
        return [
            q
            for q in self.queues.values()
            if any(topic_matches(p, routing_key) for p in q.routing_keys)
        ]


_EXCHANGES: dict[str, _Exchange] = {}


def reset_memory_brokers() -> None:
    """Forget every memory exchange of this process (for test isolation)."""
    _EXCHANGES.clear()


class _MemoryDelivery:
    __slots__ = ("_consumer", "_envelope", "_redelivered", "_settled")

    def __init__(self, consumer: _MemoryConsumer, envelope: Envelope, redelivered: bool) -> None:
        self._consumer = consumer
        self._envelope = envelope
        self._redelivered = redelivered
        self._settled = False

    @property
    def envelope(self) -> Envelope:
        return self._envelope

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    def _settle(self) -> None:
        if self._settled:
            raise BrokerError(f"message {self._envelope.message_id} was already settled")
        self._settled = True
        self._consumer.unsettled -= 1
        self._consumer.wake.set()

    async def ack(self) -> None:
        self._settle()

    async def dead_letter(self, reason: str) -> None:
        self._settle()
        self._consumer.exchange.dead.put(_with_reason(self._envelope, reason))

    async def requeue(self) -> None:
        self._settle()
        self._consumer.queue.put(self._envelope, redelivered=True, front=True)


def _with_reason(envelope: Envelope, reason: str) -> Envelope:
    return Envelope(
        envelope.message_id,
        envelope.routing_key,
        envelope.body,
        {**envelope.headers, DEAD_LETTER_REASON: reason},
    )


class _MemoryConsumer:
    def __init__(
        self,
        exchange: _Exchange,
        queue: _Queue,
        callback: DeliveryCallback,
        prefetch: int,
        *,
        owns_queue: bool,
    ) -> None:
        self.exchange = exchange
        self.queue = queue
        self.callback = callback
        self.prefetch = prefetch
        self.unsettled = 0
        self.wake = asyncio.Event()
        self.owns_queue = owns_queue
        queue.consumers.append(self)
        self.task = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        queue = self.queue
        while True:
            if self.unsettled < self.prefetch and queue.messages:
                envelope, redelivered = queue.messages.popleft()
                self.unsettled += 1
                await self.callback(_MemoryDelivery(self, envelope, redelivered))
                continue
            self.wake.clear()
            await self.wake.wait()

    async def cancel(self) -> None:
        if self in self.queue.consumers:
            self.queue.consumers.remove(self)
        if self.owns_queue:
            self.exchange.queues.pop(self.queue.name, None)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class MemoryBroker:
    def __init__(
        self, name: str = "", *, namespace: str = "jararaca", prefetch: int = DEFAULT_PREFETCH
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.prefetch = prefetch
        self._exchange = _EXCHANGES.setdefault(f"{name}\x00{namespace}", _Exchange())
        self._consumers: list[_MemoryConsumer] = []

    async def connect(self) -> None:
        return None

    async def close(self) -> None:
        for consumer in list(self._consumers):
            await consumer.cancel()
        self._consumers.clear()

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        for spec in queues:
            if spec.broadcast:
                continue
            existing = self._exchange.queues.get(spec.name)
            if existing is None:
                self._exchange.queues[spec.name] = _Queue(spec.name, spec.routing_keys)
            elif set(spec.routing_keys) - set(existing.routing_keys):
                existing.routing_keys = tuple(
                    dict.fromkeys(existing.routing_keys + spec.routing_keys)
                )

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            # Like RabbitMQ's alternate exchange: what no queue is bound to is kept, unrouted.
            targets = self._exchange.route(envelope.routing_key) or [self._unrouted()]
            for queue in targets:
                queue.put(envelope)

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        del listener  # an in-process exchange is never disconnected

    def _unrouted(self) -> _Queue:
        queues = self._exchange.queues
        if UNROUTED.name not in queues:
            queues[UNROUTED.name] = _Queue(UNROUTED.name, ())
        return queues[UNROUTED.name]

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        self._exchange.dead.put(_with_reason(envelope, reason))

    async def consume(
        self, queue: QueueSpec, callback: DeliveryCallback, *, prefetch: int | None = None
    ) -> _MemoryConsumer:
        exchange = self._exchange
        if queue.broadcast:
            private = _Queue(f"{queue.name}.{uuid.uuid4().hex[:12]}", queue.routing_keys)
            exchange.queues[private.name] = private
            target, owns = private, True
        elif queue.name == DEAD_LETTER_QUEUE:
            target, owns = exchange.dead, False
        else:
            await self.declare([queue])
            target, owns = exchange.queues[queue.name], False
        consumer = _MemoryConsumer(
            exchange, target, callback, prefetch or self.prefetch, owns_queue=owns
        )
        self._consumers.append(consumer)
        return consumer

    def dead_letter_queue(self) -> QueueSpec:
        return QueueSpec(DEAD_LETTER_QUEUE, ())

    def undelivered(self) -> int:
        """Messages queued for this broker's consumers that no callback received yet
        (``TestScheduler`` waits until there are none)."""
        return sum(len(c.queue.messages) for c in self._consumers)
