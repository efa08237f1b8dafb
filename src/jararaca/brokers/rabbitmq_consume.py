"""Consuming for the RabbitMQ broker (:mod:`jararaca.brokers.rabbitmq`).

Each consumer has its own channel (so its prefetch is its own) and acks manually. Its queue is
declared on that channel, so after a reconnection aio-pika restores the queue (an exclusive
broadcast queue dies with the connection) and then calls the channel's reopen callbacks, where
the consumer subscribes again.

Deliveries come from the driver (aiormq) as they are, not wrapped in aio-pika's message
objects: building one costs ~12 us and a task per delivery, 15% of a busy worker's CPU a
message. So the consumer restores itself after a reconnection (above) and subscribes again
when RabbitMQ cancels it (its queue deleted, or a quorum queue's leader moved), which is what
aio-pika's robust queues would do for their own consumers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection, AbstractRobustQueue
from aiormq import spec
from aiormq.abc import AbstractChannel, DeliveredMessage
from aiormq.exceptions import ChannelPreconditionFailed

from jararaca.brokers.base import DeliveryCallback, QueueSpec
from jararaca.brokers.rabbitmq_acks import AckBatcher
from jararaca.brokers.rabbitmq_messages import envelope_from_delivery
from jararaca.brokers.rabbitmq_topology import AMQP_FAILURES, TopologyNames
from jararaca.errors import BrokerError
from jararaca.wire import Envelope

log = logging.getLogger(__name__)

# Seconds a cleanup step (cancel a consumer, close its channel) may take before we give up.
CLEANUP_TIMEOUT = 5.0
# Seconds between tries to consume again after RabbitMQ cancelled a consumer (doubling).
RESUBSCRIBE_FIRST_DELAY = 0.5
RESUBSCRIBE_MAX_DELAY = 10.0
RESUBSCRIBE_FAILURES: tuple[type[Exception], ...] = (*AMQP_FAILURES, BrokerError)

# Publishes a copy of the envelope with the reason to the dead-letter exchange (confirmed).
DeadLetterPublish = Callable[[Envelope, str], Awaitable[None]]
# Declares the app's base topology and a queue with its bindings again (the broker's part).
Redeclare = Callable[[], Awaitable[None]]


async def start_consumer(
    connection: AbstractRobustConnection,
    names: TopologyNames,
    queue: QueueSpec,
    callback: DeliveryCallback,
    *,
    prefetch: int,
    dead_letter: DeadLetterPublish,
    redeclare: Redeclare,
    on_cancel: Callable[[RabbitMQConsumer], None],
) -> RabbitMQConsumer:
    """Open a channel for ``queue`` and start delivering its messages to ``callback``.

    The app's base topology must be declared already (and ``queue`` too, unless it is a
    broadcast queue, which is the consumer's own and declared here)."""
    try:
        # Consumer channels only ack, so they need no publisher confirms.
        channel = await connection.channel(publisher_confirms=False)
    except AMQP_FAILURES as exc:
        raise BrokerError(f"could not open a channel on RabbitMQ: {exc!r}") from None
    try:
        await channel.set_qos(prefetch_count=prefetch)
        # Declared again on the consumer's own channel (same arguments, so idempotent):
        # aio-pika restores a channel's queues before its consumers after a reconnection.
        amqp_queue: AbstractRobustQueue
        if queue.broadcast:
            amqp_queue = await channel.declare_queue(
                names.broadcast_queue(queue),
                exclusive=True,
                auto_delete=True,
                arguments=names.broadcast_arguments(),
            )
            for key in queue.routing_keys:
                await amqp_queue.bind(names.exchange, key)
        elif names.is_dead_letter(queue):
            amqp_queue = await channel.declare_queue(
                names.dead_letter_queue, durable=True, arguments=names.dead_letter_arguments()
            )
        else:
            amqp_queue = await channel.declare_queue(
                names.queue(queue), durable=True, arguments=names.queue_arguments()
            )
        consumer = RabbitMQConsumer(
            channel,
            amqp_queue,
            callback,
            dead_letter=dead_letter,
            redeclare=redeclare,
            on_cancel=on_cancel,
        )
        await consumer.start()
    except ChannelPreconditionFailed as exc:
        await quietly(channel.close())
        if names.is_dead_letter(queue):
            raise names.dead_letter_refused(exc) from None
        if not queue.broadcast:
            raise names.queue_refused(names.queue(queue), exc) from None
        raise BrokerError(f"could not consume {queue} on RabbitMQ: {exc!r}") from None
    except AMQP_FAILURES as exc:
        await quietly(channel.close())
        raise BrokerError(f"could not consume {queue} on RabbitMQ: {exc!r}") from None
    return consumer


class RabbitMQConsumer:
    """One consumer on its own channel. After :meth:`cancel` the channel stays open until
    every delivery already handed out is settled (closing it would requeue them)."""

    def __init__(
        self,
        channel: AbstractRobustChannel,
        queue: AbstractRobustQueue,
        callback: DeliveryCallback,
        *,
        dead_letter: DeadLetterPublish,
        redeclare: Redeclare,
        on_cancel: Callable[[RabbitMQConsumer], None],
    ) -> None:
        self.dead_letter = dead_letter
        self._redeclare = redeclare
        self._on_cancel = on_cancel
        self._channel = channel
        self._queue = queue
        self._callback = callback
        self._tag: str | None = None
        self._resubscribing: asyncio.Task[None] | None = None
        self.acks = AckBatcher()
        self._unsettled = 0
        self._cancelled = False
        self._closed = False

    async def start(self) -> None:
        await self._subscribe()
        self._channel.reopen_callbacks.add(self._on_reopen)

    async def _subscribe(self) -> None:
        driver = await self._channel.get_underlay_channel()
        driver.on_consumer_cancel_callbacks.add(self._on_cancelled_by_rabbitmq)
        ok = await driver.basic_consume(
            self._queue.name, self._on_delivered, no_ack=False, consumer_tag=self._tag
        )
        self._tag = ok.consumer_tag

    async def _on_reopen(self, _channel: object) -> None:
        if self._cancelled:
            return
        try:
            await self._subscribe()
        except RESUBSCRIBE_FAILURES as exc:
            # aio-pika gathers the reopen callbacks without looking at what they raised: a
            # consumer that failed here would stay silent for good, so it tries again itself.
            log.warning("could not consume %s again after reconnecting: %r", self._queue.name, exc)
            self._resubscribe_soon()

    def _on_cancelled_by_rabbitmq(self, frame: spec.Basic.Cancel) -> None:
        if frame.consumer_tag != self._tag or self._cancelled:
            return
        log.warning(
            "RabbitMQ cancelled the consumer of %s (queue deleted, or its leader moved): "
            "declaring it again and consuming it again",
            self._queue.name,
        )
        self._resubscribe_soon()

    def _resubscribe_soon(self) -> None:
        if self._resubscribing is None:
            self._resubscribing = asyncio.get_running_loop().create_task(self._resubscribe())

    async def _resubscribe(self) -> None:
        delay = RESUBSCRIBE_FIRST_DELAY
        try:
            while True:
                # A pause first: whoever deleted the queue may be deleting the rest of the
                # app's topology (a test's clean-up, an operator), and would race with us.
                await asyncio.sleep(delay)
                if self._cancelled:
                    return
                try:
                    await self._redeclare()
                    await self._queue.restore()  # as declared here (a broadcast queue's binds)
                    await self._subscribe()
                    return
                except RESUBSCRIBE_FAILURES as exc:
                    log.debug("consuming %s again failed: %r", self._queue.name, exc)
                delay = min(delay * 2, RESUBSCRIBE_MAX_DELAY)
        finally:
            self._resubscribing = None

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._on_cancel(self)
        self._channel.reopen_callbacks.discard(self._on_reopen)
        if self._resubscribing is not None:
            self._resubscribing.cancel()
        if self._tag is not None:
            await quietly(self._queue.cancel(self._tag))
        if self._unsettled == 0:
            await self._close_channel()

    def forget(self) -> None:
        """The broker closed the connection (and with it this channel)."""
        self._cancelled = self._closed = True
        if self._resubscribing is not None:
            self._resubscribing.cancel()

    async def settled(self) -> None:
        self._unsettled -= 1
        if self._cancelled and self._unsettled == 0:
            await self._close_channel()

    async def _on_delivered(self, message: DeliveredMessage) -> None:
        delivery_frame = message.delivery
        if not isinstance(delivery_frame, spec.Basic.Deliver):
            return  # only basic.get answers come otherwise, and this consumer never gets
        incoming = _Incoming(message.channel, delivery_frame.delivery_tag or 0)
        if self._cancelled:
            # Sent by RabbitMQ before it processed our cancel: the caller wants no more.
            await quietly(incoming.channel.basic_nack(incoming.tag, requeue=True))
            return
        self._unsettled += 1
        self.acks.delivered(incoming.channel, incoming.tag)
        envelope = envelope_from_delivery(delivery_frame, message.header, message.body)
        delivery = RabbitMQDelivery(self, incoming, envelope, bool(delivery_frame.redelivered))
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
        await quietly(self._channel.close())


@dataclass(frozen=True, slots=True)
class _Incoming:
    """Where a delivery came from: the driver's channel and the delivery's tag on it."""

    channel: AbstractChannel
    tag: int


class RabbitMQDelivery:
    __slots__ = ("_consumer", "_envelope", "_incoming", "_redelivered", "_settled")

    def __init__(
        self,
        consumer: RabbitMQConsumer,
        incoming: _Incoming,
        envelope: Envelope,
        redelivered: bool,
    ) -> None:
        self._consumer = consumer
        self._incoming = incoming
        self._envelope = envelope
        self._redelivered = redelivered
        self._settled = False

    @property
    def envelope(self) -> Envelope:
        return self._envelope

    @property
    def redelivered(self) -> bool:
        return self._redelivered

    async def ack(self) -> None:
        self._claim()
        await self._send("ack", self._ack)

    async def requeue(self) -> None:
        self._claim()
        await self._send("requeue", self._requeue)

    async def dead_letter(self, reason: str) -> None:
        """RabbitMQ's own dead-lettering (reject without requeue) cannot add a header, and the
        reason must travel with the message. So a copy with the reason goes to the dead-letter
        exchange first (confirmed), and only then is the original acked: a crash in between
        leaves the original unacked, to be delivered again, so nothing is lost (at worst the
        dead-letter queue gets it twice). If the copy cannot be published the original is
        requeued and :class:`BrokerError` is raised."""
        self._claim()
        try:
            await self._consumer.dead_letter(self._envelope, reason)
        except BrokerError:
            await self._send("requeue", self._requeue)
            raise
        await self._send("ack", self._ack)

    async def _ack(self) -> None:
        # With the consumer's other acks of this loop turn.
        await self._consumer.acks.ack(self._incoming.channel, self._incoming.tag)

    async def _requeue(self) -> None:
        self._consumer.acks.forget(self._incoming.channel, self._incoming.tag)
        await self._incoming.channel.basic_nack(self._incoming.tag, requeue=True)

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


async def quietly(operation: Awaitable[object], timeout: float = CLEANUP_TIMEOUT) -> None:
    """Best effort for cleanup: a closed channel or connection has nothing left to clean, and
    a robust channel would otherwise wait for a reconnection before cancelling a consumer."""
    try:
        async with asyncio.timeout(timeout):
            await operation
    except AMQP_FAILURES as exc:
        log.debug("ignored while cleaning up: %r", exc)
