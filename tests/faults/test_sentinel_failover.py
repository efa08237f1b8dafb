"""A Redis Sentinel failover under load: the master is killed (``kill -9``) while a beat
dispatches a seconds cron and a publisher enqueues a burst of delayed messages. Real beat and
worker processes stay up and follow the new master, and the test says what was lost or doubled.

Redis replicates asynchronously: a write the master acknowledged in the last moments before it
died may not have reached the replica. So the bound on loss is the writes in flight at the
kill (a few enqueues at most here, usually none); nothing may run twice.

The broker URL names a dead RabbitMQ host first (127.0.0.1:1), so the processes also prove
that a dead first host is passed over."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from jararaca.backends.base import RunStatus
from jararaca.backends.redis import RedisBackend
from jararaca.wire import Envelope
from tests.faults.delayed_stream import DelayedStream
from tests.faults.sentinel_group import MASTER_PORT, REPLICA_PORT, SentinelGroup
from tests.faults.servers import PrivateRedis
from tests.integration.cluster import Cluster
from tests.services import require_rabbitmq, require_service

AMQP_WITH_A_DEAD_FIRST_HOST = "amqp://guest:guest@127.0.0.1:1,127.0.0.1:5672/"
RESUME_SECONDS = 15  # the promise: dispatch is back this long after the master died


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    if shutil.which("redis-server") is None:
        require_service("redis-server (to run a private Sentinel group)", 1)
    group = SentinelGroup(tmp_path)
    try:
        group.start()
        yield group
    finally:
        group.stop()


def _slots(cluster: Cluster) -> Counter[int]:
    return Counter(int(r[1].rsplit("@", 1)[1]) // 1000 for r in cluster.records("RUN"))


def _delivered(cluster: Cluster) -> Counter[str]:
    return Counter(r[1].split(":")[0] for r in cluster.records("MSG"))


def test_beat_and_worker_follow_a_sentinel_failover(sentinel_group: SentinelGroup) -> None:
    require_rabbitmq()
    cluster = Cluster(
        "sentinel", redis_url=sentinel_group.url, amqp_url=AMQP_WITH_A_DEAD_FIRST_HOST
    )
    burst = DelayedStream(cluster, due_in=2.0)
    try:
        worker = cluster.start("worker", "--groups", "ticks,pings")
        beat = cluster.start("beat", "--actions", "tick")
        cluster.wait_ready(worker)
        cluster.wait_ready(beat)
        cluster.wait_until(lambda: len(_slots(cluster)) >= 2, 20, "ticks before the kill")
        burst.start()
        cluster.wait_until(lambda: len(burst.acknowledged) >= 50, 20, "enqueues before the kill")

        sentinel_group.kill(MASTER_PORT)
        killed = time.time()
        sentinel_group.wait_until(
            lambda: sentinel_group.master_port() == REPLICA_PORT, 20, "the Sentinels' failover"
        )
        promoted = time.time()
        cluster.wait_until(
            lambda: burst.last_acknowledged > promoted,
            RESUME_SECONDS,
            "an enqueue acknowledged by the new master",
        )
        burst.stop()

        def fires_on_time_again() -> bool:
            return any(
                int(r[1].rsplit("@", 1)[1]) / 1000 > promoted and float(r[3]) < 1000
                for r in cluster.records("RUN")
            )

        cluster.wait_until(fires_on_time_again, RESUME_SECONDS, "fires on time after failover")
        resumed_after = time.time() - killed
        sent = set(burst.acknowledged)
        # Every acknowledged enqueue is due 2 s after it: give them that and the dispatch.
        cluster.wait_until(
            lambda: sent <= set(_delivered(cluster)) or time.time() > promoted + 10,
            15,
            "the acknowledged delayed messages",
        )
        delivered = _delivered(cluster)
        lost = sorted(sent - set(delivered), key=burst.acknowledged.__getitem__)
        doubled_messages = {m: c for m, c in delivered.items() if c > 1}
        doubled_fires = {s: c for s, c in _slots(cluster).items() if c > 1}
        in_flight = [m for m in lost if abs(burst.acknowledged[m] - killed) < 1.0]
        print(
            f"\nSentinel failover: master killed, new master named after "
            f"{promoted - killed:.1f} s, dispatch on time again after {resumed_after:.1f} s; "
            f"{len(sent)} delayed messages acknowledged, {burst.refused} enqueues refused "
            f"during the failover; lost {len(lost)} ({len(in_flight)} of them acknowledged "
            f"within 1 s of the kill): {lost}; doubled messages {doubled_messages}, doubled "
            f"fires {doubled_fires}"
        )
        for process in (beat, worker):
            warnings = [line for line in process.lines if "retrying with backoff" in line]
            print(f"{process.name} outage warnings: {warnings}")
            # Logged once per incident (the beat's wake-up channel says so on its own).
            assert len(warnings) <= 2
        assert beat.popen.poll() is None and worker.popen.poll() is None
        assert resumed_after < RESUME_SECONDS
        assert not doubled_messages and not doubled_fires
        # Only writes acknowledged just before the kill can be lost (asynchronous replication).
        assert lost == in_flight
        assert len(lost) <= 5
        assert burst.unexpected == []
        assert not any("Traceback" in line for p in cluster.processes for line in p.lines)
    finally:
        burst.stop()
        cluster.close()


async def test_scripts_are_loaded_again_on_a_server_that_never_saw_them(
    private_redis: PrivateRedis,
) -> None:
    """A promoted replica starts with an empty script cache: EVALSHA answers NOSCRIPT and the
    script is loaded there, on the single-call path and the batched (pipelined) one alike."""
    backend = RedisBackend(private_redis.url, namespace="scripts")
    await backend.connect()
    raw = aioredis.Redis(port=private_redis.port)
    try:
        await raw.script_flush()
        now = datetime.now(UTC)
        envelope = Envelope("m1", "test.ping", b"{}", {})
        await backend.enqueue_delayed(envelope, now, task_id="m1")
        assert [
            c.envelope.message_id
            for c in await backend.claim_due(
                now=now, lease_until=now + timedelta(seconds=30), limit=10
            )
        ] == ["m1"]
        await raw.script_flush()
        started = await asyncio.gather(
            *(
                backend.begin_run(
                    f"f{i}",
                    overlap_key=None,
                    owner="me",
                    now=now,
                    lease_until=now + timedelta(seconds=30),
                )
                for i in range(3)
            )
        )
        assert {s.status for s in started} == {RunStatus.STARTED}
    finally:
        await backend.delete_namespace()
        await backend.close()
        await raw.aclose()


async def _enqueue_latencies(url: str, count: int) -> list[float]:
    backend = RedisBackend(url, namespace=f"wait-{uuid.uuid4().hex[:8]}")
    await backend.connect()
    try:
        now = datetime.now(UTC)
        spent = []
        for i in range(count):
            started = time.perf_counter()
            await backend.enqueue_delayed(env_of(f"m{i}"), now, task_id=f"m{i}")
            spent.append(time.perf_counter() - started)
        claimed = await backend.claim_due(now=now, lease_until=now, limit=count)
        assert len(claimed) == count
        return spent
    finally:
        await backend.delete_namespace()
        await backend.close()


def env_of(message_id: str) -> Envelope:
    return Envelope(message_id, "test.ping", b"{}", {})


def test_wait_replicas_makes_each_write_wait_for_a_replica(
    sentinel_group: SentinelGroup, caplog: pytest.LogCaptureFixture
) -> None:
    """``?wait_replicas=1``: every claim and enqueue returns once a replica has it (no
    warning says otherwise); the test prints what that costs per enqueue."""
    count = 300
    plain = asyncio.run(_enqueue_latencies(sentinel_group.url, count))
    waited = asyncio.run(_enqueue_latencies(f"{sentinel_group.url}?wait_replicas=1", count))
    assert "replica(s) wait_replicas asks for" not in caplog.text
    plain_ms, waited_ms = statistics.median(plain) * 1000, statistics.median(waited) * 1000
    print(
        f"\nenqueue_delayed through Sentinel, median of {count}: {plain_ms:.3f} ms without, "
        f"{waited_ms:.3f} ms with wait_replicas=1 (p95 {p95(plain):.3f} / {p95(waited):.3f} ms)"
    )


def p95(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.95)] * 1000


async def test_too_few_replicas_warn_once_and_the_write_stands(
    private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    """A server without replicas cannot satisfy wait_replicas=1: the write is done anyway
    (after the WAIT timeout) and one warning says so, not one per write."""
    backend = RedisBackend(f"{private_redis.url}?wait_replicas=1", namespace="lonely")
    await backend.connect()
    try:
        now = datetime.now(UTC)
        for i in range(2):
            await backend.enqueue_delayed(env_of(f"m{i}"), now, task_id=f"m{i}")
        assert await backend.pending_count() == 2
        assert caplog.text.count("replica(s) wait_replicas asks for") == 1
    finally:
        await backend.delete_namespace()
        await backend.close()
