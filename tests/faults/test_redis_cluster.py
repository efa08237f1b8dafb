"""The Redis backend on a private 3-master Redis Cluster with ``?shards=4``: the whole backend
contract suite (tests/contract, its "redis-cluster" kind) runs against it, and the shards
really are spread over the masters.

The cluster (tests.faults.redis_cluster) runs on loopback ports of its own, each node in its own
folder under the test's temporary directory, and is stopped by pid."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from redis.asyncio.cluster import RedisCluster

from jararaca.backends.redis import RedisBackend
from jararaca.clock import SystemClock
from jararaca.wire import Envelope
from tests.faults.redis_cluster import PrivateRedisCluster, missing_binaries
from tests.integration.cluster import ROOT
from tests.services import require_service

PORTS = (7395, 7396, 7397)
SHARDS = 4


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRedisCluster]:
    for binary in missing_binaries():
        require_service(f"{binary} (to run a private Redis Cluster)", 1)
    cluster = PrivateRedisCluster(tmp_path_factory.mktemp("redis-cluster"), PORTS, SHARDS)
    with cluster.running():
        yield cluster


def test_the_backend_contract_holds_on_a_sharded_redis_cluster(
    redis_cluster: PrivateRedisCluster,
) -> None:
    # In a process of its own: the contract suite picks its backend kinds when it is imported.
    pytest_line = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/contract"]
    result = subprocess.run(
        [sys.executable, *pytest_line, "-k", "redis-cluster", "--timeout", "30"],
        check=False,
        cwd=ROOT,
        env={**os.environ, "JARARACA_TEST_REDIS_CLUSTER_URL": redis_cluster.url},
        capture_output=True,
        text=True,
        timeout=240,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    print(f"\ncontract suite on a 3-master cluster, shards={SHARDS}: {summary}")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "skipped" not in summary


def test_the_shards_of_a_namespace_spread_over_the_masters(
    redis_cluster: PrivateRedisCluster,
) -> None:
    async def check() -> set[str]:
        backend = RedisBackend(redis_cluster.url, namespace="spread")
        await backend.connect()
        raw = RedisCluster(host="127.0.0.1", port=PORTS[0])
        try:
            due = SystemClock().now()
            entries = [(Envelope(f"m{i}", "t", b"{}", {}), due) for i in range(64)]
            await backend.enqueue_delayed_many(entries)
            assert await backend.pending_count() == 64
            masters = set()
            for queue in backend.keys.shards:
                assert await raw.zcard(queue.delayed) > 0  # every shard got some of them
                node = raw.get_node_from_key(queue.delayed)
                assert node is not None
                masters.add(f"{node.host}:{node.port}")
            claimed = await backend.claim_due(now=due, lease_until=due, limit=100)
            assert sorted(c.envelope.message_id for c in claimed) == sorted(
                f"m{i}" for i in range(64)
            )
            return masters
        finally:
            await backend.delete_namespace()
            await backend.close()
            await raw.aclose()

    masters = asyncio.run(check())
    print(f"\n{SHARDS} shards of one namespace live on {len(masters)} masters: {sorted(masters)}")
    assert len(masters) >= 2
