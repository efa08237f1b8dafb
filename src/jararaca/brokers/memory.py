"""In-process broker (``memory://[name]``): a topic exchange, queues and a dead-letter queue.

It exists for the embedded mode and users' tests, and passes the same contract tests as the
RabbitMQ broker: at most ``prefetch`` unsettled deliveries per consumer, competing consumers
on a queue, broadcast queues per consumer, requeue marks ``redelivered``, a bounded
dead-letter queue that drops its oldest message when full.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from jararaca import settings
from jararaca.brokers.base import (
    DEFAULT_PREFETCH,
    UNROUTED,
    ConnectionListener,
    DeadLetter,
    DeliveryCallback,
    QueueSpec,
)
from jararaca.brokers.dead_letters import (
    DEAD_LETTERED_AT,
    OverflowNotice,
    dead_letter_of,
    replay_envelope,
)
from jararaca.brokers.topic import topic_matches
from jararaca.clock import Clock, SystemClock
from jararaca.errors import BrokerError
from jararaca.wire import DEAD_LETTER_REASON, Envelope, format_instant

DEAD_LETTER_QUEUE = "dead-letter"


@dataclass(eq=False)
class _Queue:
    name: str
    routing_keys: tuple[str, ...]
    messages: deque[tuple[Envelope, bool]] = field(default_factory=deque)
    consumers: list[_MemoryConsumer] = field(default_factory=list)
    # Like RabbitMQ's x-max-length with x-overflow=drop-head: the messages waiting (not
    # those a consumer holds) are kept to this many by dropping the oldest.
    max_length: int | None = None

    def put(self, envelope: Envelope, *, redelivered: bool = False, front: bool = False) -> bool:
        """Queue ``envelope``; whether that dropped the oldest message (the queue was full)."""
        if front:
            self.messages.appendleft((envelope, redelivered))
        else:
            self.messages.append((envelope, redelivered))
        dropped = False
        while self.max_length is not None and len(self.messages) > self.max_length:
            self.messages.popleft()
            dropped = True
        for consumer in self.consumers:
            consumer.wake.set()
        return dropped


@dataclass
class _Exchange:
    """The queues of one namespace. Queues and bindings change through :meth:`add`,
    :meth:`bind` and :meth:`remove` only, which forget the routes worked out so far."""

    dead_letter_max: int
    queues: dict[str, _Queue] = field(default_factory=dict)
    dead: _Queue = field(init=False)
    # routing key -> its queues: matching every binding's pattern cost microseconds per
    # message, and bindings change only when consumers come and go.
    _routes: dict[str, list[_Queue]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.dead = _Queue(DEAD_LETTER_QUEUE, (), max_length=self.dead_letter_max)

    def route(self, routing_key: str) -> list[_Queue]:
        found = self._routes.get(routing_key)
        if found is None:
            found = self._routes[routing_key] = [
                q
                for q in self.queues.values()
                if any(topic_matches(p, routing_key) for p in q.routing_keys)
            ]
        return found

    def add(self, queue: _Queue) -> _Queue:
        self.queues[queue.name] = queue
        self._routes.clear()
        return queue

    def bind(self, queue: _Queue, routing_keys: tuple[str, ...]) -> None:
        queue.routing_keys = tuple(dict.fromkeys(queue.routing_keys + routing_keys))
        self._routes.clear()

    def remove(self, name: str) -> None:
        self.queues.pop(name, None)
        self._routes.clear()


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
        await self._consumer.dead_letter(self._envelope, reason)

    async def requeue(self) -> None:
        self._settle()
        self._consumer.queue.put(self._envelope, redelivered=True, front=True)


def _with_reason(envelope: Envelope, reason: str, now: datetime) -> Envelope:
    return Envelope(
        envelope.message_id,
        envelope.routing_key,
        envelope.body,
        {**envelope.headers, DEAD_LETTER_REASON: reason, DEAD_LETTERED_AT: format_instant(now)},
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
        dead_letter: Callable[[Envelope, str], Awaitable[None]],
    ) -> None:
        self.exchange = exchange
        self.queue = queue
        self.callback = callback
        self.dead_letter = dead_letter
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
            self.exchange.remove(self.queue.name)
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


class MemoryBroker:
    """``dead_letter_max`` bounds the dead-letter queue (default ``JARARACA_DEAD_LETTER_MAX``).
    The first broker of an exchange sets it and later ones share it, whatever theirs (on
    RabbitMQ the first declaration sets it too, and refuses a later one with another)."""

    def __init__(
        self,
        name: str = "",
        *,
        namespace: str = "jararaca",
        prefetch: int = DEFAULT_PREFETCH,
        clock: Clock | None = None,
        dead_letter_max: int | None = None,
    ) -> None:
        self.name = name
        self.namespace = namespace
        self.prefetch = prefetch
        self._clock: Clock = clock or SystemClock()
        key = f"{name}\x00{namespace}"
        exchange = _EXCHANGES.get(key)
        if exchange is None:
            limit = settings.dead_letter_max() if dead_letter_max is None else dead_letter_max
            exchange = _EXCHANGES[key] = _Exchange(limit)
        self._exchange = exchange
        self._overflow = OverflowNotice(
            f"{DEAD_LETTER_QUEUE} (memory, namespace {namespace!r})", exchange.dead_letter_max
        )
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
                self._exchange.add(_Queue(spec.name, spec.routing_keys))
            elif set(spec.routing_keys) - set(existing.routing_keys):
                self._exchange.bind(existing, spec.routing_keys)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        for envelope in envelopes:
            self._put(envelope)

    def _put(self, envelope: Envelope) -> list[_Queue]:
        """Queue ``envelope`` wherever it is routed; returns those queues."""
        # Like RabbitMQ's alternate exchange: what no queue is bound to is kept, unrouted.
        targets = self._exchange.route(envelope.routing_key) or [self._unrouted()]
        for queue in targets:
            queue.put(envelope)
        return targets

    def _consumed_queues(self) -> set[int]:
        """The queues (by identity) this broker's consumers take from."""
        return {id(consumer.queue) for consumer in self._consumers}

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        del listener  # an in-process exchange is never disconnected

    def remove_connection_listener(self, listener: ConnectionListener) -> None:
        del listener

    def _unrouted(self) -> _Queue:
        queues = self._exchange.queues
        if UNROUTED.name not in queues:
            return self._exchange.add(_Queue(UNROUTED.name, ()))
        return queues[UNROUTED.name]

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        if self._exchange.dead.put(_with_reason(envelope, reason, self._clock.now())):
            self._overflow.dropped()

    async def consume(
        self, queue: QueueSpec, callback: DeliveryCallback, *, prefetch: int | None = None
    ) -> _MemoryConsumer:
        exchange = self._exchange
        if queue.broadcast:
            private = _Queue(f"{queue.name}.{uuid.uuid4().hex[:12]}", queue.routing_keys)
            exchange.add(private)
            target, owns = private, True
        elif queue.name == DEAD_LETTER_QUEUE:
            target, owns = exchange.dead, False
        else:
            await self.declare([queue])
            target, owns = exchange.queues[queue.name], False
        consumer = _MemoryConsumer(
            exchange,
            target,
            callback,
            prefetch or self.prefetch,
            owns_queue=owns,
            dead_letter=self.dead_letter,
        )
        self._consumers.append(consumer)
        return consumer

    def dead_letter_queue(self) -> QueueSpec:
        return QueueSpec(DEAD_LETTER_QUEUE, ())

    async def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        messages = self._exchange.dead.messages
        return [dead_letter_of(envelope) for envelope, _ in itertools.islice(messages, limit)]

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        dead = self._exchange.dead
        wanted = None if message_ids is None else set(message_ids)
        chosen = [item for item in dead.messages if wanted is None or item[0].message_id in wanted]
        if not chosen:
            return 0
        # Published before they leave the queue, as on RabbitMQ (where the publish may fail).
        await self.publish([replay_envelope(dead_letter_of(envelope)) for envelope, _ in chosen])
        # By identity: two copies of one message are equal tuples, and only those chosen go.
        gone = {id(item) for item in chosen}
        dead.messages = deque(item for item in dead.messages if id(item) not in gone)
        return len(chosen)

    async def purge_dead_letters(self) -> int:
        dead = self._exchange.dead
        count = len(dead.messages)
        dead.messages.clear()
        return count

    def undelivered(self) -> int:
        """Messages queued for this broker's consumers that no callback received yet
        (``TestScheduler`` waits until there are none)."""
        return sum(len(c.queue.messages) for c in self._consumers)
