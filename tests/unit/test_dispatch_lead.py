"""Fires published ahead of their instant (JARARACA_DISPATCH_LEAD_MS) and held by the worker
until then: claim, publish and delivery happen before the slot, the run never starts early."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest

from jararaca import Microservice, ScheduledAction, ScheduledRun, wire
from jararaca.backends.base import RunStatus
from jararaca.backends.memory import MemoryBackend
from jararaca.brokers.base import Delivery
from jararaca.brokers.memory import MemoryBroker
from jararaca.clock import SystemClock
from jararaca.errors import ConfigError
from jararaca.invoke import LeaseRenewer
from jararaca.observability.telemetry import Telemetry
from jararaca.outage import Outage
from jararaca.registry import action_queues, build_registry
from jararaca.runs import RunGuard, WorkerStats
from jararaca.scheduler.beat import Beat
from jararaca.scheduler.scheduler import Scheduler
from jararaca.settings import dispatch_lead_seconds
from jararaca.testing import FakeClock

SLOT = datetime(2031, 3, 4, 10, 0, 1, tzinfo=UTC)


class EverySecond:
    @ScheduledAction("* * * * * *", name="tick")
    async def tick(self) -> None:
        return None


async def published_by(lead: float, at: datetime) -> list[wire.Envelope]:
    """What a beat with ``lead`` publishes when it looks at ``at``, 0.8 s before the slot
    having planned the slot at start-up."""
    registry = build_registry(Microservice(controllers=[EverySecond]))
    clock = FakeClock(SLOT - timedelta(seconds=0.8))
    backend = MemoryBackend(f"lead-{lead}-{at.timestamp()}")
    broker = MemoryBroker(f"lead-{lead}-{at.timestamp()}")
    await backend.connect()
    await broker.connect()
    queues = action_queues(registry.actions)
    await broker.declare(queues)
    received: list[wire.Envelope] = []
    arrived = asyncio.Event()

    async def take(delivery: Delivery) -> None:
        received.append(delivery.envelope)
        await delivery.ack()
        arrived.set()

    await broker.consume(queues[0], take)
    beat = Beat(registry.actions, backend, broker, clock, dispatch_lead=lead)
    await beat.start()
    clock.set(at)
    await beat.tick()
    if beat.stats.fires_dispatched:
        await asyncio.wait_for(arrived.wait(), 5)
    await beat.stop()
    await broker.close()
    await backend.close()
    return received


async def test_a_fire_within_the_lead_goes_out_early_marked_with_its_instant() -> None:
    [envelope] = await published_by(0.2, SLOT - timedelta(seconds=0.2))
    assert envelope.headers[wire.NOT_BEFORE] == wire.format_instant(SLOT)
    assert envelope.headers[wire.SCHEDULED_AT] == wire.format_instant(SLOT)


async def test_a_fire_beyond_the_lead_waits_and_without_a_lead_none_goes_early() -> None:
    assert await published_by(0.2, SLOT - timedelta(seconds=0.21)) == []
    assert await published_by(0.0, SLOT - timedelta(seconds=0.01)) == []
    [on_time] = await published_by(0.0, SLOT)
    assert wire.NOT_BEFORE not in on_time.headers


async def test_the_worker_holds_an_early_fire_until_its_instant() -> None:
    started: list[tuple[datetime, datetime]] = []
    ran = asyncio.Event()
    clock = SystemClock()

    class Recorded:
        @ScheduledAction("* * * * * *", name="tick")
        async def tick(self, run: ScheduledRun) -> None:
            started.append((clock.now(), run.scheduled_at))
            ran.set()

    scheduler = Scheduler(
        Microservice(controllers=[Recorded]), backend_url="memory://held", dispatch_lead=0.4
    )
    stop = asyncio.Event()
    serving = asyncio.create_task(scheduler.serve(stop))
    try:
        await asyncio.wait_for(ran.wait(), 5)
    finally:
        stop.set()
        await serving
    at, scheduled = started[0]
    assert at >= scheduled, f"started {(scheduled - at).total_seconds():.4f} s early"


def test_the_lead_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JARARACA_DISPATCH_LEAD_MS", raising=False)
    assert dispatch_lead_seconds() == 0.05
    monkeypatch.setenv("JARARACA_DISPATCH_LEAD_MS", "0")
    assert dispatch_lead_seconds() == 0
    for bad in ("-1", "abc", "20000"):
        monkeypatch.setenv("JARARACA_DISPATCH_LEAD_MS", bad)
        with pytest.raises(ConfigError, match=f"JARARACA_DISPATCH_LEAD_MS='{bad}'"):
            dispatch_lead_seconds()


class HeldDelivery:
    """A fire's delivery as the worker holds it: only whether and how it was settled matters."""

    def __init__(self) -> None:
        self.settled: list[str] = []

    @property
    def envelope(self) -> wire.Envelope:
        return wire.Envelope("tick@slot", "jararaca.action.default", b"", {})

    @property
    def redelivered(self) -> bool:
        return False

    async def ack(self) -> None:
        self.settled.append("ack")

    async def dead_letter(self, reason: str) -> None:
        self.settled.append("dead_letter")

    async def requeue(self) -> None:
        self.settled.append("requeue")


async def begin_ahead(previous_ends_before_the_instant: bool) -> tuple[bool, list[str]]:
    """A fire of a skip-on-overlap action, begun 25 ms before its instant while the
    previous run of the action still runs: whether it started, and how its delivery was
    settled."""
    clock = FakeClock(SLOT - timedelta(seconds=1))
    lease = timedelta(seconds=30)
    backend = MemoryBackend(f"ahead-{previous_ends_before_the_instant}")
    await backend.connect()
    renewer = LeaseRenewer(backend, "w", clock, lease)
    outage = Outage("the backend", logging.getLogger("test"))
    guard = RunGuard(backend, "w", clock, lease, renewer, WorkerStats(), outage, Telemetry())
    now = clock.now()
    await backend.begin_run(
        "tick@prev", overlap_key="tick", owner="w", now=now, lease_until=now + lease
    )
    clock.set(SLOT - timedelta(milliseconds=25))
    delivery = HeldDelivery()
    begun = asyncio.create_task(
        guard.begin(delivery, "tick@slot", "tick", on_overlap="skip", not_before=SLOT)
    )
    for _ in range(1000):  # until the guard, told it is early, waits for the instant
        if clock.next_wakeup() == SLOT or begun.done():
            break
        await asyncio.sleep(0)
    assert clock.next_wakeup() == SLOT, "the early ask did not wait for the instant"
    if previous_ends_before_the_instant:
        await backend.finish_run("tick@prev", overlap_key="tick", owner="w", now=clock.now())
    clock.set(SLOT)
    start = await begun
    await backend.close()
    return start is not None and start.status is RunStatus.STARTED, delivery.settled


async def test_a_fire_begun_ahead_starts_when_the_previous_run_ends_before_its_instant() -> None:
    assert await begin_ahead(previous_ends_before_the_instant=True) == (True, [])


async def test_a_fire_begun_ahead_is_skipped_when_the_previous_run_still_runs_at_its_instant() -> (
    None
):
    assert await begin_ahead(previous_ends_before_the_instant=False) == (False, ["ack"])


async def test_a_precise_sleep_never_returns_before_its_instant() -> None:
    clock = SystemClock()
    for ms in (0.5, 3, 30):  # shorter than the spin, about it, and beyond it
        when = clock.now() + timedelta(milliseconds=ms)
        await clock.sleep_until(when, precise=True)
        assert clock.now() >= when


async def test_a_precise_sleep_ends_when_woken() -> None:
    clock = SystemClock()
    wake = asyncio.Event()
    wake.set()
    when = clock.now() + timedelta(seconds=30)
    await asyncio.wait_for(clock.sleep_until(when, wake, precise=True), 5)
    assert clock.now() < when
