"""RabbitMQ broker (``amqp://`` / ``amqps://``) over aio-pika's robust connection.

- Publishing uses one confirm-mode channel. A batch goes out through a window of concurrent
  publishes whose confirms are awaited together (awaiting each confirm before sending the next
  message would cap us at one round trip per message). Messages are ``mandatory``: RabbitMQ
  returns the ones no queue is bound to, and we report their ids.
- Each consumer has its own channel (so its prefetch is its own) and acks manually.
- The robust connection reconnects after a RabbitMQ restart and re-opens every channel, which
  re-declares the topology (:mod:`jararaca.brokers.rabbitmq_topology`) and re-starts consumers.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import cast
from urllib.parse import unquote, unquote_plus, urlsplit, urlunsplit

import aio_pika
import aiormq
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq import spec
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import DeliveryError

from jararaca.brokers.base import DEFAULT_PREFETCH, DeliveryCallback, QueueSpec
from jararaca.brokers.rabbitmq_topology import (
    AMQP_FAILURES,
    DEAD_LETTER_QUEUE,
    Topology,
    TopologyNames,
    envelope_from_message,
    message_properties,
)
from jararaca.clock import Clock, SystemClock
from jararaca.errors import BrokerError, CredentialsError
from jararaca.redaction import redact
from jararaca.wire import Envelope

log = logging.getLogger(__name__)

# Publishes of one batch in flight at once (sent, confirm pending). Large enough to keep the
# connection busy; bounded so a huge batch is not one task and one buffered frame per message.
PUBLISH_WINDOW = 512
# Seconds a cleanup step (cancel a consumer, close its channel) may take before we give up.
CLEANUP_TIMEOUT = 5.0
_OWN_QUERY = frozenset({"exchange", "prefetch_count"})
DEFAULT_RECONNECT_INTERVAL = 1.0
# Refused or unreachable (a socket error is an OSError).
_CONNECT_FAILURES: tuple[type[Exception], ...] = (*AMQP_FAILURES, OSError)


def driver_url(url: str) -> str:
    """The URL handed to aio-pika: ours minus the query parameters only jararaca reads
    (``exchange``, ``prefetch_count``), which aio-pika would take for connection options."""
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
    """The :class:`~jararaca.brokers.base.Broker` on a real RabbitMQ."""

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        prefetch: int = DEFAULT_PREFETCH,
        clock: Clock | None = None,
        connect_timeout: float = 10.0,
        publish_timeout: float = 5.0,
    ) -> None:
        self.namespace = namespace
        self.prefetch = prefetch
        self._url = url
        self._names = TopologyNames(namespace)
        self._clock: Clock = clock or SystemClock()
        self._connect_timeout = connect_timeout
        self._publish_timeout = publish_timeout
        self._connection: AbstractRobustConnection | None = None
        self._publisher: AbstractRobustChannel | None = None
        self._topology: Topology | None = None
        self._consumers: set[RabbitMQConsumer] = set()
        self._connect_lock = asyncio.Lock()

    async def connect(self) -> None:
        async with self._connect_lock:
            if self._connection is not None:
                return
            where = redact(self._url)
            try:
                connection = await aio_pika.connect_robust(
                    driver_url(self._url),
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
                # (instead of raising) so one unroutable message does not hide the others.
                publisher = await connection.channel(on_return_raises=False)
                topology = Topology(self._names, await connection.channel())
            except AMQP_FAILURES as exc:
                await connection.close()
                raise BrokerError(
                    f"connected to RabbitMQ at {where} but could not open a channel: "
                    f"{self._describe(exc)}"
                ) from None
            self._connection, self._publisher, self._topology = connection, publisher, topology

    async def close(self) -> None:
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
        await self._require_topology().declare(queues)

    async def publish(self, envelopes: Sequence[Envelope]) -> list[str]:
        if not envelopes:
            return []
        outcomes = await self._send_all(self._names.exchange, envelopes)
        unroutable: list[str] = []
        failures: list[tuple[Envelope, object]] = []
        for envelope, outcome in zip(envelopes, outcomes, strict=True):
            if isinstance(outcome, DeliveredMessage):
                unroutable.append(envelope.message_id)
            elif not isinstance(outcome, spec.Basic.Ack):
                failures.append((envelope, outcome))
        if failures:
            self._redeclare_base_next_time()
            raise self._publish_failed(failures, len(envelopes))
        return unroutable

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        [outcome] = await self._send_all(self._names.dead_letter_exchange, [envelope], reason)
        if isinstance(outcome, DeliveredMessage):
            raise BrokerError(
                f"RabbitMQ could not route message {envelope.message_id} to the dead-letter "
                f"queue {self._names.dead_letter_queue}: was it deleted? declare() recreates it"
            )
        if not isinstance(outcome, spec.Basic.Ack):
            self._redeclare_base_next_time()
            raise self._publish_failed([(envelope, outcome)], 1)

    async def consume(
        self, queue: QueueSpec, callback: DeliveryCallback, *, prefetch: int | None = None
    ) -> RabbitMQConsumer:
        topology = await self._ready_topology()
        if not queue.broadcast and not self._names.is_dead_letter(queue):
            await topology.declare([queue])
        connection = self._require_connection()
        names = self._names
        try:
            # Consumer channels only ack, so they need no publisher confirms.
            channel = await connection.channel(publisher_confirms=False)
        except AMQP_FAILURES as exc:
            raise BrokerError(f"could not open a channel on RabbitMQ: {exc!r}") from None
        try:
            await channel.set_qos(prefetch_count=prefetch or self.prefetch)
            # Declared again on the consumer's own channel (same arguments, so idempotent):
            # aio-pika restores a channel's queues before its consumers after a reconnection.
            amqp_queue: AbstractRobustQueue
            if queue.broadcast:
                amqp_queue = await channel.declare_queue(
                    names.broadcast_queue(queue),
                    exclusive=True,
                    auto_delete=True,
                    arguments=names.queue_arguments(),
                )
                for key in queue.routing_keys:
                    await amqp_queue.bind(names.exchange, key)
            elif names.is_dead_letter(queue):
                amqp_queue = await channel.declare_queue(names.dead_letter_queue, durable=True)
            else:
                amqp_queue = await channel.declare_queue(
                    names.queue(queue), durable=True, arguments=names.queue_arguments()
                )
            consumer = RabbitMQConsumer(self, channel, amqp_queue, callback)
            await consumer.start()
        except AMQP_FAILURES as exc:
            await _quietly(channel.close())
            raise BrokerError(f"could not consume {queue} on RabbitMQ: {exc!r}") from None
        self._consumers.add(consumer)
        return consumer

    def dead_letter_queue(self) -> QueueSpec:
        return QueueSpec(DEAD_LETTER_QUEUE, ())

    async def delete_topology(self) -> None:
        """Delete everything this app declared (for tests): cancels this broker's consumers
        first, so aio-pika does not re-declare a deleted queue to restore them."""
        await self.connect()
        for consumer in list(self._consumers):
            await consumer.cancel()
        await self._require_topology().delete()

    # -- internals ---------------------------------------------------------------------------

    def discard(self, consumer: RabbitMQConsumer) -> None:
        self._consumers.discard(consumer)

    def _redeclare_base_next_time(self) -> None:
        # The failure may be RabbitMQ closing the channel because the exchange is gone
        # (deleted by hand): declaring it again before the next publish heals that.
        if self._topology is not None:
            self._topology.base_ready = False

    def _connection_name(self) -> str:
        # Shown in RabbitMQ's management UI, so an operator can tell whose connection it is.
        return f"jararaca {self.namespace} pid {os.getpid()}"

    def _describe(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {str(exc).rstrip('.')}" if str(exc) else type(exc).__name__
        password = urlsplit(self._url).password
        for secret in {password, unquote(password)} if password else ():
            text = text.replace(secret, "***")
        return text

    def _require_connection(self) -> AbstractRobustConnection:
        if self._connection is None:
            raise BrokerError("the RabbitMQ broker is closed: call connect() first")
        return self._connection

    def _require_topology(self) -> Topology:
        if self._topology is None:
            raise BrokerError("the RabbitMQ broker is closed: call connect() first")
        return self._topology

    async def _ready_topology(self) -> Topology:
        """Connected, with the exchange and dead-letter queue declared (once per connection:
        publishing to an undeclared exchange would close the channel)."""
        if self._connection is None:
            await self.connect()
        topology = self._require_topology()
        if not topology.base_ready:
            await topology.declare_base()
        return topology

    async def _send_all(
        self, exchange: str, envelopes: Sequence[Envelope], reason: str | None = None
    ) -> list[object]:
        """Publish every envelope and wait for all the confirms. One outcome per envelope:
        ``Basic.Ack`` (confirmed), a ``DeliveredMessage`` (returned: no queue bound), an
        exception (nack, channel or connection lost), or ``None`` (not sent after a failure)."""
        channel = await self._publish_channel()
        timestamp = self._clock.now()
        outcomes: list[object] = [None] * len(envelopes)
        pending = iter(enumerate(envelopes))
        stop = False

        async def sender() -> None:
            nonlocal stop
            # The senders share one iterator: each takes the next envelope once its previous
            # one is confirmed, so at most PUBLISH_WINDOW are in flight.
            for index, envelope in pending:
                if stop:
                    return
                try:
                    # aiormq's channel directly: aio-pika's Message/Exchange layer adds ~25%
                    # CPU per message on this hot path and nothing we need.
                    outcomes[index] = await channel.basic_publish(
                        envelope.body,
                        exchange=exchange,
                        routing_key=envelope.routing_key,
                        properties=message_properties(envelope, timestamp, reason),
                        mandatory=True,
                        # Wait for the broker's confirm only, not for the socket to drain
                        # after each frame: the confirm implies it.
                        wait=False,
                        timeout=self._publish_timeout,
                    )
                except Exception as exc:
                    # Recorded, not raised, so every sender finishes before we report; after
                    # a failure (channel or connection gone) the rest would fail as well.
                    outcomes[index] = exc
                    stop = True

        await asyncio.gather(*(sender() for _ in range(min(PUBLISH_WINDOW, len(envelopes)))))
        return outcomes

    async def _publish_channel(self) -> aiormq.Channel:
        try:
            async with asyncio.timeout(self._publish_timeout):
                await self._ready_topology()
                if self._publisher is None:
                    raise BrokerError("the RabbitMQ broker is closed: call connect() first")
                connected = getattr(self._connection, "connected", None)
                if isinstance(connected, asyncio.Event) and not connected.is_set():
                    # Reconnecting: fail now so the caller backs off and keeps what it has,
                    # rather than blocking its loop for the whole publish timeout.
                    raise TimeoutError
                # Waits while the robust connection or this channel is being restored (the
                # channel re-opens by itself after RabbitMQ closed it on an error).
                await self._publisher.ready()
                channel = await self._publisher.get_underlay_channel()
                # aiormq's abstract channel does not declare basic_publish's ``wait``.
                return cast(aiormq.Channel, channel)
        except TimeoutError:
            raise BrokerError(
                f"RabbitMQ at {redact(self._url)} has been unreachable for "
                f"{self._publish_timeout:g}s (reconnecting); nothing was published"
            ) from None
        except AMQP_FAILURES as exc:
            raise BrokerError(f"cannot publish to RabbitMQ: {exc!r}") from None

    @staticmethod
    def _publish_failed(failures: Sequence[tuple[Envelope, object]], total: int) -> BrokerError:
        envelope, outcome = failures[0]
        if isinstance(outcome, DeliveryError):
            cause = "RabbitMQ refused it (nack)"
        elif outcome is None:
            cause = "not sent after an earlier failure"
        else:
            cause = repr(outcome)
        return BrokerError(
            f"RabbitMQ did not confirm {len(failures)} of {total} message(s) (first: "
            f"{envelope.message_id}: {cause}). They may or may not have been delivered: "
            "publish them again (consumers see message ids, so they can drop duplicates)"
        )


class RabbitMQConsumer:
    """One consumer on its own channel. After :meth:`cancel` the channel stays open until
    every delivery already handed out is settled (closing it would requeue them)."""

    def __init__(
        self,
        broker: RabbitMQBroker,
        channel: AbstractRobustChannel,
        queue: AbstractRobustQueue,
        callback: DeliveryCallback,
    ) -> None:
        self.broker = broker
        self._channel = channel
        self._queue = queue
        self._callback = callback
        self._tag: str | None = None
        self._unsettled = 0
        self._cancelled = False
        self._closed = False

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self.broker.discard(self)
        if self._tag is not None:
            await _quietly(self._queue.cancel(self._tag))
        if self._unsettled == 0:
            await self._close_channel()

    def forget(self) -> None:
        """The broker closed the connection (and with it this channel)."""
        self._cancelled = self._closed = True

    async def settled(self) -> None:
        self._unsettled -= 1
        if self._cancelled and self._unsettled == 0:
            await self._close_channel()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._cancelled:
            # Sent by RabbitMQ before it processed our cancel: the caller wants no more.
            await _quietly(message.nack(requeue=True))
            return
        self._unsettled += 1
        delivery = RabbitMQDelivery(self, message, envelope_from_message(message))
        try:
            await self._callback(delivery)
        except Exception:
            log.exception(
                "the callback consuming %s failed on message %s; the message stays unsettled "
                "until it is settled or this consumer's channel closes",
                self._queue.name,
                delivery.envelope.message_id,
            )

    async def _close_channel(self) -> None:
        if self._closed:
            return
        self._closed = True
        await _quietly(self._channel.close())


class RabbitMQDelivery:
    __slots__ = ("_consumer", "_envelope", "_message", "_settled")

    def __init__(
        self, consumer: RabbitMQConsumer, message: AbstractIncomingMessage, envelope: Envelope
    ) -> None:
        self._consumer = consumer
        self._message = message
        self._envelope = envelope
        self._settled = False

    @property
    def envelope(self) -> Envelope:
        return self._envelope

    @property
    def redelivered(self) -> bool:
        return bool(self._message.redelivered)

    async def ack(self) -> None:
        self._claim()
        await self._send("ack", self._message.ack)

    async def requeue(self) -> None:
        self._claim()
        await self._send("requeue", partial(self._message.nack, requeue=True))

    async def dead_letter(self, reason: str) -> None:
        """RabbitMQ's own dead-lettering (reject without requeue) cannot add a header, and the
        reason must travel with the message. So a copy with the reason goes to the dead-letter
        exchange first (confirmed), and only then is the original acked: a crash in between
        leaves the original unacked, to be delivered again, so nothing is lost (at worst the
        dead-letter queue gets it twice). If the copy cannot be published the original is
        requeued and :class:`BrokerError` is raised."""
        self._claim()
        try:
            await self._consumer.broker.dead_letter(self._envelope, reason)
        except BrokerError:
            await self._send("requeue", partial(self._message.nack, requeue=True))
            raise
        await self._send("ack", self._message.ack)

    def _claim(self) -> None:
        if self._settled:
            raise BrokerError(f"message {self._envelope.message_id} was already settled")
        self._settled = True

    async def _send(self, action: str, operation: Callable[[], Awaitable[None]]) -> None:
        try:
            await operation()
        except AMQP_FAILURES as exc:
            # The channel the message came on is gone (connection lost, RabbitMQ restarted):
            # RabbitMQ already took the message back and will deliver it again, so there is
            # nothing left to settle and the caller must not fail because of it.
            log.warning(
                "could not %s message %s (%r): its channel closed; RabbitMQ will deliver it again",
                action,
                self._envelope.message_id,
                exc,
            )
        finally:
            await self._consumer.settled()


async def _quietly(operation: Awaitable[object], timeout: float = CLEANUP_TIMEOUT) -> None:
    """Best effort for cleanup: a closed channel or connection has nothing left to clean, and
    a robust channel would otherwise wait for a reconnection before cancelling a consumer."""
    try:
        async with asyncio.timeout(timeout):
            await operation
    except AMQP_FAILURES as exc:
        log.debug("ignored while cleaning up: %r", exc)
