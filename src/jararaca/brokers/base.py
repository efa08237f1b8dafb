"""The message broker protocol shared by the memory and RabbitMQ implementations.

One topic exchange per app (its name is the namespace). Queues are declared idempotently by
whoever needs them; each is bound to routing keys on the app's exchange and dead-letters to
the app's dead-letter queue. Publishing returns only once the broker confirmed every message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from jararaca.wire import Envelope

DEFAULT_PREFETCH = 32


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """A queue of the app. ``name`` is local to the namespace (the broker prefixes it).

    ``broadcast`` queues belong to one consumer (server-named, exclusive, deleted with it):
    every consumer gets its own copy of each message."""

    name: str
    routing_keys: tuple[str, ...]
    broadcast: bool = False


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
        bindings. Idempotent; broadcast queues are declared by :meth:`consume` instead."""
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

    async def dead_letter(self, envelope: Envelope, reason: str) -> None:
        """Put an envelope straight into the dead-letter queue with ``reason``."""
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
