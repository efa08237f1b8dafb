"""Test helpers for users (and jararaca's own tests): a fake clock and ``TestScheduler``.

``TestScheduler`` runs an app's actions and messages exactly as the embedded scheduler does,
but on a fake clock: ``advance()`` jumps from one due instant to the next, runs what is due
and waits for it, so a day of schedules runs in milliseconds and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from jararaca.backends.memory import MemoryBackend
from jararaca.brokers.memory import MemoryBroker
from jararaca.clock import to_utc
from jararaca.declarations import ScheduledRun
from jararaca.messagebus.publisher import Publisher, bind_publisher
from jararaca.microservice import Microservice
from jararaca.scheduler.scheduler import Scheduler

# Loop turns a delivery may take from the broker to the worker (each a handful): far more
# than any real case, so that a harness that cannot settle says so instead of hanging.
SETTLE_TURNS = 100_000
# Turns with nothing changing before the worker counts as quiet: user code that was just
# unblocked runs to its next await or its end within one or two turns.
QUIET_TURNS = 3
MAX_STEPS = 1_000_000


class FakeClock:
    """A clock that moves only when told to; sleepers wake when it passes their instant."""

    def __init__(self, start: datetime) -> None:
        self._now = to_utc(start)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(
        self, when: datetime, wake: asyncio.Event | None = None, *, precise: bool = False
    ) -> None:
        # Sleepers wake when the clock is set to (or past) their instant: always precise.
        if when <= self._now or (wake is not None and wake.is_set()):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((when, future))
        waiters: set[asyncio.Future[Any]] = {future}
        waker = None
        if wake is not None:
            waker = asyncio.ensure_future(wake.wait())
            waiters.add(waker)
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if waker is not None:
                waker.cancel()
            self._sleepers = [(w, f) for w, f in self._sleepers if f is not future]

    def next_wakeup(self) -> datetime | None:
        return min((w for w, f in self._sleepers if not f.done()), default=None)

    def set(self, when: datetime) -> None:
        """Move to ``when`` (never backwards) and wake the sleepers that are due."""
        when = to_utc(when)
        if when < self._now:
            raise ValueError(f"the fake clock cannot go back from {self._now} to {when}")
        self._now = when
        for at, future in self._sleepers:
            if at <= when and not future.done():
                future.set_result(None)

    def advance(self, delta: timedelta) -> None:
        self.set(self._now + delta)


class TestScheduler:
    """Run an app's schedules and messages on a fake clock (``async with``)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        app: Microservice,
        start: datetime,
        *,
        actions: Iterable[str] | None = None,
        interval: float = 3600.0,
        store: str | None = None,
    ) -> None:
        """``store`` names the memory store: two harnesses with the same name share state, as
        a restarted process would with Redis (e.g. to test catch-up after downtime)."""
        self.clock = FakeClock(start)
        store = store or f"test-{uuid.uuid4().hex}"
        self._broker = MemoryBroker(store)
        self.scheduler = Scheduler(
            app,
            interval,
            scheduled_action_names=actions,
            clock=self.clock,
            # Leaving the block cancels runs still in progress at once.
            graceful_shutdown_seconds=0,
            backend=MemoryBackend(store, namespace=self._broker.namespace),
            broker=self._broker,
            heartbeat=False,  # a real-time loop has no place on a fake clock
            dispatch_lead=0,  # a fire runs when the fake clock reaches it, not held for it
        )
        self.runs: list[ScheduledRun] = []
        self.scheduler.worker.run_listeners.append(self.runs.append)
        self._binding: contextlib.ExitStack | None = None

    @property
    def publisher(self) -> Publisher:
        return self.scheduler.worker.publisher

    async def __aenter__(self) -> Self:
        await self.scheduler.start()
        self._binding = contextlib.ExitStack()
        self._binding.enter_context(bind_publisher(self.publisher))
        await self._settle()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._binding is not None:
            self._binding.close()
        await self.scheduler.stop()
        await self._broker.close()  # handed to the scheduler, so closed here

    async def advance(self, delta: timedelta) -> None:
        await self.advance_to(self.clock.now() + delta)

    async def advance_to(self, when: datetime) -> None:
        """Run, in order, everything due up to ``when``; the clock ends at ``when``."""
        target = to_utc(when)
        beat = self.scheduler.beat_worker.beat
        for _ in range(MAX_STEPS):
            wake = await beat.tick()
            await self._settle()
            # Runs may have queued work while settling (a retry, a fire waiting its turn):
            # the beat's answer predates it.
            for sooner in (self.clock.next_wakeup(), await self.scheduler.backend.next_due()):
                if sooner is not None:
                    wake = min(wake, sooner)
            if wake > target:
                break
            self.clock.set(max(wake, self.clock.now()))
        else:
            raise RuntimeError(
                "TestScheduler.advance_to made no progress: something is due forever"
            )
        self.clock.set(target)
        await self._settle()

    async def _settle(self) -> None:
        """Wait until the worker is quiet: every published message was handed to it, every
        delivery it took is finished or inside user code, and a few loop turns went by without
        any of that changing (a run that just became able to go on gets to go on). Raises,
        rather than returning early, when that never happens."""
        worker = self.scheduler.worker
        quiet, last = 0, None
        for _ in range(SETTLE_TURNS):
            await asyncio.sleep(0)
            progress = worker.progress
            settled = self._broker.undelivered() == 0 and worker.only_user_code_runs
            quiet = quiet + 1 if settled and progress == last else 0
            last = progress
            if quiet >= QUIET_TURNS:
                return
        raise RuntimeError(
            "TestScheduler could not settle: deliveries keep arriving without end "
            "(a handler that publishes to itself?)"
        )
