"""The wall clock in one place: code that needs *instants* (what is due, leases, headers) is
given a :class:`Clock`, so tests substitute a fake one.

Durations that never become instants (backoff between retries in ``outage.py`` and
``engines.py``, drain deadlines in ``lifecycle.py``) use the monotonic clock directly: a
fake wall clock must not stretch or shrink them."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Where runtime code gets the time and waits for it."""

    def now(self) -> datetime:
        """The current instant, aware, in UTC."""
        ...

    async def sleep_until(
        self, when: datetime, wake: asyncio.Event | None = None, *, precise: bool = False
    ) -> None:
        """Return at ``when`` or as soon as ``wake`` is set, whichever comes first; with
        ``precise``, as close after ``when`` as the clock can (a run starting on its slot)."""
        ...


# How long before a precise sleep's instant the real clock stops trusting the event loop's
# timer and yields to the loop until the instant instead. With the timer alone, held cron fires
# started 0.9-1.1 ms late at the median and up to 4 ms (epoll counts whole milliseconds, and an
# idle 2-core VM is slow to wake); with the last 2 ms spent yielding, 0.11 ms (cron-precision,
# 2026-11-29: docs/benchmarks.md).
PRECISE_SPIN = timedelta(milliseconds=2)


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(
        self, when: datetime, wake: asyncio.Event | None = None, *, precise: bool = False
    ) -> None:
        delay = (when - self.now()).total_seconds()
        if delay <= 0:
            return
        if precise:
            # Busy for at most PRECISE_SPIN, but other tasks run meanwhile (sleep(0) yields);
            # no timer or event wakes a task closer to an instant than this loop does.
            await self.sleep_until(when - PRECISE_SPIN, wake)
            while self.now() < when and (wake is None or not wake.is_set()):  # noqa: ASYNC110
                await asyncio.sleep(0)
            return
        if wake is None:
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), timeout=delay)


def to_utc(when: datetime) -> datetime:
    """An aware datetime in UTC; naive datetimes are refused so no instant is guessed."""
    if when.tzinfo is None or when.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got naive {when.isoformat()}")
    return when.astimezone(UTC)


def epoch_ms(when: datetime) -> int:
    """Milliseconds since the Unix epoch of an aware instant."""
    if when.tzinfo is not UTC:  # UTC, what the clock gives, needs no conversion
        when = to_utc(when)
    return round(when.timestamp() * 1000)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def duration_ms(period: timedelta) -> int:
    """A period in whole milliseconds, as the backends store leases and lifetimes."""
    return round(period.total_seconds() * 1000)


def from_epoch_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
