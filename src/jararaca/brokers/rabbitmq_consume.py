"""Consuming for the RabbitMQ broker (:mod:`jararaca.brokers.rabbitmq`).

Each consumer has its own channel (so its prefetch is its own) and acks manually. Its queue is
declared again on that channel: after a reconnection aio-pika restores a channel's queues
before its consumers, so a queue RabbitMQ lost (an exclusive broadcast queue dies with the
connection) is back before its consumer restarts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)
from aiormq.exceptions import ChannelPreconditionFailed

from jararaca.brokers.base import DeliveryCallback, QueueSpec
from jararaca.brokers.rabbitmq_acks import AckBatcher
from jararaca.brokers.rabbitmq_topology import AMQP_FAILURES, TopologyNames, envelope_from_message
from jararaca.errors import BrokerError
from jararaca.wire import Envelope

log = logging.getLogger(__name__)

# Seconds a cleanup step (cancel a consumer, close its channel) may take before we give up.
CLEANUP_TIMEOUT = 5.0

# Publishes a copy of the envelope with the reason to the dead-letter exchange (confirmed).
DeadLetterPublish = Callable[[Envelope, str], Awaitable[None]]


async def start_consumer(
    connection: AbstractRobustConnection,
    names: TopologyNames,
    queue: QueueSpec,
    callback: DeliveryCallback,
    *,
    prefetch: int,
    dead_letter: DeadLetterPublish,
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
            channel, amqp_queue, callback, dead_letter=dead_letter, on_cancel=on_cancel
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
        on_cancel: Callable[[RabbitMQConsumer], None],
    ) -> None:
        self.dead_letter = dead_letter
        self._on_cancel = on_cancel
        self._channel = channel
        self._queue = queue
        self._callback = callback
        self._tag: str | None = None
        self.acks = AckBatcher()
        self._unsettled = 0
        self._cancelled = False
        self._closed = False

    async def start(self) -> None:
        self._tag = await self._queue.consume(self._on_message, no_ack=False)

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._on_cancel(self)
        if self._tag is not None:
            await quietly(self._queue.cancel(self._tag))
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
            await quietly(message.nack(requeue=True))
            return
        self._unsettled += 1
        if message.delivery_tag is not None:
            self.acks.delivered(message.channel, message.delivery_tag)
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
        await quietly(self._channel.close())


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
        tag = self._message.delivery_tag
        if tag is None:
            await self._message.ack()
        else:  # with the consumer's other acks of this loop turn
            await self._consumer.acks.ack(self._message.channel, tag)

    async def _requeue(self) -> None:
        if self._message.delivery_tag is not None:
            self._consumer.acks.forget(self._message.channel, self._message.delivery_tag)
        await self._message.nack(requeue=True)

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
