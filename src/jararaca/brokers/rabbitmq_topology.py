"""How a jararaca app looks on RabbitMQ: what it declares and under which names (what
operators and other services see; how an envelope maps to an AMQP message is in
:mod:`jararaca.brokers.rabbitmq_messages`, the broker's I/O in :mod:`jararaca.brokers.rabbitmq`
and its ``rabbitmq_publish`` and ``rabbitmq_consume`` modules).

For an app whose namespace (``exchange=`` of the broker URL) is ``shop``:

- ``shop``: durable **topic** exchange every message is published to;
- ``shop.dlx``: durable **fanout** dead-letter exchange (fanout, so a dead letter reaches the
  dead-letter queue whatever its routing key, and keeps that routing key for inspection);
- ``shop.dead-letter``: durable dead-letter queue bound to ``shop.dlx``, bounded with
  ``x-max-length`` (``JARARACA_DEAD_LETTER_MAX``) and ``x-overflow=drop-head``;
- ``shop.<name>`` for each ``QueueSpec(name, keys)``: durable queue with
  ``x-dead-letter-exchange=shop.dlx``, bound to ``shop`` with each of ``keys``; classic, or
  with ``?queue_type=quorum`` a quorum queue with ``x-delivery-limit`` (and the dead-letter
  and unrouted queues quorum too: see :mod:`jararaca.brokers.rabbitmq_queue_types`);
- ``shop.<name>.<random>`` for each consumer of a broadcast spec: exclusive, auto-delete.

Everything is declared on one robust channel, which aio-pika re-declares (with bindings) after
a reconnection, so a restarted RabbitMQ gets the topology back without our help.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from aio_pika import ExchangeType
from aio_pika.abc import (
    AbstractRobustChannel,
    AbstractRobustQueue,
)
from aiormq.exceptions import (
    AMQPError,
    ChannelClosed,
    ChannelInvalidStateError,
    ChannelPreconditionFailed,
)

from jararaca.brokers.base import UNROUTED, QueueSpec
from jararaca.brokers.rabbitmq_queue_types import (
    dead_letter_queue_arguments,
    dead_letter_refused,
    queue_refused,
    work_queue_arguments,
)
from jararaca.errors import BrokerError, ConfigError, JararacaError
from jararaca.url_hosts import DEFAULT_DELIVERY_LIMIT

DEAD_LETTER_QUEUE = "dead-letter"
# Seconds to wait for aio-pika to re-open the topology channel RabbitMQ closed on an error.
REOPEN_TIMEOUT = 5.0

_T = TypeVar("_T")

# What RabbitMQ or aio-pika raise when a channel or the connection is closed or refuses a
# command (aio-pika's ChannelInvalidStateError is a RuntimeError, not an AMQPError).
AMQP_FAILURES: tuple[type[Exception], ...] = (
    AMQPError,
    ChannelInvalidStateError,
    ConnectionError,
    TimeoutError,
)


class TopologyNames:
    """Names and arguments of the app's exchanges and queues (pure, no I/O)."""

    def __init__(
        self,
        namespace: str,
        *,
        dead_letter_max: int,
        queue_type: str = "classic",
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    ) -> None:
        self.dead_letter_max = dead_letter_max
        self.queue_type = queue_type
        self.delivery_limit = delivery_limit
        self.exchange = namespace
        self.dead_letter_exchange = f"{namespace}.dlx"
        self.dead_letter_queue = f"{namespace}.{DEAD_LETTER_QUEUE}"
        self.unrouted_exchange = f"{namespace}.{UNROUTED.name}"
        self.unrouted_queue = f"{namespace}.{UNROUTED.name}"

    def queue(self, spec: QueueSpec) -> str:
        return f"{self.exchange}.{spec.name}"

    def broadcast_queue(self, spec: QueueSpec) -> str:
        # aio-pika's robust queues always carry a client-chosen name (a server-named queue
        # could not be re-declared under the same name after a reconnection), so we pick a
        # unique one that still tells an operator whose queue it is.
        return f"{self.exchange}.{spec.name}.{uuid.uuid4().hex[:12]}"

    def queue_arguments(self) -> dict[str, Any]:
        """Arguments of a durable work queue (handler, action and unrouted queues)."""
        type_arguments = work_queue_arguments(self.queue_type, self.delivery_limit)
        return {"x-dead-letter-exchange": self.dead_letter_exchange, **type_arguments}

    def broadcast_arguments(self) -> dict[str, Any]:
        # Always classic: a broadcast queue is exclusive to its consumer and dies with it,
        # which a (replicated) quorum queue cannot be.
        return {"x-dead-letter-exchange": self.dead_letter_exchange}

    def dead_letter_arguments(self) -> dict[str, Any]:
        # No dead-letter exchange of its own: a message rejected from it would otherwise loop
        # back into it. Full, it drops its oldest message rather than refuse new ones: a
        # refused dead letter would fail the worker's dead-lettering over and over.
        bound = {"x-max-length": self.dead_letter_max, "x-overflow": "drop-head"}
        return {**bound, **dead_letter_queue_arguments(self.queue_type)}

    def queue_refused(self, name: str, exc: ChannelPreconditionFailed) -> JararacaError:
        """The error for a work queue RabbitMQ has with other arguments."""
        asked = work_queue_arguments(self.queue_type, self.delivery_limit)
        return queue_refused(name, exc, asked)

    def dead_letter_refused(self, exc: ChannelPreconditionFailed) -> JararacaError:
        """The error for a dead-letter queue RabbitMQ has with other arguments (typically
        declared before it was bounded): RabbitMQ cannot change a queue's arguments."""
        asked = dead_letter_queue_arguments(self.queue_type)
        return dead_letter_refused(self.dead_letter_queue, exc, asked, self.dead_letter_max)

    def is_dead_letter(self, spec: QueueSpec) -> bool:
        return not spec.broadcast and spec.name == DEAD_LETTER_QUEUE


class Topology:
    """Declares (and, for tests, deletes) the app's topology on one robust channel."""

    def __init__(self, names: TopologyNames, channel: AbstractRobustChannel) -> None:
        self.names = names
        self._channel = channel
        # One RobustQueue per queue name: declaring a name again re-declares the same object,
        # so aio-pika's restore list does not grow with every declare() call.
        self._queues: dict[str, AbstractRobustQueue] = {}
        self._lock = asyncio.Lock()
        self._base_ready = False

    @property
    def base_ready(self) -> bool:
        """Whether the base topology was declared on this connection (and not since forgotten)."""
        return self._base_ready

    def forget_base(self) -> None:
        """The base topology may be gone (deleted by hand, which makes RabbitMQ close the
        channel that publishes to it): declare it again before it is next needed."""
        self._base_ready = False

    async def declare_base(self) -> None:
        """The app exchange, the dead-letter exchange and the dead-letter queue."""
        async with self._lock:
            await self._declare_base()

    async def declare(self, specs: Sequence[QueueSpec]) -> None:
        async with self._lock:
            await self._declare_base()
            for spec in specs:
                if spec.broadcast:
                    continue  # consume() declares one per consumer
                if self.names.is_dead_letter(spec):
                    if spec.routing_keys:
                        raise ConfigError(
                            f"queue name {DEAD_LETTER_QUEUE!r} is reserved for the dead-letter "
                            f"queue and cannot be bound to {list(spec.routing_keys)}: rename it"
                        )
                    continue
                queue = await self._queue(
                    self.names.queue(spec), arguments=self.names.queue_arguments()
                )
                for key in spec.routing_keys:
                    await self._run(queue.bind(self.names.exchange, key), f"bind {queue.name}")

    async def delete(self) -> None:
        """Delete both exchanges, the dead-letter queue and every queue declared here."""
        async with self._lock:
            names = {*self._queues, self.names.dead_letter_queue, self.names.unrouted_queue}
            for name in sorted(names):
                await self._run(
                    self._channel.queue_delete(name, if_unused=False, if_empty=False),
                    f"delete queue {name}",
                )
            exchanges = (
                self.names.exchange,
                self.names.dead_letter_exchange,
                self.names.unrouted_exchange,
            )
            for exchange in exchanges:
                await self._run(self._channel.exchange_delete(exchange), f"delete {exchange}")
            self._queues.clear()
            self._base_ready = False

    async def _declare_base(self) -> None:
        names = self.names
        await self._run(
            self._channel.declare_exchange(
                names.dead_letter_exchange, ExchangeType.FANOUT, durable=True
            ),
            f"declare exchange {names.dead_letter_exchange}",
        )
        # A message no queue is bound to (an unknown topic, from any publisher) goes through
        # the alternate exchange to the unrouted queue instead of being dropped; workers
        # dead-letter it from there with the reason (an alternate exchange cannot add one).
        await self._run(
            self._channel.declare_exchange(
                names.unrouted_exchange, ExchangeType.FANOUT, durable=True
            ),
            f"declare exchange {names.unrouted_exchange}",
        )
        unrouted = await self._queue(names.unrouted_queue, arguments=names.queue_arguments())
        await self._run(unrouted.bind(names.unrouted_exchange, ""), f"bind {unrouted.name}")
        await self._run(
            self._channel.declare_exchange(
                names.exchange,
                ExchangeType.TOPIC,
                durable=True,
                arguments={"alternate-exchange": names.unrouted_exchange},
            ),
            f"declare exchange {names.exchange}",
        )
        dead = await self._dead_letter_queue()
        await self._run(dead.bind(names.dead_letter_exchange, ""), f"bind {dead.name}")
        self._base_ready = True

    async def dead_letter_count(self) -> int:
        """How many messages wait in the dead-letter queue (not counting those a consumer
        holds, as RabbitMQ's x-max-length does not)."""
        async with self._lock:
            queue = await self._dead_letter_queue()
        result = queue.declaration_result
        return result.message_count or 0

    async def _dead_letter_queue(self) -> AbstractRobustQueue:
        return await self._queue(
            self.names.dead_letter_queue,
            arguments=self.names.dead_letter_arguments(),
            refused=self.names.dead_letter_refused,
        )

    async def _queue(
        self,
        name: str,
        *,
        arguments: dict[str, Any] | None,
        refused: Callable[[ChannelPreconditionFailed], JararacaError] | None = None,
    ) -> AbstractRobustQueue:
        if refused is None:
            refused = functools.partial(self.names.queue_refused, name)
        queue = self._queues.get(name)
        if queue is None:
            queue = await self._run(
                self._channel.declare_queue(name, durable=True, arguments=arguments),
                f"declare queue {name}",
                refused,
            )
            self._queues[name] = queue
        else:
            # Declare again in case someone deleted it since: declaring is idempotent.
            await self._run(queue.declare(), f"declare queue {name}", refused)
        return queue

    async def _run(
        self,
        operation: Awaitable[_T],
        what: str,
        refused: Callable[[ChannelPreconditionFailed], JararacaError] | None = None,
    ) -> _T:
        """``refused`` makes the error for a declaration RabbitMQ refuses (the thing exists
        with other settings), when a generic one would not say what to do."""
        try:
            return await operation
        except AMQP_FAILURES as exc:
            if isinstance(exc, ChannelClosed):
                await self._reopened()
            if isinstance(exc, ChannelPreconditionFailed):
                if refused is not None:
                    raise refused(exc) from None
                raise BrokerError(
                    f"RabbitMQ refused to {what}: {exc}. It already exists with other settings "
                    "(type, durability or arguments): delete it, or use another exchange= name"
                ) from None
            raise BrokerError(f"could not {what} on RabbitMQ: {exc!r}") from None

    async def _reopened(self) -> None:
        """RabbitMQ closes the channel on an error and aio-pika re-opens it by itself, a
        round trip later. Waiting for that (bounded) means the next declaration meets an open
        channel, and gets RabbitMQ's answer again rather than "channel closed"."""
        reopened = asyncio.Event()

        def on_reopen(_channel: object) -> None:
            reopened.set()

        self._channel.reopen_callbacks.add(on_reopen)
        try:
            async with asyncio.timeout(REOPEN_TIMEOUT):
                if self._channel.is_closed:
                    await reopened.wait()
                await self._channel.ready()
        except TimeoutError:
            pass  # the next operation reports whatever is wrong
        finally:
            self._channel.reopen_callbacks.discard(on_reopen)
