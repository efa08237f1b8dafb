"""The RunLeases contract (run records and overlap marks), against the memory backend and the
real Redis."""

from __future__ import annotations

from datetime import timedelta

from jararaca.backends.base import Backend, RunStart, RunStatus
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
        "a@2", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE, skip_on_overlap=False
    )
    await backend.finish_run("a@1", overlap_key="a", owner="w1", now=T0)
    again = await backend.begin_run(
        "a@2", overlap_key="a", owner="w2", now=T0, lease_until=T0 + LEASE, skip_on_overlap=False
    )
    assert (waiting.status, again.status) == (RunStatus.OVERLAP, RunStatus.STARTED)
    assert again.attempt == 1


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
        "a@2", overlap_key="a", owner="w3", now=t, lease_until=t + LEASE, skip_on_overlap=False
    )
    assert (busy.status, busy.busy_until) == (RunStatus.BUSY, T0 + LEASE)
    assert (blocked.status, blocked.busy_until) == (RunStatus.OVERLAP, T0 + LEASE)
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
