"""The embedded scheduler's durable hand-off: a SQLite file and an in-process broker.

``jararaca scheduler --backend-url sqlite:///...`` keeps its broker in memory, so a message
published there dies with the process. To lose nothing on ``kill -9``, the beat's in-flight
entries (on disk) stand in for the broker's durability:

1. what the beat claims is leased to this process for good (:data:`FOREVER`), so no tick
   ever republishes it while the process lives;
2. when the broker "confirms" a publish, the entry is not forgotten: it is forgotten once the
   worker has settled (acked or dead-lettered) every copy of it, after the run's record (its
   end) was committed;
3. at start-up, under the file's lock (one scheduler per file), every lease left in the file
   belonged to the dead process: in-flight entries are published again at once, and runs
   that were going on are taken over (attempt 2). Run records turn republished copies of
   what had already run into duplicates, which are acknowledged without running. A clean stop
   ends the leases of what it leaves unsettled, for whoever opens the file next.

What can run twice: a run that ended but whose end was not committed when the process died
(its handler ran; the record of it did not reach the disk).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from jararaca.backends.base import Claimed
from jararaca.backends.sqlite import SqliteBackend
from jararaca.backends.sqlite_files import SchedulerLock
from jararaca.brokers.base import Delivery, DeliveryCallback, QueueSpec
from jararaca.brokers.memory import MemoryBroker
from jararaca.errors import JararacaError
from jararaca.wire import Envelope

if TYPE_CHECKING:
    from jararaca.brokers.memory import _MemoryConsumer

log = logging.getLogger("jararaca.backends.sqlite")

FOREVER = timedelta(days=100 * 365)  # "held by this process until it dies"
Key = tuple[str, str]  # (message id, routing key): what a delivery tells of its entry


def _key(envelope: Envelope) -> Key:
    return envelope.message_id, envelope.routing_key


@dataclass(slots=True)
class _Flight:
    copies: int  # deliveries of it not settled yet
    inflight_id: str | None = None  # known once the beat handed it over


class HandOff:
    """Follows each claimed entry from the beat to the worker's last settle of it."""

    lease = FOREVER

    def __init__(self, backend: SqliteBackend, broker: MemoryBroker) -> None:
        self.backend = backend
        self.broker = TrackingBroker(self, broker.name, broker.namespace, broker.prefetch)
        self._lock = SchedulerLock(backend.file)
        self._claims: dict[str, Key] = {}  # in-flight id -> key, claimed, not yet handed over
        self._expected: Counter[Key] = Counter()  # per key, claims not yet handed over
        self._flights: dict[Key, list[_Flight]] = {}  # usually one per key
        self._forget: list[str] = []  # settled, to forget in the next transaction
        self._forgetting: asyncio.Task[None] | None = None

    def lock(self, stack: AsyncExitStack) -> None:
        """Take the file's scheduler lock (released when the stack closes)."""
        self._lock.acquire()
        stack.callback(self._lock.release)

    async def take_over(self, stack: AsyncExitStack, *, now: datetime) -> None:
        """Watch the backend's in-flight entries; end the leases the dead process held."""
        self.backend.watch_flight(self)
        stack.callback(self.backend.watch_flight, None)
        # At a stop (after the worker's drain): what was not settled is left for whoever
        # opens the file next, with its lease ended, so that even a distributed beat takes it.
        stack.push_async_callback(self._leave, now)
        stack.push_async_callback(self.flush)
        orphans = await self.backend.take_over(now=now)
        if orphans:
            log.warning(
                "%d message(s) were in flight when the previous scheduler on %s stopped: "
                "publishing them again (what already ran is not run again)",
                orphans,
                self.backend.file,
            )

    async def _leave(self, started: datetime) -> None:
        try:
            left = await self.backend.take_over(now=started)
        except JararacaError as exc:
            log.warning("could not end the leases held on %s: %s", self.backend.file, exc)
            return
        if left:
            log.info("%d message(s) left in flight, for the next start", left)

    # -- the beat's side (FlightWatcher) --------------------------------------------------

    def claimed(self, claimed: Sequence[Claimed]) -> None:
        for entry in claimed:
            if entry.inflight_id not in self._claims:
                key = _key(entry.envelope)
                self._claims[entry.inflight_id] = key
                self._expected[key] += 1

    def published(self, envelope: Envelope, copies: int) -> None:
        """The broker queued ``copies`` deliveries of a claimed envelope for our worker."""
        key = _key(envelope)
        flights = self._flights.setdefault(key, [])
        waiting = sum(1 for f in flights if f.inflight_id is None)
        if waiting < self._expected.get(key, 0):
            flights.append(_Flight(copies))
        elif not flights:
            del self._flights[key]  # not a claimed entry (a publish from a handler, say)

    def handed_over(self, inflight_ids: Sequence[str]) -> list[str]:
        forget: list[str] = []
        for inflight_id in inflight_ids:
            key = self._claims.pop(inflight_id, None)
            if key is None:
                forget.append(inflight_id)
                continue
            self._expected[key] -= 1
            if self._expected[key] <= 0:
                del self._expected[key]
            flight = next((f for f in self._flights.get(key, ()) if f.inflight_id is None), None)
            if flight is None or flight.copies == 0:  # nothing of ours to wait for
                if flight is not None:
                    self._drop(key, flight)
                forget.append(inflight_id)
            else:
                flight.inflight_id = inflight_id
        return forget

    # -- the worker's side ----------------------------------------------------------------

    def settled(self, envelope: Envelope) -> None:
        """One delivery of ``envelope`` was acked or dead-lettered."""
        key = _key(envelope)
        flight = next((f for f in self._flights.get(key, ()) if f.copies > 0), None)
        if flight is None:
            return
        flight.copies -= 1
        if flight.copies or flight.inflight_id is None:
            return  # more copies to settle, or the beat has not handed it over yet
        self._drop(key, flight)
        # Forgotten in bulk, soon: the run's end is on disk already, and should the process
        # die first, the entry is published again and recognised as done.
        self._forget.append(flight.inflight_id)
        if self._forgetting is None:
            self._forgetting = asyncio.get_running_loop().create_task(self._forget_soon())

    async def _forget_soon(self) -> None:
        try:
            while self._forget:
                ids, self._forget = self._forget, []
                try:
                    await self.backend.forget_inflight(ids)
                except JararacaError as exc:
                    log.warning("could not forget %d in-flight entries: %s", len(ids), exc)
        finally:
            self._forgetting = None

    async def flush(self) -> None:
        """Forget what was settled (at shutdown, before the backend closes)."""
        if self._forgetting is not None:
            await asyncio.wait([self._forgetting])

    def _drop(self, key: Key, flight: _Flight) -> None:
        flights = self._flights[key]
        flights.remove(flight)
        if not flights:
            del self._flights[key]

    @property
    def tracked(self) -> int:
        """Entries published and not yet settled (for tests)."""
        return sum(len(flights) for flights in self._flights.values())


class TrackingBroker(MemoryBroker):
    """The in-process broker, telling the hand-off how many copies of each claimed envelope
    it queued for this process's consumers, and when each copy is settled."""

    def __init__(self, handoff: HandOff, name: str, namespace: str, prefetch: int) -> None:
        super().__init__(name, namespace=namespace, prefetch=prefetch)
        self._handoff = handoff

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        ours = self._consumed_queues()
        for envelope in envelopes:
            # One copy per queue it went to that one of our consumers takes from.
            copies = sum(1 for queue in self._put(envelope) if id(queue) in ours)
            self._handoff.published(envelope, copies)

    async def consume(
        self, queue: QueueSpec, callback: DeliveryCallback, *, prefetch: int | None = None
    ) -> _MemoryConsumer:
        handoff = self._handoff

        async def tracked(delivery: Delivery) -> None:
            await callback(TrackedDelivery(delivery, handoff))

        return await super().consume(queue, tracked, prefetch=prefetch)


class TrackedDelivery:
    """A delivery whose ack or dead-letter is reported to the hand-off (a requeue is not:
    the copy stays to be settled)."""

    __slots__ = ("_handoff", "_inner")

    def __init__(self, inner: Delivery, handoff: HandOff) -> None:
        self._inner = inner
        self._handoff = handoff

    @property
    def envelope(self) -> Envelope:
        return self._inner.envelope

    @property
    def redelivered(self) -> bool:
        return self._inner.redelivered

    async def ack(self) -> None:
        await self._inner.ack()
        self._handoff.settled(self._inner.envelope)

    async def dead_letter(self, reason: str) -> None:
        await self._inner.dead_letter(reason)
        self._handoff.settled(self._inner.envelope)

    async def requeue(self) -> None:
        await self._inner.requeue()
