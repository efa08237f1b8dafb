"""RabbitMQ broker (``amqp://`` / ``amqps://``) over aio-pika's robust connection.

The broker is split by role; this module connects, closes, declares and tells listeners when
the connection is lost and back. The rest is in:

- :mod:`jararaca.brokers.rabbitmq_publish`: confirmed publishing on one channel;
- :mod:`jararaca.brokers.rabbitmq_consume`: consumers (a channel each) and their deliveries;
- :mod:`jararaca.brokers.rabbitmq_dead_letters`: looking at, replaying and purging the
  dead-letter queue;
- :mod:`jararaca.brokers.rabbitmq_topology`: names and declarations;
- :mod:`jararaca.brokers.rabbitmq_messages`: envelope <-> AMQP mapping.

The robust connection reconnects after a RabbitMQ restart and re-opens every channel, which
re-declares the topology and re-starts consumers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from functools import partial
from typing import TypeVar
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

# Imported as a whole (not only its submodules), so that a missing driver fails this import.
import aio_pika
import aiormq

from jararaca import settings
from jararaca.brokers import rabbitmq_dead_letters
from jararaca.brokers.base import (
    DEFAULT_PREFETCH,
    ConnectionListener,
    DeadLetter,
    DeliveryCallback,
    QueueSpec,
)
from jararaca.brokers.dead_letters import OverflowNotice
from jararaca.brokers.rabbitmq_consume import RabbitMQConsumer, start_consumer
from jararaca.brokers.rabbitmq_hosts import connect_first, host_urls
from jararaca.brokers.rabbitmq_publish import ConfirmedPublisher
from jararaca.brokers.rabbitmq_topology import (
    AMQP_FAILURES,
    DEAD_LETTER_QUEUE,
    Topology,
    TopologyNames,
)
from jararaca.clock import Clock, SystemClock
from jararaca.errors import BrokerError, CredentialsError
from jararaca.redaction import redact
from jararaca.url_hosts import amqp_options
from jararaca.wire import Envelope

log = logging.getLogger(__name__)

_T = TypeVar("_T")

_OWN_QUERY = frozenset({"exchange", "prefetch_count", "queue_type", "delivery_limit"})
DEFAULT_RECONNECT_INTERVAL = 1.0
# Refused or unreachable (a socket error is an OSError).
_CONNECT_FAILURES: tuple[type[Exception], ...] = (*AMQP_FAILURES, OSError)


def driver_url(url: str) -> str:
    """The URL handed to aio-pika: ours minus the query parameters only jararaca reads
    (``exchange``, ``prefetch_count``, ``queue_type``, ``delivery_limit``), which aio-pika
    would take for connection options."""
    parts = urlsplit(url)
    # Filter the raw ``key=value`` items so the ones we keep reach aio-pika byte for byte.
    kept = [
        item
        for item in parts.query.split("&")
        if item and unquote_plus(item.partition("=")[0]) not in _OWN_QUERY
    ]
    if not any(item.startswith("reconnect_interval=") for item in kept):
        # aio-pika waits 5 s between reconnection attempts; after a RabbitMQ restart that is
        # up to 5 s of nothing dispatched. One second costs an outage little.
        kept.append(f"reconnect_interval={DEFAULT_RECONNECT_INTERVAL:g}")
    return urlunsplit(parts._replace(query="&".join(kept)))


class RabbitMQBroker:
    """The :class:`~jararaca.brokers.base.Broker` on a real RabbitMQ. ``dead_letter_max``
    bounds the dead-letter queue (default ``JARARACA_DEAD_LETTER_MAX``)."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        prefetch: int = DEFAULT_PREFETCH,
        clock: Clock | None = None,
        connect_timeout: float = 10.0,
        publish_timeout: float = 5.0,
        dead_letter_max: int | None = None,
    ) -> None:
        self.namespace = namespace
        self.prefetch = prefetch
        self._url = url
        config = amqp_options(url)
        if dead_letter_max is None:
            dead_letter_max = settings.dead_letter_max()
        self._names = TopologyNames(
            namespace,
            dead_letter_max=dead_letter_max,
            queue_type=config.queue_type,
            delivery_limit=config.delivery_limit,
        )
        self._overflow = OverflowNotice(self._names.dead_letter_queue, dead_letter_max)
        self._clock: Clock = clock or SystemClock()
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._connection: aio_pika.abc.AbstractRobustConnection | None = None
        self._publisher: ConfirmedPublisher | None = None
        self._topology: Topology | None = None
        self._consumers: set[RabbitMQConsumer] = set()
        self._connect_lock = asyncio.Lock()
        self._listeners: list[ConnectionListener] = []
        # What the listeners were last told; aio-pika reports a loss once per failed
        # reconnection attempt, the listeners hear of it once.
        self._told_connected = True

    async def connect(self) -> None:
        async with self._connect_lock:
            if self._connection is not None:
                return
            where = redact(self._url)
            try:
                # Each host of the URL in turn; the connection then goes round them on its own
                # whenever it reconnects (brokers/rabbitmq_hosts.py).
                connection = await connect_first(
                    host_urls(driver_url(self._url)),
                    client_properties={"connection_name": self._connection_name()},
                    timeout=self._connect_timeout,
                )
            except aiormq.exceptions.ProbableAuthenticationError:
                raise CredentialsError(
                    f"RabbitMQ at {where} refused the login: check the user, password and "
                    "virtual host in the broker URL"
                ) from None
            except _CONNECT_FAILURES as exc:
                # ``from None``: the driver's exception may carry the URL with its password.
                raise BrokerError(
                    f"cannot connect to RabbitMQ at {where}: {self._describe(exc)}. Check that "
                    "it is running and that the user, password and virtual host are right"
                ) from None
            try:
                # publisher confirms are aio-pika's default; returns resolve the publish
                # (instead of raising) so one returned message does not hide the others.
                publish_channel = await connection.channel(on_return_raises=False)
                topology = Topology(self._names, await connection.channel())
            except AMQP_FAILURES as exc:
                await connection.close()
                raise BrokerError(
                    f"connected to RabbitMQ at {where} but could not open a channel: "
                    f"{self._describe(exc)}"
                ) from None
            self._connection, self._topology = connection, topology
            self._publisher = ConfirmedPublisher(
                connection,
                publish_channel,
                topology,
                clock=self._clock,
                timeout=self._publish_timeout,
                where=where,
            )
            self._told_connected = True
            self._watch(connection)

    async def close(self) -> None:
        # Forgotten before it is closed: the close callbacks see a connection that is no
        # longer ours and do not take the deliberate close for a lost connection.
        connection, self._connection = self._connection, None
        self._publisher = self._topology = None
        consumers, self._consumers = self._consumers, set()
        for consumer in consumers:
            consumer.forget()
        if connection is not None:
            # Closing the connection closes every channel; RabbitMQ requeues what was unacked.
            await connection.close()

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        await self._ready_topology()
        await self._require(self._topology).declare(queues)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        if envelopes:
            await (await self._ready_publisher()).publish(envelopes)

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        self._listeners.append(listener)

    def remove_connection_listener(self, listener: ConnectionListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        publisher = await self._ready_publisher()
        # Counted before publishing, so that a full queue means this very message pushed the
        # oldest out; and only when a warning would be logged, as counting is a round trip.
        full = self._overflow.due and await self._dead_letter_queue_full()
        await publisher.dead_letter(envelope, reason)
        if full:
            self._overflow.dropped()

    async def consume(
        self, queue: QueueSpec, callback: DeliveryCallback, *, prefetch: int | None = None
    ) -> RabbitMQConsumer:
        topology = await self._ready_topology()
        if not queue.broadcast and not self._names.is_dead_letter(queue):
            await topology.declare([queue])
        consumer = await start_consumer(
            self._require(self._connection),
            self._names,
            queue,
            callback,
            prefetch=prefetch or self.prefetch,
            dead_letter=self.dead_letter,
            redeclare=partial(self._declare_again, queue),
            on_cancel=self._discard,
        )
        self._consumers.add(consumer)
        return consumer

    def dead_letter_queue(self) -> QueueSpec:
        return QueueSpec(DEAD_LETTER_QUEUE, ())

    async def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        if limit < 0:
            raise ValueError(f"limit must not be negative, got {limit}")
        await self._ready_topology()
        return await rabbitmq_dead_letters.peek(self._require(self._connection), self._names, limit)

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        publisher = await self._ready_publisher()
        await self._ready_topology()
        return await rabbitmq_dead_letters.replay(
            self._require(self._connection), self._names, publisher, message_ids
        )

    async def purge_dead_letters(self) -> int:
        await self._ready_topology()
        return await rabbitmq_dead_letters.purge(self._require(self._connection), self._names)

    async def delete_topology(self) -> None:
        """Delete everything this app declared (for tests): cancels this broker's consumers
        first, so aio-pika does not re-declare a deleted queue to restore them."""
        await self.connect()
        for consumer in list(self._consumers):
            await consumer.cancel()
        await self._require(self._topology).delete()

    # -- internals ---------------------------------------------------------------------------

    async def _dead_letter_queue_full(self) -> bool:
        try:
            # Bounded like a publish: while RabbitMQ is unreachable the publish that follows
            # fails fast, and the count must not hold it up.
            async with asyncio.timeout(self._publish_timeout):
                held = await self._require(self._topology).dead_letter_count()
        except (BrokerError, TimeoutError) as exc:
            # Only the warning depends on it; the publish reports a RabbitMQ really gone.
            log.debug("could not count the dead letters: %r", exc)
            return False
        return held >= self._names.dead_letter_max

    async def _declare_again(self, queue: QueueSpec) -> None:
        """A consumer's queue is gone (RabbitMQ cancelled its consumer): declare the base
        topology and that queue with its bindings again."""
        # declare() declares the base topology first, whether or not it was declared before.
        topology = await self._ready_topology()
        await topology.declare([queue])

    def _discard(self, consumer: RabbitMQConsumer) -> None:
        self._consumers.discard(consumer)

    def _watch(self, connection: aio_pika.abc.AbstractRobustConnection) -> None:
        """Tell the listeners when ``connection`` is lost and when it is back."""

        def lost(_sender: object, exc: BaseException | None = None) -> None:
            # Also called after every failed reconnection attempt, and by close(): only a
            # loss of the current connection counts, and _tell drops the repeats.
            if connection is self._connection:
                self._tell(
                    False,
                    f"lost the connection to RabbitMQ at {redact(self._url)}: "
                    f"{self._describe(exc) if exc is not None else 'closed'}",
                )

        def restored(_sender: object) -> None:
            # Called once the channels (topology, publisher, consumers) are restored too.
            if connection is self._connection:
                self._tell(True, "")

        connection.close_callbacks.add(lost)
        connection.reconnect_callbacks.add(restored)

    def _tell(self, connected: bool, reason: str) -> None:
        if connected == self._told_connected:
            return
        self._told_connected = connected
        for listener in list(self._listeners):
            try:
                listener(connected, reason)
            except Exception:
                # One faulty listener must neither silence the others nor reach aio-pika.
                log.exception("a RabbitMQ connection listener failed")

    def _connection_name(self) -> str:
        # Shown in RabbitMQ's management UI, so an operator can tell whose connection it is.
        return f"jararaca {self.namespace} pid {os.getpid()}"

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {str(exc).rstrip('.')}" if str(exc) else type(exc).__name__
        password = urlsplit(self._url).password
        for secret in {password, unquote(password)} if password else ():
            text = text.replace(secret, "***")
        return text

    @staticmethod
    def _require(part: _T | None) -> _T:
        if part is None:
            raise BrokerError("the RabbitMQ broker is closed: call connect() first")
        return part

    async def _ready_topology(self) -> Topology:
        """Connected, with the exchange and dead-letter queue declared (once per connection:
        publishing to an undeclared exchange would close the channel)."""
        if self._connection is None:
            await self.connect()
        topology = self._require(self._topology)
        if not topology.base_ready:
            await topology.declare_base()
        return topology

    async def _ready_publisher(self) -> ConfirmedPublisher:
        # The publisher declares the base topology itself, within its publish timeout.
        if self._publisher is None:
            await self.connect()
        return self._require(self._publisher)
