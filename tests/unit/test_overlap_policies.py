"""Overlap policies (``ScheduledAction(overlap=...)``) on the fake clock: declaration rules and
what each policy does with fires that find the previous run of their action alive."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jararaca import Microservice, ScheduledAction, ScheduledRun
from jararaca.backends.records import RunRecord
from jararaca.declarations.actions import OVERLAP_POLICIES
from jararaca.errors import ConfigError
from jararaca.settings import DEFAULT_LEASE_SECONDS
from jararaca.testing import TestScheduler

T0 = datetime(2031, 3, 4, 10, 0, 0, 500_000, tzinfo=UTC)  # half a second past a slot
LEASE = timedelta(seconds=DEFAULT_LEASE_SECONDS)


def at(minute: int) -> datetime:
    return datetime(2031, 3, 4, 10, minute, tzinfo=UTC)


# -- declaration ------------------------------------------------------------------------------


def spec_of(**options: Any) -> ScheduledAction:
    spec = ScheduledAction("* * * * *", **options)

    async def action(self: object) -> None:
        return None

    spec(action)
    return spec


@pytest.mark.parametrize(
    ("options", "overlap", "allow_overlap"),
    [
        ({}, "skip", False),
        ({"allow_overlap": False}, "skip", False),
        ({"allow_overlap": True}, "allow_all", True),
        ({"overlap": "allow_all"}, "allow_all", True),
        ({"overlap": "allow_all", "allow_overlap": True}, "allow_all", True),
        ({"overlap": "skip", "allow_overlap": False}, "skip", False),
        ({"overlap": "buffer_one"}, "buffer_one", False),
        ({"overlap": "buffer_all", "allow_overlap": False}, "buffer_all", False),
        ({"overlap": "cancel_other"}, "cancel_other", False),
    ],
)
def test_overlap_and_allow_overlap_resolve_to_one_policy(
    options: dict[str, Any], overlap: str, allow_overlap: bool
) -> None:
    spec = spec_of(**options)
    # allow_overlap keeps meaning "no overlap key at all": True for allow_all only.
    assert (spec.overlap, spec.allow_overlap) == (overlap, allow_overlap)


@pytest.mark.parametrize(
    ("allow_overlap", "overlap"),
    [
        (True, "skip"),
        (True, "buffer_one"),
        (True, "buffer_all"),
        (True, "cancel_other"),
        (False, "allow_all"),
    ],
)
def test_contradicting_allow_overlap_and_overlap_raise_naming_both(
    allow_overlap: bool, overlap: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        ScheduledAction("* * * * *", allow_overlap=allow_overlap, overlap=overlap)  # type: ignore[arg-type]
    assert f"allow_overlap={allow_overlap}" in str(raised.value)
    assert f"overlap={overlap!r}" in str(raised.value)


def test_an_unknown_overlap_policy_raises_listing_the_five() -> None:
    with pytest.raises(ConfigError) as raised:
        ScheduledAction("* * * * *", overlap="buffer")  # type: ignore[arg-type]
    message = str(raised.value)
    assert "'buffer'" in message
    assert OVERLAP_POLICIES == ("skip", "allow_all", "buffer_one", "buffer_all", "cancel_other")
    assert all(policy in message for policy in OVERLAP_POLICIES)


# -- runs on the fake clock -------------------------------------------------------------------


class Blocking:
    """A per-minute action of each policy that blocks until ``release`` is set."""

    release = asyncio.Event()
    started: list[tuple[str, datetime]] = []
    ended: list[tuple[str, datetime]] = []
    cancelled_inside: list[datetime] = []
    handled: list[tuple[BaseException, ScheduledRun]] = []

    @classmethod
    def reset(cls) -> None:
        cls.release = asyncio.Event()
        cls.started, cls.ended, cls.cancelled_inside, cls.handled = [], [], [], []

    @staticmethod
    async def body(policy: str, run: ScheduledRun) -> None:
        Blocking.started.append((policy, run.scheduled_at))
        try:
            await Blocking.release.wait()
        except asyncio.CancelledError:
            Blocking.cancelled_inside.append(run.scheduled_at)
            raise
        Blocking.ended.append((policy, run.scheduled_at))


def on_error(exc: BaseException, run: ScheduledRun) -> None:
    Blocking.handled.append((exc, run))


class Policies:
    @ScheduledAction("* * * * *", name="skip", overlap="skip", exception_handler=on_error)
    async def skip(self, run: ScheduledRun) -> None:
        await Blocking.body("skip", run)

    @ScheduledAction("* * * * *", name="allow_all", overlap="allow_all")
    async def allow_all(self, run: ScheduledRun) -> None:
        await Blocking.body("allow_all", run)

    @ScheduledAction("* * * * *", name="buffer_one", overlap="buffer_one")
    async def buffer_one(self, run: ScheduledRun) -> None:
        await Blocking.body("buffer_one", run)

    @ScheduledAction("* * * * *", name="buffer_all", overlap="buffer_all")
    async def buffer_all(self, run: ScheduledRun) -> None:
        await Blocking.body("buffer_all", run)

    @ScheduledAction(
        "* * * * *", name="cancel_other", overlap="cancel_other", exception_handler=on_error
    )
    async def cancel_other(self, run: ScheduledRun) -> None:
        await Blocking.body("cancel_other", run)


APP = Microservice(controllers=[Policies])


def scheduler(policy: str) -> TestScheduler:
    Blocking.reset()
    return TestScheduler(APP, start=T0, actions=[policy])


def started(policy: str) -> list[int]:
    return [when.minute for name, when in Blocking.started if name == policy]


async def step(t: TestScheduler, seconds: int) -> None:
    """Advance second by second. A waiting fire asks again a second later through the delayed
    queue, and ``advance`` only sees an entry enqueued while it settles at its next stop."""
    for _ in range(seconds):
        await t.advance(timedelta(seconds=1))


async def history(t: TestScheduler, action: str) -> dict[int, RunRecord]:
    """Minute of its slot -> run record, for every fire of ``action`` in the run history."""
    records = await t.scheduler.worker.backend.run_history(action, limit=100)
    return {r.scheduled_at.minute: r for r in records}


async def outcomes(t: TestScheduler, action: str) -> dict[int, str]:
    return {minute: r.outcome for minute, r in (await history(t, action)).items()}


async def test_skip_drops_fires_while_the_previous_run_is_alive() -> None:
    async with scheduler("skip") as t:
        await t.advance(timedelta(minutes=3))  # 10:01 runs; 10:02 and 10:03 find it alive
        assert started("skip") == [1]
        Blocking.release.set()
        await t.advance(timedelta(minutes=1))
        assert started("skip") == [1, 4]
        assert await outcomes(t, "skip") == {
            1: "succeeded",
            2: "skipped_overlap",
            3: "skipped_overlap",
            4: "succeeded",
        }
    assert t.scheduler.worker.stats.skipped_overlap == 2


async def test_allow_all_starts_every_fire() -> None:
    async with scheduler("allow_all") as t:
        await t.advance(timedelta(minutes=3))
        assert started("allow_all") == [1, 2, 3]
        assert set((await outcomes(t, "allow_all")).values()) == {"running"}
        Blocking.release.set()
        await t.advance(timedelta(seconds=1))
        assert await outcomes(t, "allow_all") == dict.fromkeys([1, 2, 3], "succeeded")
    assert t.scheduler.worker.stats.skipped_overlap == 0


async def test_buffer_one_keeps_one_fire_waiting_and_skips_the_rest() -> None:
    async with scheduler("buffer_one") as t:
        await t.advance(timedelta(minutes=4, seconds=30))
        # 10:01 runs; 10:02 waits (recorded nowhere yet); 10:03 and 10:04 are skipped.
        assert started("buffer_one") == [1]
        assert await outcomes(t, "buffer_one") == {
            1: "running",
            3: "skipped_overlap",
            4: "skipped_overlap",
        }
        Blocking.release.set()
        await step(t, 2)
        # The buffered fire started once the run ended, with its own slot.
        assert started("buffer_one") == [1, 2]
        buffered = (await history(t, "buffer_one"))[2]
        assert buffered.outcome == "succeeded"
        assert buffered.started_at is not None and buffered.started_at > at(4)
        await t.advance(timedelta(minutes=1))  # the buffer is free again: 10:05 runs
        assert started("buffer_one") == [1, 2, 5]
    assert t.scheduler.worker.stats.skipped_overlap == 2


async def test_buffer_all_runs_every_overlapping_fire_after_the_running_one_in_order() -> None:
    async with scheduler("buffer_all") as t:
        await t.advance(timedelta(minutes=4, seconds=30))
        assert started("buffer_all") == [1]
        assert await outcomes(t, "buffer_all") == {1: "running"}  # waiting fires: no record
        Blocking.release.set()
        await step(t, 5)
        assert started("buffer_all") == [1, 2, 3, 4]
        assert await outcomes(t, "buffer_all") == dict.fromkeys([1, 2, 3, 4], "succeeded")
        runs = sorted((await history(t, "buffer_all")).values(), key=lambda r: r.scheduled_at)
        # One after another: each started once the one before it had finished.
        for before, after in itertools.pairwise(runs):
            assert before.finished_at is not None and after.started_at is not None
            assert after.started_at >= before.finished_at
    assert t.scheduler.worker.stats.skipped_overlap == 0


async def test_cancel_other_cancels_the_running_fire_then_starts_the_new_one() -> None:
    async with scheduler("cancel_other") as t:
        await t.advance(timedelta(minutes=1, seconds=30))
        assert started("cancel_other") == [1]
        await t.advance(timedelta(seconds=30))  # 10:02 asks 10:01 to stop
        # Noticed at the running run's next lease renewal: within a third of the lease.
        await step(t, round((LEASE / 3).total_seconds()) + 2)
        assert Blocking.cancelled_inside == [at(1)]
        assert started("cancel_other") == [1, 2]
        [(error, run)] = Blocking.handled
        assert isinstance(error, asyncio.CancelledError)
        assert (run.scheduled_at, run.fire_id) == (
            at(1),
            f"cancel_other@{int(at(1).timestamp())}000",
        )
        records = await history(t, "cancel_other")
        assert (records[1].outcome, records[2].outcome) == ("cancelled", "running")
        assert records[1].error is not None and records[1].error.startswith("CancelledError")
        assert records[1].finished_at is not None
        assert records[1].finished_at <= at(2) + LEASE / 3 + timedelta(seconds=1)
        assert records[2].started_at is not None and records[2].started_at >= records[1].finished_at
        worker = t.scheduler.worker
        assert (worker.stats.runs_cancelled, worker.stats.runs_failed) == (1, 0)
        assert await worker.backend.is_running("cancel_other", now=t.clock.now())  # 10:02's
        Blocking.release.set()
        await t.advance(timedelta(seconds=1))
        assert (await outcomes(t, "cancel_other"))[2] == "succeeded"


async def test_a_shutdown_is_not_a_cancel_request() -> None:
    """Leaving the harness cancels a running cancel_other run as a shutdown does: its lease is
    released for another worker, the exception handler is not called."""
    async with scheduler("cancel_other") as t:
        await t.advance(timedelta(minutes=1, seconds=30))
        assert started("cancel_other") == [1]
    assert Blocking.cancelled_inside == [at(1)]
    assert Blocking.handled == []
    assert t.scheduler.worker.stats.runs_cancelled == 0
    assert not await t.scheduler.worker.backend.is_running("cancel_other", now=t.clock.now())


async def test_other_policies_are_never_asked_to_stop() -> None:
    """A skip action's run goes on however many fires find it alive."""
    async with scheduler("skip") as t:
        await t.advance(timedelta(minutes=5))
        assert Blocking.cancelled_inside == []
        assert started("skip") == [1]
        Blocking.release.set()
        await t.advance(timedelta(seconds=1))
    assert Blocking.handled == []
    assert Blocking.ended == [("skip", at(1))]


@pytest.mark.parametrize("policy", ["skip", "buffer_one", "buffer_all", "cancel_other"])
async def test_caught_up_fires_wait_for_each_other_whatever_the_policy(policy: str) -> None:
    ran: list[datetime] = []

    class Downtime:
        @ScheduledAction("*/5 * * * *", catch_up="all", overlap=policy)  # type: ignore[arg-type]
        async def tick(self, run: ScheduledRun) -> None:
            ran.append(run.scheduled_at)

    app, store = Microservice(controllers=[Downtime]), f"catch-up-{policy}"
    async with TestScheduler(app, start=datetime(2031, 1, 1, 9, 58, tzinfo=UTC), store=store) as t:
        await t.advance(timedelta(minutes=2))  # 10:00 runs, then the process "dies"
    async with TestScheduler(app, start=datetime(2031, 1, 1, 10, 32, tzinfo=UTC), store=store) as t:
        await step(t, 30)
    # Every missed slot ran, oldest first, none skipped or cancelled.
    assert [r.minute for r in ran] == [0, 5, 10, 15, 20, 25, 30]
    assert t.scheduler.worker.stats.skipped_overlap == 0
    assert t.scheduler.worker.stats.runs_cancelled == 0
