"""How a jararaca app looks on RabbitMQ: what it declares, under which names, and how an
:class:`~jararaca.wire.Envelope` maps to AMQP properties and back (what operators and other
services see; the broker's I/O lives in :mod:`jararaca.brokers.rabbitmq` and its
``rabbitmq_publish`` and ``rabbitmq_consume`` modules).

For an app whose namespace (``exchange=`` of the broker URL) is ``shop``:

- ``shop``: durable **topic** exchange every message is published to;
- ``shop.dlx``: durable **fanout** dead-letter exchange (fanout, so a dead letter reaches the
  dead-letter queue whatever its routing key, and keeps that routing key for inspection);
- ``shop.dead-letter``: durable dead-letter queue bound to ``shop.dlx``;
- ``shop.<name>`` for each ``QueueSpec(name, keys)``: durable classic queue with
  ``x-dead-letter-exchange=shop.dlx``, bound to ``shop`` with each of ``keys``;
- ``shop.<name>.<random>`` for each consumer of a broadcast spec: exclusive, auto-delete.

Everything is declared on one robust channel, which aio-pika re-declares (with bindings) after
a reconnection, so a restarted RabbitMQ gets the topology back without our help.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from aio_pika import ExchangeType
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustQueue,
    HeadersType,
)
from aiormq import spec
from aiormq.exceptions import AMQPError, ChannelInvalidStateError, ChannelPreconditionFailed

from jararaca.brokers.base import UNROUTED, QueueSpec
from jararaca.errors import BrokerError, ConfigError
from jararaca.wire import DEAD_LETTER_REASON, Envelope, format_instant

DEAD_LETTER_QUEUE = "dead-letter"

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

    def __init__(self, namespace: str) -> None:
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
        return {"x-dead-letter-exchange": self.dead_letter_exchange}

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
        self.base_ready = False

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
            self.base_ready = False

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
        # The dead-letter queue has no dead-letter exchange of its own: a message rejected
        # from it would otherwise loop back into it.
        dead = await self._queue(names.dead_letter_queue, arguments=None)
        await self._run(dead.bind(names.dead_letter_exchange, ""), f"bind {dead.name}")
        self.base_ready = True

    async def _queue(self, name: str, *, arguments: dict[str, Any] | None) -> AbstractRobustQueue:
        queue = self._queues.get(name)
        if queue is None:
            queue = await self._run(
                self._channel.declare_queue(name, durable=True, arguments=arguments),
                f"declare queue {name}",
            )
            self._queues[name] = queue
        else:
            # Declare again in case someone deleted it since: declaring is idempotent.
            await self._run(queue.declare(), f"declare queue {name}")
        return queue

    @staticmethod
    async def _run(operation: Awaitable[_T], what: str) -> _T:
        try:
            return await operation
        except ChannelPreconditionFailed as exc:
            raise BrokerError(
                f"RabbitMQ refused to {what}: {exc}. It already exists with other settings "
                "(type, durability or arguments): delete it, or use another exchange= name"
            ) from None
        except AMQP_FAILURES as exc:
            raise BrokerError(f"could not {what} on RabbitMQ: {exc!r}") from None


CONTENT_TYPE = "application/json"
PERSISTENT = 2  # AMQP delivery mode: written to disk, survives a broker restart


def message_properties(
    envelope: Envelope, timestamp: datetime, reason: str | None = None
) -> spec.Basic.Properties:
    """The AMQP properties of an envelope: JSON, persistent, its id, and its headers (plus the
    dead-letter ``reason`` when it goes to the dead-letter exchange)."""
    headers: HeadersType = dict(envelope.headers)
    if reason is not None:
        headers[DEAD_LETTER_REASON] = reason
    return spec.Basic.Properties(
        content_type=CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        headers=headers,
        message_id=envelope.message_id,
        timestamp=timestamp,
    )


def envelope_from_message(message: AbstractIncomingMessage) -> Envelope:
    """Rebuild the envelope of an incoming message; any AMQP client may have published it."""
    routing_key = message.routing_key or ""
    headers = {str(key): header_text(value) for key, value in (message.headers or {}).items()}
    message_id = message.message_id or fallback_message_id()
    return Envelope(message_id, routing_key, message.body, headers)


def fallback_message_id() -> str:
    """An id for a message published without one (other clients may omit it). Random, not
    derived from the content: two identical events (``{"user_id": 7}`` twice) are two
    messages, and the worker's duplicate check must not swallow the second. A redelivery of
    such a message is then not recognised as one: at least once, as promised."""
    return f"amqp-{uuid.uuid4().hex}"


def header_text(value: object) -> str:
    """Headers are strings in an :class:`Envelope`; other AMQP clients (and RabbitMQ's own
    ``x-death``) may send other types."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_instant(value) if value.tzinfo else value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, default=header_text, separators=(",", ":"))
    return str(value)
