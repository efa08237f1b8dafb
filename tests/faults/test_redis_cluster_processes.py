"""Real ``jararaca beat`` and ``jararaca worker`` processes on a private 3-master Redis Cluster
with ``?shards=8`` (tests.faults.redis_cluster; broker: the shared RabbitMQ): one beat and two
workers run every slot of a seconds cron exactly once and deliver a burst of 2,000 delayed
messages exactly once, judged from what the app's handlers print, while the namespace's keys
are spread over more than one master."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from jararaca import connect
from tests.faults.redis_cluster import PrivateRedisCluster, missing_binaries
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_service

# Ports of this module's own: tests/faults/test_redis_cluster.py runs its cluster on 7395-7397.
PORTS = (7398, 7399, 7400)
SHARDS = 8
MESSAGES = 2_000
WINDOW_SECONDS = 8


@pytest.fixture
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedisCluster]:
    for binary in missing_binaries():
        require_service(f"{binary} (to run a private Redis Cluster)", 1)
    require_rabbitmq()
    cluster = PrivateRedisCluster(tmp_path_factory.mktemp("cluster-processes"), PORTS, SHARDS)
    with cluster.running():
        yield cluster


def _slots(cluster: Cluster) -> Counter[int]:
    return Counter(int(r[1].rsplit("@", 1)[1]) // 1000 for r in cluster.records("RUNALL"))


def _delivered(cluster: Cluster) -> Counter[str]:
    return Counter(r[1].split(":")[0] for r in cluster.records("MSG"))


async def _enqueue(cluster: Cluster, due: datetime) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        seconds = (due - datetime.now(UTC)).total_seconds()
        return await pub.delay_many([(Ping(n=i), seconds) for i in range(MESSAGES)])


async def _publish_markers(cluster: Cluster, count: int) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return [await pub.publish(Ping(n=-1 - i)) for i in range(count)]


def test_one_beat_and_two_workers_run_everything_once_on_a_sharded_cluster(
    private_cluster: PrivateRedisCluster,
) -> None:
    cluster = Cluster("redis-cluster", redis_url=private_cluster.url)
    try:
        beat = cluster.start("beat", "--actions", "tick_all")
        workers = [cluster.start("worker", "--groups", "ticks,pings") for _ in range(2)]
        for process in [beat, *workers]:
            cluster.wait_ready(process)
        first = int(time.time()) + 2
        ids = asyncio.run(_enqueue(cluster, datetime.now(UTC) + timedelta(seconds=4)))
        assert len(set(ids)) == MESSAGES
        # While the burst is pending every shard holds some of it: the keys as they are now.
        keys = private_cluster.keys_per_master()
        print(f"\nkeys of namespace {cluster.exchange} per master (shards={SHARDS}):")
        for port, names in keys.items():
            print(f"  127.0.0.1:{port}: {len(names)} keys {names}")
        assert all(cluster.exchange in name for names in keys.values() for name in names)
        assert sum(1 for names in keys.values() if names) >= 2

        last = first + WINDOW_SECONDS
        # Nothing is killed here, so a doubled slot would have run by the time a slot two
        # seconds past the window has run.
        witness = last + 2
        cluster.wait_until(
            lambda: max(_slots(cluster), default=0) >= witness, 40, f"the run of slot {witness}"
        )
        runs = _slots(cluster)
        window = range(first, last + 1)
        missed = [s for s in window if runs[s] == 0]
        doubled = {s: c for s, c in runs.items() if c > 1}
        assert (missed, doubled) == ([], {})

        cluster.wait_until(
            lambda: len(_delivered(cluster)) >= MESSAGES,
            40,
            lambda: f"all {MESSAGES} messages ({len(_delivered(cluster))} so far)",
        )
        # A copy would be an entry published again from the in-flight set: once that is empty
        # no copy can appear, and messages published after it queue behind any copy.
        cluster.wait_until(cluster.delayed_queue_empty, 20, "the delayed queue to empty")
        markers = asyncio.run(_publish_markers(cluster, 8))
        cluster.wait_until(
            lambda: set(markers) <= set(_delivered(cluster)), 20, "the marker messages"
        )
        delivered = _delivered(cluster)
        assert set(delivered) == set(ids) | set(markers)
        assert {m: c for m, c in delivered.items() if c > 1} == {}
        assert not any("Traceback" in line for p in cluster.processes for line in p.lines)
    finally:
        cluster.close()
