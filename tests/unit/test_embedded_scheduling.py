"""The embedded runtime on a fake clock: cron grid, catch-up, overlap, timeout, errors, filters."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jararaca import Microservice, ScheduledAction, ScheduledRun
from jararaca.clock import epoch_ms
from jararaca.scheduler.planning import jitter_offset
from jararaca.testing import TestScheduler

T0 = datetime(2031, 3, 4, 10, 0, 0, 500_000, tzinfo=UTC)  # half a second past a slot
MINUTE = timedelta(minutes=1)


def app_of(*controllers: type[Any]) -> Microservice:
    return Microservice(controllers=list(controllers))


class Every5Minutes:
    @ScheduledAction("*/5 * * * *")
    async def tick(self) -> None:
        return None


async def test_first_fire_is_the_next_slot_then_every_slot_on_the_grid() -> None:
    async with TestScheduler(app_of(Every5Minutes), start=T0) as t:
        await t.advance(timedelta(minutes=20))
    assert [r.scheduled_at for r in t.runs] == [
        datetime(2031, 3, 4, 10, m, tzinfo=UTC) for m in (5, 10, 15, 20)
    ]
    assert {r.action_id for r in t.runs} == {f"{__name__}.Every5Minutes.tick"}
    assert all(
        r.fire_id == f"{r.action_id}@{int(r.scheduled_at.timestamp() * 1000)}" for r in t.runs
    )


class EverySecond:
    seen: list[ScheduledRun] = []

    @ScheduledAction("* * * * * *")
    async def tick(self, run: ScheduledRun) -> None:
        EverySecond.seen.append(run)


async def test_seconds_cron_runs_each_second_once_and_receives_its_run() -> None:
    EverySecond.seen = []
    async with TestScheduler(app_of(EverySecond), start=T0) as t:
        await t.advance(timedelta(seconds=10))
    slots = [r.scheduled_at for r in EverySecond.seen]
    assert slots == [T0.replace(microsecond=0) + timedelta(seconds=s) for s in range(1, 11)]
    assert [r.attempt for r in EverySecond.seen] == [1] * 10


@pytest.mark.parametrize(
    ("policy", "window", "expected_minutes"),
    [
        ("none", None, []),
        ("latest", None, [30]),
        ("all", None, [5, 10, 15, 20, 25, 30]),
        ("all", 12 * 60, [20, 25, 30]),
    ],
)
async def test_catch_up_after_downtime(
    policy: str, window: float | None, expected_minutes: list[int]
) -> None:
    class Downtime:
        @ScheduledAction("*/5 * * * *", catch_up=policy, catch_up_window=window)  # type: ignore[arg-type]
        async def tick(self) -> None:
            return None

    app = app_of(Downtime)
    store = "downtime"
    async with TestScheduler(app, start=datetime(2031, 1, 1, 9, 58, tzinfo=UTC), store=store) as t:
        await t.advance(timedelta(minutes=2))  # fires 10:00, then the process "dies"
    assert [r.scheduled_at.minute for r in t.runs] == [0]
    restart = datetime(2031, 1, 1, 10, 32, tzinfo=UTC)
    async with TestScheduler(app, start=restart, store=store) as t2:
        # Missed fires of a non-overlapping action run one after another, a second apart.
        await t2.advance(timedelta(seconds=30))
    assert sorted(r.scheduled_at.minute for r in t2.runs) == expected_minutes


async def test_catch_up_all_is_capped_at_100() -> None:
    class Busy:
        @ScheduledAction("* * * * *", catch_up="all", allow_overlap=True)
        async def tick(self) -> None:
            return None

    app = app_of(Busy)
    async with TestScheduler(
        app, start=datetime(2031, 1, 1, 0, 0, 30, tzinfo=UTC), store="cap"
    ) as t:
        await t.advance(timedelta(minutes=1))
    async with TestScheduler(
        app, start=datetime(2031, 1, 2, 0, 0, 30, tzinfo=UTC), store="cap"
    ) as t2:
        await t2.advance(timedelta(seconds=25))
    assert len(t.runs) == 1
    assert len(t2.runs) == 100
    assert t2.runs[-1].scheduled_at == datetime(2031, 1, 2, 0, 0, tzinfo=UTC)


class Slow:
    release = asyncio.Event()
    started: list[datetime] = []

    @ScheduledAction("* * * * *", allow_overlap=False)
    async def slow(self, run: ScheduledRun) -> None:
        Slow.started.append(run.scheduled_at)
        await Slow.release.wait()


async def test_allow_overlap_false_skips_fires_while_the_previous_run_is_alive() -> None:
    Slow.release = asyncio.Event()
    Slow.started = []
    async with TestScheduler(app_of(Slow), start=T0) as t:
        await t.advance(timedelta(minutes=3))  # 10:01 starts and blocks; 10:02, 10:03 skipped
        assert len(Slow.started) == 1
        assert t.scheduler.worker.stats.skipped_overlap == 2
        Slow.release.set()
        await t.advance(timedelta(minutes=1))
    assert [s.minute for s in Slow.started] == [1, 4]


class Overlapping:
    release = asyncio.Event()
    started = 0

    @ScheduledAction("* * * * *", allow_overlap=True)
    async def slow(self) -> None:
        Overlapping.started += 1
        await Overlapping.release.wait()


async def test_allow_overlap_true_starts_every_fire() -> None:
    Overlapping.release = asyncio.Event()
    Overlapping.started = 0
    async with TestScheduler(app_of(Overlapping), start=T0) as t:
        await t.advance(timedelta(minutes=3))
        assert Overlapping.started == 3
        Overlapping.release.set()
        await t.advance(timedelta(seconds=1))
    assert t.scheduler.worker.stats.skipped_overlap == 0


errors: list[tuple[BaseException, ScheduledRun | None]] = []


def record_error(exc: BaseException, run: ScheduledRun) -> None:
    errors.append((exc, run))


async def record_error_async(exc: BaseException) -> None:
    errors.append((exc, None))


class Failing:
    calls = 0

    @ScheduledAction("* * * * *", exception_handler=record_error)
    async def boom(self) -> None:
        Failing.calls += 1
        raise RuntimeError(f"boom {Failing.calls}")

    @ScheduledAction("* * * * *", timeout=0.01, exception_handler=record_error_async)
    async def hangs(self) -> None:
        await asyncio.Event().wait()


async def test_errors_and_timeouts_reach_the_exception_handler_and_the_worker_goes_on() -> None:
    errors.clear()
    Failing.calls = 0
    async with TestScheduler(app_of(Failing), start=T0) as t:
        for _ in range(2):
            # Timeouts run on the event loop's real clock: let each run time out before the
            # next fire, or that fire would find it still running.
            await t.advance(timedelta(minutes=1))
            await t.scheduler.worker.idle()
    boom = [(e, r) for e, r in errors if isinstance(e, RuntimeError)]
    timeouts = [e for e, _ in errors if isinstance(e, TimeoutError)]
    assert [str(e) for e, _ in boom] == ["boom 1", "boom 2"]
    assert all(isinstance(r, ScheduledRun) and r.action_id.endswith("boom") for _, r in boom)
    assert len(timeouts) == 2
    assert t.scheduler.worker.stats.runs_failed == 4


class Timed:
    cancelled = 0

    @ScheduledAction("* * * * *", timeout=0.01, allow_overlap=False)
    async def hangs(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            Timed.cancelled += 1
            raise


async def test_a_timed_out_run_is_cancelled_and_releases_its_overlap_lease() -> None:
    Timed.cancelled = 0
    async with TestScheduler(app_of(Timed), start=T0) as t:
        await t.advance(timedelta(minutes=1))
        await t.scheduler.worker.idle()
        await t.advance(timedelta(minutes=1))
        await t.scheduler.worker.idle()
    assert Timed.cancelled == 2  # the second fire was not skipped: the lease was released
    assert t.scheduler.worker.stats.skipped_overlap == 0


class Named:
    @ScheduledAction("* * * * *", name="report", group="reports")
    async def report(self) -> None:
        return None

    @ScheduledAction("* * * * *", group="maintenance")
    async def vacuum(self) -> None:
        return None


async def test_actions_filter_runs_only_the_named_actions() -> None:
    async with TestScheduler(app_of(Named), start=T0, actions=["report"]) as t:
        await t.advance(timedelta(minutes=2))
    assert [r.action_id for r in t.runs] == ["report", "report"]


class Jittered:
    @ScheduledAction("* * * * *", jitter=20)
    async def tick(self) -> None:
        return None


async def test_jitter_delays_each_fire_by_its_own_offset_and_keeps_its_identity() -> None:
    started: list[tuple[ScheduledRun, datetime]] = []
    async with TestScheduler(app_of(Jittered), start=T0) as t:
        t.scheduler.worker.run_listeners.append(lambda run: started.append((run, t.clock.now())))
        first = datetime(2031, 3, 4, 10, 1, tzinfo=UTC)
        offset = jitter_offset(
            f"{__name__}.Jittered.tick@{epoch_ms(first)}", 20, first, first + MINUTE
        )
        assert offset > 0
        await t.advance_to(first + timedelta(seconds=offset) - timedelta(milliseconds=1))
        assert started == []  # the slot has passed, its offset has not
        await t.advance_to(first + timedelta(seconds=offset))
        assert [r.scheduled_at for r, _ in started] == [first]
        await t.advance_to(first + timedelta(minutes=10))
    slots = [first + timedelta(minutes=m) for m in range(10)]
    # One run per slot, identified by its slot (not by the delayed instant it started at).
    assert [r.scheduled_at for r, _ in started] == slots
    assert all(r.fire_id == f"{r.action_id}@{epoch_ms(r.scheduled_at)}" for r, _ in started)
    offsets = [(at - r.scheduled_at).total_seconds() for r, at in started]
    expected = [
        jitter_offset(r.fire_id, 20, r.scheduled_at, r.scheduled_at + MINUTE) for r, _ in started
    ]
    # Each fire starts at its deterministic offset (the fake clock stops on microseconds).
    assert offsets == pytest.approx(expected, abs=1e-5)
    assert all(0 < o < 20 for o in offsets)
    assert len({round(o, 3) for o in offsets}) == len(offsets)  # not one constant delay


async def test_the_clock_never_moves_without_advance() -> None:
    async with TestScheduler(app_of(Every5Minutes), start=T0) as t:
        assert t.clock.now() == T0
        await t.advance(timedelta(minutes=4))
        assert t.runs == []
        assert t.clock.now() == T0 + timedelta(minutes=4)
