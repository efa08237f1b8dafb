"""The RunLeases contract (run records and overlap marks), against the memory backend and the
real Redis."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from jararaca.backends.base import Backend, OnOverlap, RunStart, RunStatus
from jararaca.backends.records import RunRecord
from jararaca.clock import epoch_ms
from tests.contract.conftest import LEASE, T0


async def test_a_fire_starts_once_and_then_is_done(backend: Backend) -> None:
    start = await backend.begin_run(
        "a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE
    )
    busy = await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=T0, lease_until=T0 + LEASE
    )
    await backend.finish_run("a@1", overlap_key=None, owner="w1", now=T0)
    done = await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=T0 + LEASE * 2, lease_until=T0 + LEASE * 3
    )
    assert (start.status, start.attempt) == (RunStatus.STARTED, 1)
    assert (busy.status, busy.busy_until) == (RunStatus.BUSY, T0 + LEASE)
    assert done.status is RunStatus.DONE


async def test_a_done_fire_is_forgotten_after_remember_for(backend: Backend) -> None:
    keep = timedelta(minutes=10)
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    await backend.finish_run("a@1", overlap_key=None, owner="w1", now=T0, remember_for=keep)
    within = await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=T0 + keep / 2, lease_until=T0 + keep
    )
    after = T0 + keep + timedelta(seconds=1)
    again = await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=after, lease_until=after + LEASE
    )
    assert within.status is RunStatus.DONE
    assert (again.status, again.attempt) == (RunStatus.STARTED, 1)


async def test_a_dead_workers_fire_is_taken_over_after_its_lease(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.begin_run(
        "a@1", overlap_key="a", owner="w2", now=later, lease_until=later + LEASE
    )
    assert (again.status, again.attempt) == (RunStatus.STARTED, 2)
    assert not await backend.renew_run("a@1", overlap_key="a", owner="w1", lease_until=later)


async def test_a_second_delivery_to_the_same_worker_is_busy_not_started(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    again = await backend.begin_run(
        "a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE
    )
    assert (again.status, again.busy_until) == (RunStatus.BUSY, T0 + LEASE)


async def test_a_slow_old_owner_does_not_end_the_new_owners_run(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    later = T0 + LEASE + timedelta(seconds=1)
    await backend.begin_run(
        "a@1", overlap_key=None, owner="w2", now=later, lease_until=later + LEASE
    )
    await backend.finish_run("a@1", overlap_key=None, owner="w1", now=later)
    assert await backend.renew_run(
        "a@1", overlap_key=None, owner="w2", lease_until=later + 2 * LEASE
    )


async def test_renew_fails_for_a_finished_or_unknown_run(backend: Backend) -> None:
    assert not await backend.renew_run("a@1", overlap_key=None, owner="w1", lease_until=T0)
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    await backend.finish_run("a@1", overlap_key=None, owner="w1", now=T0)
    assert not await backend.renew_run("a@1", overlap_key=None, owner="w1", lease_until=T0 + LEASE)


async def test_overlap_skips_a_second_fire_while_the_first_runs(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t1 = T0 + timedelta(seconds=10)
    second = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t1, lease_until=t1 + LEASE
    )
    redelivered = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t1, lease_until=t1 + LEASE
    )
    assert await backend.is_running("a", now=t1)
    await backend.finish_run("a@1", overlap_key="a", owner="w1", now=t1)
    assert not await backend.is_running("a", now=t1)
    third = await backend.begin_run(
        "a@3", overlap_key="a", owner="w2", now=t1, lease_until=t1 + LEASE
    )
    assert (second.status, second.busy_until) == (RunStatus.OVERLAP, T0 + LEASE)
    assert redelivered.status is RunStatus.DONE
    assert third.status is RunStatus.STARTED


async def test_a_catch_up_fire_blocked_by_overlap_can_try_again(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    waiting = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE, on_overlap="wait"
    )
    await backend.finish_run("a@1", overlap_key="a", owner="w1", now=T0)
    again = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE, on_overlap="wait"
    )
    assert (waiting.status, waiting.busy_until) == (RunStatus.WAITING, T0 + LEASE)
    assert (again.status, again.attempt) == (RunStatus.STARTED, 1)


async def test_renewing_keeps_the_overlap_lease_alive(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    assert await backend.renew_run("a@1", overlap_key="a", owner="w1", lease_until=T0 + 3 * LEASE)
    t = T0 + 2 * LEASE
    assert await backend.is_running("a", now=t)
    blocked = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t, lease_until=t + LEASE
    )
    assert (blocked.status, blocked.busy_until) == (RunStatus.OVERLAP, T0 + 3 * LEASE)


async def test_an_expired_overlap_lease_no_longer_blocks(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t = T0 + 2 * LEASE
    assert not await backend.is_running("a", now=t)
    nxt = await backend.begin_run("a@2", overlap_key="a", owner="w2", now=t, lease_until=t + LEASE)
    assert nxt.status is RunStatus.STARTED


# -- release_run ------------------------------------------------------------------------------


async def test_a_released_run_is_taken_over_at_once_as_the_next_attempt(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t = T0 + timedelta(seconds=5)  # long before the lease would have ended
    await backend.release_run("a@1", overlap_key="a", owner="w1", now=t)
    assert not await backend.is_running("a", now=t)
    taken = await backend.begin_run(
        "a@1", overlap_key="a", owner="w2", now=t, lease_until=t + LEASE
    )
    assert taken == RunStart(RunStatus.STARTED, attempt=2)
    assert await backend.is_running("a", now=t)
    # The old owner lost it: it can neither renew nor end the new owner's run.
    assert not await backend.renew_run("a@1", overlap_key="a", owner="w1", lease_until=t + LEASE)
    await backend.finish_run("a@1", overlap_key="a", owner="w1", now=t)
    assert await backend.is_running("a", now=t)
    assert await backend.renew_run("a@1", overlap_key="a", owner="w2", lease_until=t + LEASE)


async def test_a_released_run_is_not_recorded_done(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE)
    await backend.release_run("a@1", overlap_key=None, owner="w1", now=T0)
    again = await backend.begin_run(
        "a@1", overlap_key=None, owner="w1", now=T0, lease_until=T0 + LEASE
    )
    assert (again.status, again.attempt) == (RunStatus.STARTED, 2)


async def test_release_frees_the_overlap_key_for_another_fire(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t = T0 + timedelta(seconds=1)
    await backend.release_run("a@1", overlap_key="a", owner="w1", now=t)
    other = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=t, lease_until=t + LEASE
    )
    assert (other.status, other.attempt) == (RunStatus.STARTED, 1)


async def test_release_by_another_owner_changes_nothing(backend: Backend) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w1", now=T0, lease_until=T0 + LEASE)
    t = T0 + timedelta(seconds=5)
    await backend.release_run("a@1", overlap_key="a", owner="w2", now=t)
    assert await backend.is_running("a", now=t)
    busy = await backend.begin_run("a@1", overlap_key="a", owner="w3", now=t, lease_until=t + LEASE)
    blocked = await backend.begin_run(
        "a@2", overlap_key="a", owner="w3", now=t, lease_until=t + LEASE, on_overlap="wait"
    )
    assert (busy.status, busy.busy_until) == (RunStatus.BUSY, T0 + LEASE)
    assert (blocked.status, blocked.busy_until) == (RunStatus.WAITING, T0 + LEASE)
    assert await backend.renew_run("a@1", overlap_key="a", owner="w1", lease_until=t + LEASE)


async def test_releasing_a_finished_or_unknown_run_changes_nothing(backend: Backend) -> None:
    await backend.release_run("never", overlap_key="n", owner="w1", now=T0)
    assert not await backend.is_running("n", now=T0)
    started = await backend.begin_run(
        "never", overlap_key="n", owner="w2", now=T0, lease_until=T0 + LEASE
    )
    assert (started.status, started.attempt) == (RunStatus.STARTED, 1)

    await backend.finish_run("never", overlap_key="n", owner="w2", now=T0)
    await backend.release_run("never", overlap_key="n", owner="w2", now=T0)
    done = await backend.begin_run(
        "never", overlap_key="n", owner="w3", now=T0, lease_until=T0 + LEASE
    )
    assert done.status is RunStatus.DONE


# -- overlap policies (on_overlap) ------------------------------------------------------------
# Fires of action "a" are named by the second of their slot: fire(2) is a@<T0 + 2 s>.


def fire(slot: int) -> RunRecord:
    at = T0 + timedelta(seconds=slot)
    return RunRecord(f"a@{epoch_ms(at)}", "a", at, "running", started_at=at, worker="w")


async def begin(
    backend: Backend,
    slot: int,
    now: datetime,
    on_overlap: OnOverlap,
    owner: str = "w",
    *,
    ahead: bool = False,
) -> RunStart:
    rec = fire(slot)
    return await backend.begin_run(
        rec.fire_id,
        overlap_key="a",
        owner=owner,
        now=now,
        lease_until=now + LEASE,
        on_overlap=on_overlap,
        record=rec,
        ahead=ahead,
    )


async def finish(backend: Backend, slot: int, now: datetime, outcome: str = "succeeded") -> None:
    rec = fire(slot)
    ended = rec.ended("cancelled" if outcome == "cancelled" else "succeeded", finished_at=now)
    await backend.finish_run(rec.fire_id, overlap_key="a", owner="w", now=now, record=ended)


async def outcomes(backend: Backend) -> dict[int, str]:
    """Slot -> outcome of each fire in the history of "a"."""
    history = await backend.run_history("a", limit=100)
    return {round((r.scheduled_at - T0).total_seconds()): r.outcome for r in history}


async def test_skip_records_the_overlapping_fire_as_skipped(backend: Backend) -> None:
    await begin(backend, 1, T0, "skip")
    t = T0 + timedelta(seconds=2)
    skipped = await begin(backend, 2, t, "skip")
    assert (skipped.status, skipped.busy_until) == (RunStatus.OVERLAP, T0 + LEASE)
    assert (await begin(backend, 2, t, "skip")).status is RunStatus.DONE
    assert await outcomes(backend) == {1: "running", 2: "skipped_overlap"}


async def test_a_missed_slot_waiting_to_run_goes_before_new_skip_fires(backend: Backend) -> None:
    """A caught-up slot waits ("wait") while the fire that held the mark runs; once it ended,
    a new fire of a skip action must not take the free mark before the waiting slot, or a
    seconds cron whose fires arrive whenever the mark is free keeps it waiting for ever."""
    await begin(backend, 1, T0, "skip")
    t = T0 + timedelta(seconds=3)
    assert (await begin(backend, 2, t, "wait")).status is RunStatus.WAITING  # caught up
    await finish(backend, 1, t)
    newer = await begin(backend, 3, t, "skip")
    assert (newer.status, newer.busy_until) == (RunStatus.OVERLAP, t + LEASE)
    assert (await begin(backend, 2, t, "wait")) == RunStart(RunStatus.STARTED, 1)
    t2 = t + timedelta(seconds=1)
    await finish(backend, 2, t2)
    assert (await begin(backend, 4, t2, "skip")) == RunStart(RunStatus.STARTED, 1)
    assert await outcomes(backend) == {
        1: "succeeded",
        2: "succeeded",
        3: "skipped_overlap",
        4: "running",
    }


async def test_wait_records_nothing_and_starts_waiting_fires_in_order(backend: Backend) -> None:
    """buffer_all (and catch-up): every overlapping fire waits; the earliest goes first."""
    await begin(backend, 1, T0, "wait")
    t = T0 + timedelta(seconds=3)
    # Fire 3 asks first, then fire 2: fire 2 comes first all the same (its slot is earlier).
    assert (await begin(backend, 3, t, "wait")).status is RunStatus.WAITING
    assert (await begin(backend, 2, t, "wait")).status is RunStatus.WAITING
    assert await outcomes(backend) == {1: "running"}  # a waiting fire records nothing
    await finish(backend, 1, t)
    after_3 = await begin(backend, 3, t, "wait")
    assert (after_3.status, after_3.busy_until) == (RunStatus.WAITING, t + LEASE)
    assert (await begin(backend, 2, t, "wait")) == RunStart(RunStatus.STARTED, 1)
    assert (await begin(backend, 3, t, "wait")).status is RunStatus.WAITING  # 2 runs
    t2 = t + timedelta(seconds=5)
    await finish(backend, 2, t2)
    assert (await begin(backend, 3, t2, "wait")) == RunStart(RunStatus.STARTED, 1)
    assert await outcomes(backend) == {1: "succeeded", 2: "succeeded", 3: "running"}


async def test_waiting_fires_keep_their_order_when_runs_are_short(backend: Backend) -> None:
    """Every waiting fire holds its place, not only the earliest: with runs that end before
    the others ask again, they still start in order."""
    await begin(backend, 1, T0, "wait")
    t = T0 + timedelta(seconds=5)
    for slot in (4, 3, 2):
        assert (await begin(backend, slot, t, "wait")).status is RunStatus.WAITING
    await finish(backend, 1, t)
    for slot in (2, 3, 4):
        assert (await begin(backend, 4, t, "wait")).status is (
            RunStatus.STARTED if slot == 4 else RunStatus.WAITING
        )
        if slot != 4:
            assert (await begin(backend, slot, t, "wait")).status is RunStatus.STARTED
        await finish(backend, slot, t)
    assert await outcomes(backend) == dict.fromkeys([1, 2, 3, 4], "succeeded")


async def test_a_waiting_fire_that_stops_asking_no_longer_blocks(backend: Backend) -> None:
    await begin(backend, 1, T0, "wait")
    assert (await begin(backend, 2, T0, "wait")).status is RunStatus.WAITING
    await finish(backend, 1, T0)
    # Fire 2 never asks again (its message was lost): kept until its lease_until only.
    assert (await begin(backend, 3, T0 + LEASE / 2, "wait")).status is RunStatus.WAITING
    later = T0 + LEASE + timedelta(seconds=1)
    assert (await begin(backend, 3, later, "wait")).status is RunStatus.STARTED


async def test_wait_one_buffers_one_fire_and_skips_the_others(backend: Backend) -> None:
    """buffer_one: one fire waits for the running one; more fires meanwhile are skipped."""
    await begin(backend, 1, T0, "wait_one")
    t = T0 + timedelta(seconds=2)
    buffered = await begin(backend, 2, t, "wait_one")
    assert (buffered.status, buffered.busy_until) == (RunStatus.WAITING, T0 + LEASE)
    t3 = T0 + timedelta(seconds=3)
    third = await begin(backend, 3, t3, "wait_one")
    assert third.status is RunStatus.OVERLAP
    assert (await begin(backend, 3, t3, "wait_one")).status is RunStatus.DONE  # redelivered
    assert (await begin(backend, 2, t3, "wait_one")).status is RunStatus.WAITING  # asks again
    t4 = T0 + timedelta(seconds=4)
    await finish(backend, 1, t4)
    assert not await backend.is_running("a", now=t4)
    # The buffered fire keeps its place after the run ended: a newer fire is still skipped.
    assert (await begin(backend, 4, t4, "wait_one")).status is RunStatus.OVERLAP
    assert (await begin(backend, 2, t4, "wait_one")) == RunStart(RunStatus.STARTED, 1)
    # Its start emptied the buffer: the next overlapping fire waits again.
    t5 = T0 + timedelta(seconds=5)
    assert (await begin(backend, 5, t5, "wait_one")).status is RunStatus.WAITING
    assert await outcomes(backend) == {
        1: "succeeded",
        2: "running",
        3: "skipped_overlap",
        4: "skipped_overlap",
    }


async def test_cancel_other_asks_the_running_fire_to_stop_then_starts(backend: Backend) -> None:
    await begin(backend, 1, T0, "cancel_other")
    assert not await backend.cancel_requested(fire(1).fire_id, overlap_key="a")
    t = T0 + timedelta(seconds=2)
    waiting = await begin(backend, 2, t, "cancel_other")
    assert (waiting.status, waiting.busy_until) == (RunStatus.WAITING, T0 + LEASE)
    assert await backend.cancel_requested(fire(1).fire_id, overlap_key="a")
    assert not await backend.cancel_requested(fire(2).fire_id, overlap_key="a")
    # The asked run keeps its lease until it ended; meanwhile the new fire waits.
    assert await backend.renew_run(
        fire(1).fire_id, overlap_key="a", owner="w", lease_until=t + LEASE
    )
    assert (await begin(backend, 2, t, "cancel_other")).status is RunStatus.WAITING
    await finish(backend, 1, t, "cancelled")
    assert not await backend.cancel_requested(fire(1).fire_id, overlap_key="a")
    assert not await backend.is_running("a", now=t)
    assert (await begin(backend, 2, t, "cancel_other")) == RunStart(RunStatus.STARTED, 1)
    # The request was for the previous run: the new one is not asked to stop.
    assert not await backend.cancel_requested(fire(2).fire_id, overlap_key="a")
    assert await outcomes(backend) == {1: "cancelled", 2: "running"}


async def test_cancel_other_the_latest_fire_wins(backend: Backend) -> None:
    await begin(backend, 1, T0, "cancel_other")
    t = T0 + timedelta(seconds=3)
    assert (await begin(backend, 2, t, "cancel_other")).status is RunStatus.WAITING
    assert (await begin(backend, 3, t, "cancel_other")).status is RunStatus.WAITING
    # Fire 2, superseded by fire 3 while both waited, is skipped when it asks again.
    assert (await begin(backend, 2, t, "cancel_other")).status is RunStatus.OVERLAP
    await finish(backend, 1, t, "cancelled")
    assert (await begin(backend, 3, t, "cancel_other")).status is RunStatus.STARTED
    # An older fire arriving late never cancels a newer run.
    late = await begin(backend, 0, t, "cancel_other")
    assert late.status is RunStatus.OVERLAP
    assert not await backend.cancel_requested(fire(3).fire_id, overlap_key="a")
    assert await outcomes(backend) == {
        0: "skipped_overlap",
        1: "cancelled",
        2: "skipped_overlap",
        3: "running",
    }


async def test_a_taken_over_run_resumes_its_place_whatever_waits(backend: Backend) -> None:
    """A fire whose worker died is started again (attempt 2) though a buffered fire waits."""
    await begin(backend, 1, T0, "wait_one", owner="w1")
    assert (await begin(backend, 2, T0 + LEASE / 2, "wait_one")).status is RunStatus.WAITING
    later = T0 + LEASE + timedelta(seconds=1)
    again = await begin(backend, 1, later, "wait_one", owner="w2")
    assert (again.status, again.attempt) == (RunStatus.STARTED, 2)
    assert (await begin(backend, 2, later, "wait_one")).status is RunStatus.WAITING


async def test_a_cancel_request_follows_a_taken_over_run(backend: Backend) -> None:
    """A run asked to stop whose worker died is still asked to stop by its next owner."""
    await begin(backend, 1, T0, "cancel_other", owner="w1")
    t = T0 + timedelta(seconds=2)
    assert (await begin(backend, 2, t, "cancel_other")).status is RunStatus.WAITING
    # w1 dies; nobody asks for fire 2 until fire 1's lease ran out (w1 was never told).
    later = T0 + LEASE + timedelta(seconds=1)
    again = await backend.begin_run(
        fire(1).fire_id,
        overlap_key="a",
        owner="w2",
        now=later,
        lease_until=later + LEASE,
        on_overlap="cancel_other",
    )
    assert (again.status, again.attempt) == (RunStatus.STARTED, 2)
    assert await backend.cancel_requested(fire(1).fire_id, overlap_key="a")


async def test_a_stalled_run_whose_mark_another_fire_took_is_not_renewed(
    backend: Backend,
) -> None:
    await backend.begin_run("a@1", overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE)
    late = T0 + LEASE + timedelta(seconds=1)  # w stalled past its lease
    start = await backend.begin_run(
        "a@2", overlap_key="a", owner="v", now=late, lease_until=late + LEASE
    )
    assert start.status is RunStatus.STARTED
    renewed = await backend.renew_run("a@1", overlap_key="a", owner="w", lease_until=late + LEASE)
    assert renewed is False
    assert await backend.is_running("a", now=late)  # a@2 still holds the mark


# -- asked ahead of the fire's instant (ahead=True) ------------------------------------------
POLICIES: tuple[OnOverlap, ...] = ("skip", "wait", "wait_one", "cancel_other")


@pytest.mark.parametrize("on_overlap", POLICIES)
async def test_asked_ahead_a_fire_held_back_is_early_and_changes_nothing(
    backend: Backend, on_overlap: OnOverlap
) -> None:
    """Asked before its instant while the previous run still runs, a fire is told only that
    it is early: it is not skipped, queued, recorded, nor does it ask the holder to stop. The
    previous run ending before the instant, the fire then starts at the instant."""
    await begin(backend, 1, T0, on_overlap)
    t = T0 + timedelta(seconds=2)
    early = await begin(backend, 2, t, on_overlap, ahead=True)
    assert (early.status, early.busy_until) == (RunStatus.EARLY, T0 + LEASE)
    assert not await backend.cancel_requested(fire(1).fire_id, overlap_key="a")
    assert await outcomes(backend) == {1: "running"}
    await finish(backend, 1, t)
    assert (await begin(backend, 2, t, on_overlap)) == RunStart(RunStatus.STARTED, 1)
    assert await outcomes(backend) == {1: "succeeded", 2: "running"}


@pytest.mark.parametrize("on_overlap", POLICIES)
async def test_asked_ahead_then_at_the_instant_the_policy_decides_as_usual(
    backend: Backend, on_overlap: OnOverlap
) -> None:
    """The previous run still running at the instant, the fire's second ask gets what it
    would have got asked only then."""
    await begin(backend, 1, T0, on_overlap)
    t = T0 + timedelta(seconds=2)
    assert (await begin(backend, 2, t, on_overlap, ahead=True)).status is RunStatus.EARLY
    expected = RunStatus.OVERLAP if on_overlap == "skip" else RunStatus.WAITING
    assert (await begin(backend, 2, t, on_overlap)).status is expected
    assert await backend.cancel_requested(fire(1).fire_id, overlap_key="a") == (
        on_overlap == "cancel_other"
    )


async def test_asked_ahead_a_free_fire_starts_and_a_buffered_slot_is_kept(
    backend: Backend,
) -> None:
    """Nothing holding the action, a fire asked ahead starts; with a buffer_one fire waiting,
    a third fire asked ahead is early, not skipped, and leaves the buffered one in place."""
    assert (await begin(backend, 1, T0, "wait_one", ahead=True)) == RunStart(RunStatus.STARTED)
    assert (await begin(backend, 2, T0, "wait_one")).status is RunStatus.WAITING
    assert (await begin(backend, 3, T0, "wait_one", ahead=True)).status is RunStatus.EARLY
    assert (await begin(backend, 3, T0, "wait_one")).status is RunStatus.OVERLAP
    await finish(backend, 1, T0)
    assert (await begin(backend, 2, T0, "wait_one")).status is RunStatus.STARTED
    assert await outcomes(backend) == {1: "succeeded", 2: "running", 3: "skipped_overlap"}


async def test_asked_ahead_a_duplicate_is_still_done(backend: Backend) -> None:
    await begin(backend, 1, T0, "skip")
    await finish(backend, 1, T0)
    again = await begin(backend, 1, T0, "skip", ahead=True)
    assert again.status is RunStatus.DONE
