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

from jararaca.clock import to_utc
from jararaca.messagebus.publisher import Publisher, bind_publisher
from jararaca.microservice import Microservice
from jararaca.scheduler.decorators import ScheduledRun
from jararaca.scheduler.scheduler import Scheduler

SETTLE_ROUNDS = 200
MAX_STEPS = 1_000_000


class FakeClock:
    """A clock that moves only when told to; sleepers wake when it passes their instant."""

    def __init__(self, start: datetime) -> None:
        self._now = to_utc(start)
        self._sleepers: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    async def sleep_until(self, when: datetime, wake: asyncio.Event | None = None) -> None:
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
        self.scheduler = Scheduler(
            app,
            interval,
            backend_url=f"memory://{store}",
            broker_url=f"memory://{store}",
            scheduled_action_names=actions,
            clock=self.clock,
            # Leaving the block cancels runs still in progress at once.
            graceful_shutdown_seconds=0,
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

    async def advance(self, delta: timedelta) -> None:
        await self.advance_to(self.clock.now() + delta)

    async def advance_to(self, when: datetime) -> None:
        """Run, in order, everything due up to ``when``; the clock ends at ``when``."""
        target = to_utc(when)
        beat = self.scheduler.beat_worker.beat
        for _ in range(MAX_STEPS):
            wake = await beat.tick()
            await self._settle()
            sleeper = self.clock.next_wakeup()
            if sleeper is not None:
                wake = min(wake, sleeper)
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
        """Let deliveries and runs proceed until nothing moves any more."""
        worker = self.scheduler.worker
        quiet = 0
        for _ in range(SETTLE_ROUNDS):
            await asyncio.sleep(0)
            quiet = quiet + 1 if worker.busy == 0 else 0
            if quiet >= 5:
                return
