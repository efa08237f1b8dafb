"""A burst of due delayed messages goes out in batches: every message is published once, also
when a publish fails mid-burst."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from jararaca.backends.memory import MemoryBackend
from jararaca.brokers.memory import MemoryBroker
from jararaca.errors import BrokerError
from jararaca.scheduler.beat import Beat
from jararaca.scheduler.dispatch import DELAYED_BATCH
from jararaca.testing import FakeClock
from jararaca.wire import Envelope
from tests.contract.conftest import env

T0 = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)
BURST = 2 * DELAYED_BATCH + 500  # two full batches and a partial one


class CountingBroker(MemoryBroker):
    """Counts what each publish call confirmed; fails the calls numbered in ``fail_calls``."""

    def __init__(self, name: str, fail_calls: set[int]) -> None:
        super().__init__(name)
        self.fail_calls = fail_calls
        self.calls = 0
        self.published: Counter[str] = Counter()

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        self.calls += 1
        if self.calls in self.fail_calls:
            raise BrokerError("RabbitMQ is gone for this test")
        await super().publish(envelopes)
        self.published.update(e.message_id for e in envelopes)


async def burst(name: str, fail_calls: set[int]) -> tuple[Beat, MemoryBackend, CountingBroker]:
    backend = MemoryBackend(name)
    broker = CountingBroker(name, fail_calls)
    await backend.connect()
    await broker.connect()
    await backend.enqueue_delayed_many([(env(f"m{i}"), T0) for i in range(BURST)])
    return Beat([], backend, broker, FakeClock(T0)), backend, broker


async def nothing_left(backend: MemoryBackend) -> bool:
    far = T0 + timedelta(days=1)
    leftover = await backend.reclaim_inflight(now=far, lease_until=far, limit=BURST)
    return await backend.pending_count() == 0 and leftover == []


async def test_one_tick_publishes_every_batch_of_a_burst_once() -> None:
    beat, backend, broker = await burst("batches-ok", fail_calls=set())
    await beat.tick()
    assert broker.calls == 3
    assert broker.published == Counter({f"m{i}": 1 for i in range(BURST)})
    assert beat.stats.delayed_dispatched == BURST
    assert await nothing_left(backend)


async def test_a_failed_publish_mid_burst_loses_and_doubles_nothing() -> None:
    beat, backend, broker = await burst("batches-fail", fail_calls={2})
    try:
        await beat.tick()
    except BrokerError:
        pass
    else:
        raise AssertionError("the second publish should have failed the tick")
    # The first batch went out, the second failed and the last is still waiting. The clock
    # has not moved, so no lease has ended: the next tick publishing the second batch shows
    # the beat kept it, not a reclaim.
    assert sum(broker.published.values()) == DELAYED_BATCH
    assert await backend.pending_count() == BURST - 2 * DELAYED_BATCH
    await beat.tick()
    assert broker.published == Counter({f"m{i}": 1 for i in range(BURST)})
    assert await nothing_left(backend)
