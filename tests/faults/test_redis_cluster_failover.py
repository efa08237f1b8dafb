"""A Redis Cluster master failover under load: a private cluster of 3 masters, each with one
replica (``cluster-node-timeout`` 1 s), and real ``jararaca beat`` + 2 ``jararaca worker``
processes on ``redis+cluster://...?shards=8`` (broker: the shared RabbitMQ). While a seconds
cron (``catch_up="all"``) runs and a burst of 500 delayed messages is being delivered, the
master holding shard 0 (the namespace's fires, leases, run records and the first shard of the
delayed queue) is killed with ``kill -9``. Its replica is promoted; the processes stay up,
follow it and resume within 15 s, and the test prints what was lost or doubled.

As with Sentinel (tests/faults/test_sentinel_failover.py), a master replicates asynchronously:
what it acknowledged in its last moments may not have reached its replica, so the bound on
loss is the writes acknowledged just before the kill. No fire runs twice, and a message runs
twice only if its run record was among those last writes (handled within a second of the kill);
slots missed in the outage run late, and once they have, every slot runs exactly once.

The test waits on what the fixture app's handlers print (tests.fixtures.dist_app) and on what
the cluster's nodes say of themselves, never on log text or fixed sleeps.

It found three faults of the Redis backend on a cluster, fixed where they were
(src/jararaca/backends/redis_control.py, redis_batch.py, redis.py): heartbeats sent as a
redis-py cluster *transaction* poisoned the client's pool after a failover, so a worker's
batched calls never returned and it stopped consuming; a beat died of an AttributeError or
RuntimeError that redis-py raises when a failed pipeline closes connections other calls use;
and deleting a namespace (this test's clean-up) failed the same way, its UNLINKs unbounded."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jararaca import connect
from jararaca.backends.redis_keys import QueueKeys, prefix
from tests.faults.delayed_stream import DelayedStream
from tests.faults.redis_cluster import PrivateRedisCluster, missing_binaries
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_service

# Ports of this module's own: the other cluster tests use 7395-7400, the bench 7411-7413.
MASTER_PORTS = (7401, 7402, 7403)
REPLICA_PORTS = (7404, 7405, 7406)
SHARDS = 8
NODE_TIMEOUT_MS = 1000  # production clusters use 5-15 s; short, so the failover takes seconds
BURST = 500
BURST_DUE_SECONDS = 3.0
RESUME_SECONDS = 15  # the promise: dispatch is back this long after the master died
# A write acknowledged this close to the kill may have missed the replica (asynchronous
# replication); nothing acknowledged earlier may be lost.
IN_FLIGHT_SECONDS = 1.0


@pytest.fixture
def private_cluster(tmp_path: Path) -> Iterator[PrivateRedisCluster]:
    for binary in missing_binaries():
        require_service(f"{binary} (to run a private Redis Cluster)", 1)
    require_rabbitmq()
    cluster = PrivateRedisCluster(
        tmp_path,
        MASTER_PORTS,
        SHARDS,
        replica_ports=REPLICA_PORTS,
        node_timeout_ms=NODE_TIMEOUT_MS,
    )
    with cluster.running():
        yield cluster


def _fires(cluster: Cluster) -> Counter[str]:
    return Counter(r[1] for r in cluster.records("RUNALL"))


def _slots(cluster: Cluster) -> Counter[int]:
    return Counter(int(r[1].rsplit("@", 1)[1]) // 1000 for r in cluster.records("RUNALL"))


def _runs(cluster: Cluster) -> list[tuple[int, float]]:
    """(slot, seconds late) of every run of the seconds cron."""
    return [
        (int(r[1].rsplit("@", 1)[1]) // 1000, float(r[3]) / 1000) for r in cluster.records("RUNALL")
    ]


def _delivered(cluster: Cluster) -> Counter[str]:
    return Counter(r[1].split(":")[0] for r in cluster.records("MSG"))


def _first_handled(cluster: Cluster) -> dict[str, float]:
    """Message id -> when its handler first ran (epoch s, from the due instant and lateness)."""
    first: dict[str, float] = {}
    for record in cluster.records("MSG"):
        message_id = record[1].split(":")[0]
        at = datetime.fromisoformat(record[2]).timestamp() + float(record[3]) / 1000
        first[message_id] = min(at, first.get(message_id, at))
    return first


async def _enqueue_burst(cluster: Cluster, due: datetime) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        seconds = (due - datetime.now(UTC)).total_seconds()
        return await pub.delay_many([(Ping(n=i), seconds) for i in range(BURST)])


def test_beat_and_workers_follow_a_cluster_master_failover(
    private_cluster: PrivateRedisCluster,
) -> None:
    cluster = Cluster("cluster-failover", redis_url=private_cluster.url)
    trickle = DelayedStream(cluster, due_in=2.0)
    try:
        beat = cluster.start("beat", "--actions", "tick_all")
        workers = [cluster.start("worker", "--groups", "ticks,pings") for _ in range(2)]
        worker_pids = {str(w.popen.pid) for w in workers}
        # Both workers consume once each has run a tick (RabbitMQ hands them out in turn).
        cluster.wait_until(
            lambda: worker_pids <= {r[4] for r in cluster.records("RUNALL")},
            40,
            "a tick run by each worker",
        )

        # The master to kill: the one serving shard 0, where fires, leases and run records
        # live, so that both dispatch and the start of every run wait for the failover.
        namespace = cluster.exchange
        victim = private_cluster.master_of(prefix(namespace) + "last", ask=MASTER_PORTS[0])
        replica = REPLICA_PORTS[MASTER_PORTS.index(victim)]
        shards_there = [
            k
            for k in range(SHARDS)
            if private_cluster.master_of(QueueKeys.for_shard(namespace, k).delayed, ask=victim)
            == victim
        ]

        trickle.start()
        cluster.wait_until(lambda: len(trickle.acknowledged) >= 30, 20, "enqueues before the kill")
        burst_ids = asyncio.run(
            _enqueue_burst(cluster, datetime.now(UTC) + timedelta(seconds=BURST_DUE_SECONDS))
        )
        assert len(set(burst_ids)) == BURST
        burst_acknowledged = time.time()
        # Kill while the burst is being delivered.
        cluster.wait_until(
            lambda: len(set(burst_ids) & set(_delivered(cluster))) > 0,
            20,
            "the burst's first deliveries",
        )
        delivered_before_kill = len(set(burst_ids) & set(_delivered(cluster)))
        private_cluster.kill(victim)
        killed = time.time()

        private_cluster.wait_until(
            lambda: private_cluster.role(replica) == "master", 20, f"replica {replica} promoted"
        )
        promoted = time.time()

        def first_on_time() -> int | None:
            """The first slot after the promotion that ran on time (under a second late)."""
            return min(
                (s for s, late in _runs(cluster) if s > promoted and late < 1.0), default=None
            )

        cluster.wait_until(
            lambda: first_on_time() is not None,
            max(0.0, killed + RESUME_SECONDS - time.time()),
            "a fire on time after the failover",
        )
        resumed_after = time.time() - killed
        cluster.wait_until(
            lambda: trickle.last_acknowledged > promoted,
            RESUME_SECONDS,
            "an enqueue acknowledged after the failover",
        )
        trickle.stop()

        # Slots missed during the outage run late (catch_up="all"), one after another; until
        # the last of them has started, an on-time fire that finds one still running or
        # waiting is skipped (overlap="skip"). From the slot after the last late start on,
        # every slot must run once: wait for four of them, and one more, past which a copy
        # of the fourth would have run too.
        on_time = first_on_time()
        assert on_time is not None
        witness = on_time + 5
        cluster.wait_until(
            lambda: max(_slots(cluster), default=0) >= witness + 1, 20, f"the run of slot {witness}"
        )
        late_starts = [s + late for s, late in _runs(cluster) if late >= 1.0 and s >= killed - 1]
        settled = int(max(late_starts, default=on_time)) + 1
        sent = set(trickle.acknowledged) | set(burst_ids)
        # Every acknowledged enqueue is due 2-3 s after it: give them that and the dispatch.
        cluster.wait_until(
            lambda: sent <= set(_delivered(cluster)) or time.time() > promoted + 15,
            20,
            "the acknowledged delayed messages",
        )

        delivered = _delivered(cluster)
        acknowledged_at = {**dict.fromkeys(burst_ids, burst_acknowledged), **trickle.acknowledged}
        lost = sorted(sent - set(delivered), key=acknowledged_at.__getitem__)
        lost_of_burst = [m for m in lost if m in set(burst_ids)]
        in_flight = [m for m in lost if abs(acknowledged_at[m] - killed) < IN_FLIGHT_SECONDS]
        doubled_messages = {m: c for m, c in delivered.items() if c > 1}
        first_handled = _first_handled(cluster)
        doubled_near_kill = {
            m for m in doubled_messages if abs(first_handled[m] - killed) < IN_FLIGHT_SECONDS
        }
        fires, slots = _fires(cluster), _slots(cluster)
        doubled_fires = {f: c for f, c in fires.items() if c > 1}
        outage = range(int(killed), on_time)
        ran_late = [s for s in outage if slots[s]]
        skipped = [s for s in range(int(killed), settled) if not slots[s]]
        steady = {s: slots[s] for s in range(settled, witness + 1)}
        print(
            f"\nRedis Cluster failover: master 127.0.0.1:{victim} (shard 0 and shards "
            f"{shards_there} of {SHARDS}) killed; replica {replica} promoted after "
            f"{promoted - killed:.1f} s; a fire on time again after {resumed_after:.1f} s "
            f"(slot {on_time}), every slot once from {settled - killed:.1f} s after the kill; "
            f"{len(outage)} slots due in the outage, {len(ran_late)} of them run late; slots "
            f"never run {skipped} (catch-up still running)\n"
            f"burst of {BURST}: {delivered_before_kill} delivered before the kill, lost "
            f"{len(lost_of_burst)}, doubled {len(set(doubled_messages) & set(burst_ids))}; "
            f"trickle: {len(trickle.acknowledged)} acknowledged, {trickle.refused} refused "
            f"during the outage; lost {len(lost)} in all ({len(in_flight)} of them acknowledged "
            f"within {IN_FLIGHT_SECONDS} s of the kill): {lost}; doubled messages "
            f"{doubled_messages} ({len(doubled_near_kill)} first handled within "
            f"{IN_FLIGHT_SECONDS} s of the kill); doubled fires {doubled_fires}"
        )
        warnings = {
            p.name: [line for line in p.lines if "retrying with backoff" in line]
            for p in (beat, *workers)
        }
        for name, lines in warnings.items():
            print(f"{name}: {len(lines)} outage warning(s) {lines}")

        assert trickle.unexpected == []
        assert all(p.popen.poll() is None for p in (beat, *workers))
        assert resumed_after < RESUME_SECONDS
        assert settled - killed < RESUME_SECONDS
        # Once the catch-up is over every slot runs exactly once, and no fire ran twice.
        assert steady == dict.fromkeys(range(settled, witness + 1), 1)
        assert doubled_fires == {}
        # Only writes acknowledged just before the kill can be lost (asynchronous
        # replication); the burst was acknowledged seconds before it.
        assert lost == in_flight
        assert lost_of_burst == []
        assert len(lost) <= 5
        # A copy can only come from a lost write too: the run record of a message handled
        # just before the kill.
        assert set(doubled_messages) <= doubled_near_kill
        # An outage is logged once per component (the beat's wake-up channel on its own,
        # which may flap once while the cluster settles), not once per attempt.
        assert all(len(lines) <= 3 for lines in warnings.values())
        assert not any("Traceback" in line for p in cluster.processes for line in p.lines)
    finally:
        trickle.stop()
        cluster.close()
