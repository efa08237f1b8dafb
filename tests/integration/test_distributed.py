"""Real beats and workers against the real Redis and RabbitMQ: guarantees 1-7 and 9 across
processes, including with several beats and workers and with processes killed mid-work."""

from __future__ import annotations

import asyncio
import itertools
import re
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from jararaca import connect
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import LEASE_SECONDS, Cluster, Process


def slot_of(fire_id: str) -> int:
    return int(fire_id.rsplit("@", 1)[1]) // 1000


def _last_slot(cluster: Cluster) -> int:
    return max((slot_of(r[1]) for r in cluster.records("RUN")), default=0)


def test_three_beats_two_workers_run_every_slot_exactly_once_even_when_a_beat_is_killed(
    cluster: Cluster,
) -> None:
    beats = [cluster.start("beat", "--actions", "tick") for _ in range(3)]
    workers = [cluster.start("worker", "--groups", "ticks") for _ in range(2)]
    for process in beats + workers:
        cluster.wait_ready(process)
    first = int(time.time()) + 2
    cluster.wait_until(lambda: _last_slot(cluster) >= first + 6, 30, "runs before the kill")
    beats[0].kill()  # whichever beat held the claims, it dies without cleaning up
    last = int(time.time()) + 8
    # A slot of the window run twice would be a claim of the dead beat published again when
    # its lease ran out, a slot missed one nobody took over: both would have happened by the
    # time a slot one lease (and a margin) past the window has run.
    witness = last + LEASE_SECONDS + 2
    cluster.wait_until(lambda: _last_slot(cluster) >= witness, 60, f"the run of slot {witness}")
    runs = Counter(slot_of(r[1]) for r in cluster.records("RUN"))
    window = range(first, last + 1)
    missed = [s for s in window if runs[s] == 0]
    doubled = [s for s in window if runs[s] > 1]
    assert (missed, doubled) == ([], [])
    assert all(count == 1 for count in runs.values())
    # Each run started on its own second (late by at most the lease when its beat died).
    late = [float(r[3]) for r in cluster.records("RUN")]
    assert max(late) < (LEASE_SECONDS + 1) * 1000


async def _enqueue_burst(cluster: Cluster, count: int, due: datetime) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        ids: list[str] = []
        seconds = (due - datetime.now(UTC)).total_seconds()
        for start in range(0, count, 1000):
            batch = [(Ping(n=i), seconds) for i in range(start, min(count, start + 1000))]
            ids += await pub.delay_many(batch)
        return ids


def test_a_burst_of_10000_delayed_messages_survives_a_beat_killed_mid_drain(
    cluster: Cluster,
) -> None:
    workers = [cluster.start("worker", "--groups", "pings") for _ in range(2)]
    beat = cluster.start("beat", "--actions", "tick")
    for process in [*workers, beat]:
        cluster.wait_ready(process)
    due = datetime.now(UTC) + timedelta(seconds=4)
    ids = asyncio.run(_enqueue_burst(cluster, 10_000, due))
    assert len(set(ids)) == 10_000
    cluster.wait_until(lambda: len(cluster.records("MSG")) > 300, 30, "the drain to start")
    beat.kill()
    replacement = cluster.start("beat", "--actions", "tick")
    cluster.wait_ready(replacement)
    cluster.wait_until(lambda: len(cluster.records("MSG")) >= 10_000, 90, "all 10,000 messages")
    # A duplicate would be an entry the dead beat had claimed, published again by the
    # replacement once the claim's lease ran out: wait until nothing is left in flight, then
    # until messages sent after that are handled (they queue behind any such duplicate).
    cluster.wait_until(cluster.delayed_queue_empty, 30, "the delayed queue to empty")
    sentinels = asyncio.run(_publish_sentinels(cluster, 8))
    cluster.wait_until(
        lambda: set(sentinels) <= {r[1].split(":")[0] for r in cluster.records("MSG")},
        30,
        "the sentinel messages",
    )
    delivered = Counter(r[1].split(":")[0] for r in cluster.records("MSG"))
    assert set(delivered) == set(ids) | set(sentinels)
    assert [m for m, c in delivered.items() if c > 1] == []


async def _publish_sentinels(cluster: Cluster, count: int) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return [await pub.publish(Ping(n=-1 - i)) for i in range(count)]


def _instant(record: list[str]) -> float:
    """Wall-clock instant of a START/END record: its scheduled instant plus its lateness."""
    return datetime.fromisoformat(record[2]).timestamp() + float(record[3]) / 1000


def _skipped_on(process: Process, action: str) -> list[int]:
    """Slots of ``action`` that ``process`` skipped because its previous run was alive."""
    found = (re.search(rf"skipped {action}@(\d+):", line) for line in list(process.lines))
    return [int(m.group(1)) // 1000 for m in found if m]


def test_overlap_is_held_across_two_workers(cluster: Cluster) -> None:
    cluster.start("beat", "--actions", "slow")
    workers = [cluster.start("worker", "--groups", "slow") for _ in range(2)]
    for worker in workers:
        cluster.wait_ready(worker)
    # Three runs ended and a fourth started: every slot before that fourth start was handed
    # to a worker at least a second before it, and was either run or skipped by then.
    cluster.wait_until(
        lambda: len(cluster.records("END")) >= 3 and len(cluster.records("START")) >= 4,
        40,
        "three slow runs and the start of a fourth",
    )
    starts = cluster.records("START")
    ends = {r[1]: _instant(r) for r in cluster.records("END")}
    runs = sorted((_instant(r), ends.get(r[1], float("inf"))) for r in starts)
    # A run only starts once the previous one ended, whichever worker runs it.
    assert all(nxt[0] >= prev[1] for prev, nxt in itertools.pairwise(runs)), runs
    # Each fire once: run (on one worker) or skipped (by one worker), never both or neither.
    started = Counter(slot_of(r[1]) for r in starts)
    skipped = Counter(s for w in workers for s in _skipped_on(w, "slow"))
    window = range(min(started), max(started))
    assert {s: started[s] + skipped[s] for s in window} == dict.fromkeys(window, 1)
    assert max(started.values()) == 1
    # A 2.5 s run on a one-second cron: the two fires due while it runs are skipped.
    assert sum(skipped[s] for s in window) >= 2 * (len(starts) - 1)
    # Held across workers: some fire was skipped by the worker NOT running the live run.
    runner = {slot_of(r[1]): r[4] for r in starts}  # slot -> pid of the worker that ran it

    def live_run_pid(slot: int) -> str:
        return runner[max(s for s in runner if s < slot)]

    crossed = [
        (w.name, s)
        for w in workers
        for s in _skipped_on(w, "slow")
        if s in window and live_run_pid(s) != str(w.popen.pid)
    ]
    assert crossed, (runner, {w.name: _skipped_on(w, "slow") for w in workers})


def test_timeout_cancels_and_calls_the_exception_handler(cluster: Cluster) -> None:
    cluster.start("beat", "--actions", "hang")
    worker = cluster.start("worker", "--groups", "hang")
    cluster.wait_ready(worker)
    cluster.wait_until(lambda: len(cluster.records("ERROR:TimeoutError")) >= 3, 30, "timeouts")
    starts = {r[1] for r in cluster.records("START")}
    errors = {r[1] for r in cluster.records("ERROR:TimeoutError")}
    assert errors <= starts
    # The lease was released each time: consecutive seconds all started (no overlap skips).
    assert not any("skipped" in line for line in worker.lines)
