"""The message broker protocol shared by the memory and RabbitMQ implementations.

One topic exchange per app (its name is the namespace). Queues are declared idempotently by
whoever needs them; each is bound to routing keys on the app's exchange and dead-letters to
the app's dead-letter queue. Publishing returns only once the broker confirmed every message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from jararaca.wire import Envelope

# Deliveries each consumer holds unsettled, which is also how many of its queue's messages a
# worker runs at once. 128, as RabbitMQ's own guidance for throughput suggests (100-300): a
# delivery spends most of its time waiting on Redis and RabbitMQ, so a small window starves
# the worker (10,000 burst: 3,535 msg/s at 32, 3,783 at 128; docs/benchmarks.md).
DEFAULT_PREFETCH = 128


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue of the app. ``name`` is local to the namespace (the broker prefixes it).

    ``broadcast`` queues belong to one consumer (server-named, exclusive, deleted with it):
    every consumer gets its own copy of each message."""

    name: str
    routing_keys: tuple[str, ...]
    broadcast: bool = False


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One message of the dead-letter queue, as :meth:`Broker.dead_letters` shows it.

    ``envelope`` is the message as it sits in the queue (dead-letter headers included).
    ``reason`` is jararaca's ``x-jararaca-dead-letter-reason``, or RabbitMQ's own reason
    (``rejected``, ``expired``, ``maxlen``, ``delivery_limit``) for a message RabbitMQ
    dead-lettered itself; ``""`` if neither is known. ``failed_at`` (aware, UTC) is when it
    was dead-lettered, if known. ``source`` is the routing key it came from (a topic, a
    handler's retry key or an action's key): where a replay publishes it again."""

    envelope: Envelope
    reason: str
    failed_at: datetime | None
    source: str


class Delivery(Protocol):
    """One message handed to a consumer; exactly one of ack/dead_letter/requeue must follow."""

    @property
    def envelope(self) -> Envelope: ...

    @property
    def redelivered(self) -> bool: ...

    async def ack(self) -> None: ...

    async def dead_letter(self, reason: str) -> None:
        """Move the message to the dead-letter queue with ``reason`` in its headers."""
        ...

    async def requeue(self) -> None:
        """Give the message back to the queue (another consumer, or later, gets it)."""
        ...


DeliveryCallback = Callable[[Delivery], Awaitable[None]]
# (connected, reason): see Broker.add_connection_listener.
ConnectionListener = Callable[[bool, str], None]

# Messages no queue is bound to (an unknown topic, from any publisher) wait here instead of
# being dropped; workers consume it and dead-letter each one with the reason.
UNROUTED = QueueSpec("unrouted", ())


class Consumer(Protocol):
    async def cancel(self) -> None:
        """Stop receiving; unacked deliveries stay owned by the caller until settled."""
        ...


class Broker(Protocol):
    namespace: str
    prefetch: int

    async def connect(self) -> None: ...

    async def close(self) -> None: ...

    async def declare(self, queues: Sequence[QueueSpec]) -> None:
        """Declare the exchange, the dead-letter exchange and queue, and ``queues`` with their
        bindings. Idempotent; broadcast queues are declared by :meth:`consume` instead.

        The dead-letter queue holds at most ``JARARACA_DEAD_LETTER_MAX`` messages (read when
        the broker is made); beyond that the oldest is dropped."""
        ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish persistently and return once the broker confirmed every message; raises
        ``BrokerError`` if any publish failed. A message no queue is bound to (an unknown
        topic) lands in the ``UNROUTED`` queue, never dropped and never reported here: the
        workers consuming that queue dead-letter it with the reason."""
        ...

    def add_connection_listener(self, listener: ConnectionListener) -> None:
        """Call ``listener(False, reason)`` once when the connection to the broker is lost and
        ``listener(True, "")`` once when it is back, so that a process can say so in its log.
        Brokers that cannot lose their connection (memory) never call it."""
        ...

    def remove_connection_listener(self, listener: ConnectionListener) -> None:
        """Stop calling ``listener`` (a service that stops, on a broker it was handed)."""
        ...

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        """Put an envelope straight into the dead-letter queue with ``reason``. Should that
        drop the oldest dead letter (the queue is full), a warning is logged (at most one a
        minute); the same goes for :meth:`Delivery.dead_letter`."""
        ...

    async def consume(
        self, queue: QueueSpec, callback: DeliveryCallback, *, prefetch: int | None = None
    ) -> Consumer:
        """Deliver messages of ``queue`` to ``callback``, at most ``prefetch`` unsettled at a
        time. The callback may settle the delivery later (after the run finished)."""
        ...

    def dead_letter_queue(self) -> QueueSpec:
        """The app's dead-letter queue, to inspect or consume it."""
        ...

    async def dead_letters(self, *, limit: int) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first, left in the queue (a look, not a take).
        Messages a consumer of the dead-letter queue holds unsettled are not seen."""
        ...

    async def replay_dead_letters(self, message_ids: Sequence[str] | None = None) -> int:
        """Publish the dead letters with these ids (all when ``None``; unknown ids are
        ignored) again to the routing key each came from, without the dead-letter headers and,
        except for action fires, with the attempt reset to 1. Each leaves the dead-letter
        queue only once the broker confirmed its copy, so a crash mid-replay loses nothing (at
        worst a message is both replayed and still dead). Returns how many were replayed;
        raises ``BrokerError`` if a copy was not confirmed (that dead letter stays)."""
        ...

    async def purge_dead_letters(self) -> int:
        """Remove every dead letter (but those a consumer holds); returns how many."""
        ...
