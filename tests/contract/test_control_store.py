"""Contract of the control protocols (RunHistory, Pauses, Processes, DelayedAdmin) and of the
run history written through the run leases and the fire claims: memory and Redis alike."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jararaca.backends.base import Backend, ClaimResult, RunStatus
from jararaca.backends.records import ProcessRecord, RunRecord
from jararaca.clock import epoch_ms
from tests.contract.conftest import LEASE, T0, BackendFactory, claim, env


def running(action: str, at_seconds: int, worker: str = "w") -> RunRecord:
    at = T0 + timedelta(seconds=at_seconds)
    fire = f"{action}@{epoch_ms(at)}"
    return RunRecord(fire, action, at, "running", started_at=at, worker=worker)


async def test_a_run_is_recorded_running_then_with_its_end(backend: Backend) -> None:
    rec = running("a", 0)
    start = await backend.begin_run(
        rec.fire_id, overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE, record=rec
    )
    assert start.status is RunStatus.STARTED
    [seen] = await backend.run_history("a", limit=10)
    assert (seen.outcome, seen.attempt, seen.worker, seen.started_at) == ("running", 1, "w", T0)
    error = ValueError("ação ✓\nx")
    failed = rec.ended("failed", finished_at=T0 + timedelta(seconds=2), error=error)
    await backend.finish_run(rec.fire_id, overlap_key="a", owner="w", now=T0, record=failed)
    [seen] = await backend.run_history("a", limit=10)
    assert seen == failed
    assert seen.error == "ValueError: ação ✓ x"  # one line


async def test_a_skipped_overlap_is_recorded(backend: Backend) -> None:
    first, second = running("a", 0), running("a", 1, worker="v")
    await backend.begin_run(
        first.fire_id, overlap_key="a", owner="w", now=T0, lease_until=T0 + LEASE, record=first
    )
    start = await backend.begin_run(
        second.fire_id, overlap_key="a", owner="v", now=T0, lease_until=T0 + LEASE, record=second
    )
    assert start.status is RunStatus.OVERLAP
    latest, earliest = await backend.run_history("a", limit=10)
    assert (latest.fire_id, latest.outcome, latest.finished_at) == (
        second.fire_id,
        "skipped_overlap",
        T0,
    )
    assert (earliest.fire_id, earliest.outcome) == (first.fire_id, "running")


async def test_a_taken_over_run_records_attempt_two_and_a_release_records_cancelled(
    backend: Backend,
) -> None:
    rec = running("a", 0)
    await backend.begin_run(
        rec.fire_id, overlap_key=None, owner="w", now=T0, lease_until=T0 + LEASE, record=rec
    )
    await backend.release_run(
        rec.fire_id,
        overlap_key=None,
        owner="w",
        now=T0,
        record=rec.ended("cancelled", finished_at=T0),
    )
    [seen] = await backend.run_history("a", limit=10)
    assert seen.outcome == "cancelled"
    again = running("a", 0, worker="v")
    start = await backend.begin_run(
        rec.fire_id, overlap_key=None, owner="v", now=T0, lease_until=T0 + LEASE, record=again
    )
    assert start.attempt == 2
    [seen] = await backend.run_history("a", limit=10)
    assert (seen.outcome, seen.attempt, seen.worker) == ("running", 2, "v")


async def test_history_is_bounded_keeping_the_latest(
    make_backend: BackendFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JARARACA_RUN_HISTORY", "5")
    backend = make_backend("bounded")
    await backend.connect()
    records = [running("a", i).ended("succeeded", finished_at=T0) for i in range(12)]
    for record in records:
        await backend.record_runs([record])
    kept = await backend.run_history("a", limit=100)
    assert [r.fire_id for r in kept] == [r.fire_id for r in reversed(records[-5:])]
    assert await backend.run_history("a", limit=2) == kept[:2]
    assert await backend.run_history("b", limit=10) == []


async def test_a_paused_action_records_its_slots_skipped_and_never_replays_them(
    backend: Backend,
) -> None:
    await backend.pause("a", "maintenance")
    assert await backend.paused() == {"a": "maintenance"}
    c = claim("a", T0)
    other = claim("b", T0)
    answers = await backend.claim_fires([c, other], now=T0, lease_until=T0 + LEASE)
    assert answers == [ClaimResult.PAUSED, ClaimResult.CLAIMED]
    # The paused slot counts as dispatched: catch-up starts after it, nothing is in flight.
    assert await backend.get_last_fires(["a"]) == {"a": T0}
    assert [
        e.inflight_id
        for e in await backend.reclaim_inflight(
            now=T0 + 2 * LEASE, lease_until=T0 + 3 * LEASE, limit=10
        )
    ] == [other.fire_id]
    [seen] = await backend.run_history("a", limit=10)
    assert (seen.fire_id, seen.outcome, seen.finished_at) == (c.fire_id, "skipped_paused", T0)
    assert await backend.resume("a") is True
    assert await backend.resume("a") is False
    assert await backend.paused() == {}
    later = claim("a", T0 + timedelta(seconds=1))
    assert await backend.claim_fires([later], now=T0, lease_until=T0 + LEASE) == [
        ClaimResult.CLAIMED
    ]


async def test_heartbeats_list_processes_until_they_expire_or_are_forgotten(
    backend: Backend,
) -> None:
    beat = ProcessRecord("beat-1", "beat", "h", 10, "1.0", T0, T0, ("a", "b"))
    worker = ProcessRecord("worker-1", "worker", "h", 11, "1.0", T0, T0, ())
    await backend.heartbeat(beat, keep=timedelta(hours=1))
    await backend.heartbeat(worker, keep=timedelta(hours=1))
    assert await backend.processes() == [beat, worker]
    seen = beat.seen(T0 + timedelta(seconds=10))
    await backend.heartbeat(seen, keep=timedelta(hours=1))
    assert await backend.processes() == [seen, worker]
    await backend.forget_process("worker-1")
    assert await backend.processes() == [seen]


async def test_listing_and_cancelling_delayed_messages(backend: Backend) -> None:
    await backend.enqueue_delayed(env("m1"), T0 + timedelta(seconds=5), task_id="key:k1")
    await backend.enqueue_delayed(env("m2"), T0 + timedelta(seconds=1), task_id="m2")
    await backend.enqueue_delayed(env("m3"), T0 + timedelta(seconds=9), task_id="m3")
    listed = await backend.list_delayed(limit=10)
    assert [(e.task_id, e.envelope.message_id) for e in listed] == [
        ("m2", "m2"),
        ("key:k1", "m1"),
        ("m3", "m3"),
    ]
    assert listed[0].due_at == T0 + timedelta(seconds=1)
    assert [e.task_id for e in await backend.list_delayed(limit=1)] == ["m2"]
    assert await backend.cancel_delayed(task_id="key:k1") is True
    assert await backend.cancel_delayed(task_id="key:k1") is False
    assert await backend.cancel_delayed(message_id="m3") is True
    assert await backend.cancel_delayed(message_id="nope") is False
    assert await backend.pending_count() == 1
    claimed = await backend.claim_due(
        now=T0 + timedelta(minutes=1), lease_until=T0 + LEASE, limit=10
    )
    assert [c.envelope.message_id for c in claimed] == ["m2"]


async def test_queued_fires_skip_what_is_known(backend: Backend) -> None:
    ran, claimed, fresh, in_history = (claim("a", T0 + timedelta(seconds=i)) for i in range(4))
    rec = running("a", 0)
    assert rec.fire_id == ran.fire_id
    await backend.begin_run(
        ran.fire_id, overlap_key=None, owner="w", now=T0, lease_until=T0 + LEASE
    )
    await backend.finish_run(ran.fire_id, overlap_key=None, owner="w", now=T0)
    await backend.claim_fires([claimed], now=T0, lease_until=T0 + LEASE)
    await backend.record_runs(
        [RunRecord(in_history.fire_id, "a", in_history.scheduled_at, "skipped_paused")]
    )
    queued = await backend.enqueue_fires([ran, claimed, fresh, in_history], due=T0)
    assert queued == [fresh.fire_id]
    assert await backend.enqueue_fires([fresh], due=T0) == []  # already pending
    [due] = await backend.claim_due(now=T0, lease_until=T0 + LEASE, limit=10)
    assert (due.inflight_id.split("/")[0], due.envelope) == (fresh.fire_id, fresh.envelope)
