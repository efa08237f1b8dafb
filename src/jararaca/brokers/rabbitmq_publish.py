"""Confirmed publishing for the RabbitMQ broker (:mod:`jararaca.brokers.rabbitmq`).

- One confirm-mode channel per connection. A batch goes out through a window of concurrent
  publishes whose confirms are awaited together (awaiting each confirm before sending the next
  message would cap us at one round trip per message).
- A message no queue is bound to goes through the app exchange's alternate exchange to the
  unrouted queue (:mod:`jararaca.brokers.rabbitmq_topology`) and is confirmed like any other,
  so publishing never reports it. Messages are still ``mandatory``: RabbitMQ returns one only
  when even the unrouted (or dead-letter) queue is gone, and that fails the publish rather
  than losing the message silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import cast

import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection
from aiormq import spec
from aiormq.abc import DeliveredMessage
from aiormq.exceptions import DeliveryError

from jararaca.brokers.rabbitmq_messages import message_properties
from jararaca.brokers.rabbitmq_topology import AMQP_FAILURES, Topology
from jararaca.clock import Clock
from jararaca.errors import BrokerError
from jararaca.wire import Envelope

# Publishes of one batch in flight at once (sent, confirm pending). Large enough to keep the
# connection busy; bounded so a huge batch is not one task and one buffered frame per message.
PUBLISH_WINDOW = 512


class ConfirmedPublisher:
    """Publishes on one confirm-mode robust channel of ``connection``, after declaring the
    app's base topology whenever it is not known to be there (publishing to an undeclared
    exchange would close the channel). ``where`` is the redacted broker URL, for errors."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractRobustChannel,
        topology: Topology,
        *,
        clock: Clock,
        timeout: float,
        where: str,
    ) -> None:
        self._connection = connection
        self._channel = channel
        self._topology = topology
        self._names = topology.names
        self._clock = clock
        self._timeout = timeout
        self._where = where

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish to the app exchange; raises :class:`BrokerError` unless all are confirmed."""
        if not envelopes:
            return
        outcomes = await self._send_all(self._names.exchange, envelopes)
        failures = [
            (envelope, outcome)
            for envelope, outcome in zip(envelopes, outcomes, strict=True)
            if not isinstance(outcome, spec.Basic.Ack)
        ]
        if failures:
            self._redeclare_base_next_time()
            raise self._publish_failed(failures, len(envelopes))

    async def publish_each(self, envelopes: Sequence[Envelope]) -> list[bool]:
        """Publish to the app exchange; whether RabbitMQ confirmed each one (a replay removes
        a dead letter only once its copy is confirmed, so it needs to know which were)."""
        if not envelopes:
            return []
        outcomes = await self._send_all(self._names.exchange, envelopes)
        confirmed = [isinstance(outcome, spec.Basic.Ack) for outcome in outcomes]
        if not all(confirmed):
            self._redeclare_base_next_time()
        return confirmed

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        """Publish a copy of ``envelope`` with ``reason`` to the dead-letter exchange."""
        [outcome] = await self._send_all(self._names.dead_letter_exchange, [envelope], reason)
        if isinstance(outcome, spec.Basic.Ack):
            return
        self._redeclare_base_next_time()
        if isinstance(outcome, DeliveredMessage):
            raise BrokerError(
                f"RabbitMQ could not route message {envelope.message_id} to the dead-letter "
                f"queue {self._names.dead_letter_queue}: was it deleted? It is declared again "
                "before the next publish"
            )
        raise self._publish_failed([(envelope, outcome)], 1)

    def _redeclare_base_next_time(self) -> None:
        # The failure may be RabbitMQ closing the channel because an exchange or queue of the
        # base topology is gone (deleted by hand): declaring it again before the next publish
        # heals that.
        self._topology.forget_base()

    async def _send_all(
        self, exchange: str, envelopes: Sequence[Envelope], reason: str | None = None
    ) -> list[object]:
        """Publish every envelope and wait for all the confirms. One outcome per envelope:
        ``Basic.Ack`` (confirmed), a ``DeliveredMessage`` (returned: no queue took it), an
        exception (nack, channel or connection lost), or ``None`` (not sent after a failure)."""
        channel = await self._ready_channel()
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
                        timeout=self._timeout,
                    )
                except Exception as exc:
                    # Recorded, not raised, so every sender finishes before we report; after
                    # a failure (channel or connection gone) the rest would fail as well.
                    outcomes[index] = exc
                    stop = True

        await asyncio.gather(*(sender() for _ in range(min(PUBLISH_WINDOW, len(envelopes)))))
        return outcomes

    async def _ready_channel(self) -> aiormq.Channel:
        try:
            async with asyncio.timeout(self._timeout):
                connected = getattr(self._connection, "connected", None)
                if isinstance(connected, asyncio.Event) and not connected.is_set():
                    # Reconnecting: fail now so the caller backs off and keeps what it has,
                    # rather than blocking its loop for the whole publish timeout.
                    raise TimeoutError
                if not self._topology.base_ready:
                    await self._topology.declare_base()
                # Waits while the robust connection or this channel is being restored (the
                # channel re-opens by itself after RabbitMQ closed it on an error).
                await self._channel.ready()
                channel = await self._channel.get_underlay_channel()
                # aiormq's abstract channel does not declare basic_publish's ``wait``.
                return cast(aiormq.Channel, channel)
        except TimeoutError:
            raise BrokerError(
                f"RabbitMQ at {self._where} has been unreachable for {self._timeout:g}s "
                "(reconnecting); nothing was published"
            ) from None
        except AMQP_FAILURES as exc:
            raise BrokerError(f"cannot publish to RabbitMQ: {exc!r}") from None

    def _publish_failed(
        self, failures: Sequence[tuple[Envelope, object]], total: int
    ) -> BrokerError:
        envelope, outcome = failures[0]
        if isinstance(outcome, DeliveredMessage):
            cause = (
                f"returned: no queue took it, not even {self._names.unrouted_queue} (deleted? "
                "it is declared again before the next publish)"
            )
        elif isinstance(outcome, DeliveryError):
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
