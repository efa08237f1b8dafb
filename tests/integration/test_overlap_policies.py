"""Overlap policies across two real workers (one beat, Redis and RabbitMQ): each policy holds
for the action as a whole, whichever worker runs a fire and whichever sees the next one.

One cluster runs ``tests.fixtures.dist_app:overlap_app`` (an action per policy, each running
longer than its cron period) for the whole module; each test waits, on the run history kept in
Redis, until its policy has had the chance to show, including across the two workers."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from jararaca.backends.records import RunRecord
from jararaca.backends.redis import RedisBackend
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_redis

APP = "tests.fixtures.dist_app:overlap_app"
LEASE_SECONDS = 3  # renewed (and asked about cancel requests) every second
RUN_SECONDS = 2.5  # each action runs this long (cancel_other: until it is cancelled)
ENV = {"JARARACA_LEASE_SECONDS": str(LEASE_SECONDS), "OVERLAP_SECONDS": str(RUN_SECONDS)}
ACTIONS = [
    "overlap_skip",
    "overlap_allow_all",
    "overlap_buffer_one",
    "overlap_buffer_all",
    "overlap_cancel_other",
]
# Clock readings of two processes of one host, and the worker's own steps around them.
SLACK = timedelta(milliseconds=200)
# A waiting fire asks again every second, then goes through the delayed queue and a beat.
RECHECK = timedelta(seconds=1)


class History:
    """Reads the actions' run history from the cluster's Redis namespace."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.loop = asyncio.new_event_loop()
        self.backend = RedisBackend(cluster.backend_url, namespace=cluster.exchange)
        self.loop.run_until_complete(self.backend.connect())

    def __call__(self, action: str) -> list[RunRecord]:
        """The fires of ``action`` recorded so far (runs and skips), by scheduled instant."""
        records = self.loop.run_until_complete(self.backend.run_history(action, limit=100))
        return sorted(records, key=lambda r: r.scheduled_at)

    def wait(self, condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
        self.cluster.wait_until(condition, timeout, what)

    def close(self) -> None:
        self.loop.run_until_complete(self.backend.close())
        self.loop.close()


@pytest.fixture(scope="module")
def history() -> Iterator[History]:
    require_redis()
    require_rabbitmq()
    cluster = Cluster("overlap-policies")
    reader = None
    try:
        workers = [
            cluster.start("worker", "--groups", "overlap", env=ENV, app=APP) for _ in range(2)
        ]
        beat = cluster.start("beat", "--actions", ",".join(ACTIONS), env=ENV, app=APP)
        for process in [*workers, beat]:
            cluster.wait_ready(process)
        reader = History(cluster)
        yield reader
    finally:
        if reader is not None:
            reader.close()
        cluster.close()
        asyncio.run(_remove_overlap_queues(cluster))


async def _remove_overlap_queues(cluster: Cluster) -> None:
    """``Cluster.close`` removes the queues of ``dist_app.app``; these are ``overlap_app``'s."""
    from jararaca.brokers.rabbitmq import RabbitMQBroker
    from jararaca.registry import action_queues, build_registry
    from tests.fixtures.dist_app import overlap_app

    broker = RabbitMQBroker(cluster.amqp_url, namespace=cluster.exchange, prefetch=1)
    await broker.connect()
    await broker.declare(action_queues(build_registry(overlap_app).actions))
    await broker.delete_topology()
    await broker.close()


def runs_of(records: list[RunRecord]) -> list[RunRecord]:
    """The fires that started (not skipped), by start."""
    started = [r for r in records if r.started_at is not None and r.outcome != "skipped_overlap"]
    return sorted(started, key=lambda r: (r.started_at, r.scheduled_at))


def finished(records: list[RunRecord]) -> list[RunRecord]:
    return [r for r in runs_of(records) if r.finished_at is not None]


def pairs(records: list[RunRecord]) -> list[tuple[RunRecord, RunRecord]]:
    """Consecutive runs (A, B) where A finished."""
    return [(a, b) for a, b in itertools.pairwise(runs_of(records)) if a.finished_at is not None]


def assert_one_at_a_time(records: list[RunRecord]) -> None:
    for a, b in pairs(records):
        assert a.finished_at is not None and b.started_at is not None
        assert b.started_at >= a.finished_at - SLACK, (a, b)


def cross_worker(records: list[RunRecord]) -> bool:
    """Whether some run was followed by one on the other worker."""
    return any(a.worker != b.worker for a, b in pairs(records))


def test_skip_drops_fires_seen_by_either_worker_while_a_run_is_alive(history: History) -> None:
    def shown() -> bool:
        records = history("overlap_skip")
        skipped = [r for r in records if r.outcome == "skipped_overlap"]
        return len(finished(records)) >= 3 and _skipped_by_the_other_worker(records, skipped)

    history.wait(shown, "three skip runs and a skip by the worker not running the live run")
    records = history("overlap_skip")
    assert_one_at_a_time(records)
    skipped = [r for r in records if r.outcome == "skipped_overlap"]
    # Each skip happened while a run of the action was alive (on either worker).
    for skip in skipped:
        assert _live_run_at(records, skip) is not None, skip


def _live_run_at(records: list[RunRecord], skip: RunRecord) -> RunRecord | None:
    assert skip.finished_at is not None  # the instant of the skip
    for run in runs_of(records):
        assert run.started_at is not None
        end = run.finished_at or skip.finished_at
        if run.started_at - SLACK <= skip.finished_at <= end + SLACK:
            return run
    return None


def _skipped_by_the_other_worker(records: list[RunRecord], skipped: list[RunRecord]) -> bool:
    return any(
        (live := _live_run_at(records, skip)) is not None and live.worker != skip.worker
        for skip in skipped
    )


def test_allow_all_runs_fires_side_by_side_on_both_workers(history: History) -> None:
    def overlapping_on_two_workers() -> bool:
        runs = runs_of(history("overlap_allow_all"))
        return any(
            a.worker != b.worker and _overlap(a, b) for a, b in itertools.combinations(runs, 2)
        )

    history.wait(overlapping_on_two_workers, "two allow_all runs at once on the two workers")
    records = history("overlap_allow_all")
    assert all(r.outcome != "skipped_overlap" for r in records)


def _overlap(a: RunRecord, b: RunRecord) -> bool:
    assert a.started_at is not None and b.started_at is not None
    a_end = a.finished_at or b.started_at + timedelta(days=1)
    b_end = b.finished_at or a.started_at + timedelta(days=1)
    return a.started_at < b_end and b.started_at < a_end


def test_buffer_one_starts_one_waiting_fire_after_each_run_and_skips_the_rest(
    history: History,
) -> None:
    def shown() -> bool:
        records = history("overlap_buffer_one")
        return len(finished(records)) >= 4 and cross_worker(records)

    history.wait(shown, "four buffer_one runs, one followed by a run on the other worker")
    records = history("overlap_buffer_one")
    assert_one_at_a_time(records)
    runs = runs_of(records)
    for a, b in pairs(records):
        assert a.finished_at is not None and b.started_at is not None
        # B came while A ran, waited, and started when A ended (at its next look).
        assert b.scheduled_at < a.finished_at, (a, b)
        assert b.started_at - a.finished_at <= RECHECK + SLACK * 4, (a, b)
    # Every other fire in between was skipped: only one waited.
    by_slot = {r.scheduled_at: r.outcome for r in records}
    first, last = runs[0].scheduled_at, runs[-1].scheduled_at
    slots = [first + timedelta(seconds=s) for s in range(int((last - first).total_seconds()))]
    ran = {r.scheduled_at for r in runs}
    assert {by_slot.get(slot) for slot in slots if slot not in ran} == {"skipped_overlap"}


def test_buffer_all_runs_every_fire_one_after_another_in_order(history: History) -> None:
    def shown() -> bool:
        records = history("overlap_buffer_all")
        return len(finished(records)) >= 4 and cross_worker(records)

    history.wait(shown, "four buffer_all runs, one followed by a run on the other worker")
    records = history("overlap_buffer_all")
    assert all(r.outcome != "skipped_overlap" for r in records)
    assert_one_at_a_time(records)
    runs = runs_of(records)
    # Started in the order of their slots, and no slot (every 2 s) left out.
    assert [r.scheduled_at for r in runs] == sorted(r.scheduled_at for r in runs)
    gaps = {(b.scheduled_at - a.scheduled_at).total_seconds() for a, b in itertools.pairwise(runs)}
    assert gaps == {2.0}
    # A 2.5 s run every 2 s: each fire came while the one before it ran, and waited for it.
    for a, b in pairs(records):
        assert a.finished_at is not None and b.started_at is not None
        assert b.scheduled_at < a.finished_at <= b.started_at + SLACK, (a, b)


def test_cancel_other_cancels_the_running_fire_on_either_worker(history: History) -> None:
    lease = timedelta(seconds=LEASE_SECONDS)

    def shown() -> bool:
        records = history("overlap_cancel_other")
        cancelled = [r for r in records if r.outcome == "cancelled"]
        return len(cancelled) >= 3 and cross_worker(records)

    history.wait(shown, "three cancelled runs, one cancelled by a fire on the other worker")
    records = history("overlap_cancel_other")
    assert all(r.outcome != "skipped_overlap" for r in records)
    assert_one_at_a_time(records)
    for a, b in pairs(records):
        assert a.finished_at is not None and b.started_at is not None
        # A was cancelled because B came: noticed at A's next renewal (a third of the lease),
        # and B started once A had ended.
        assert (a.outcome, (a.error or "").split(":")[0]) == ("cancelled", "CancelledError")
        assert b.scheduled_at <= a.finished_at <= b.scheduled_at + lease / 3 + SLACK * 3, (a, b)
        assert b.started_at - a.finished_at <= RECHECK + SLACK * 4, (a, b)
    # Each cancelled run's exception handler got the CancelledError (the fixture prints it),
    # and no other error reached a handler.
    cancelled = {r.fire_id for r in records if r.outcome == "cancelled"}

    def handled() -> set[str]:
        return {line[1] for line in history.cluster.records("OVERLAP-ERROR:CancelledError")}

    history.wait(lambda: cancelled <= handled(), "the handler of each cancelled run", timeout=10)
    kinds = {
        line.split()[0]
        for process in history.cluster.processes
        for line in list(process.lines)
        if line.startswith("OVERLAP-ERROR:")
    }
    assert kinds == {"OVERLAP-ERROR:CancelledError"}
