"""Across processes over the real Redis and RabbitMQ: the six idempotency behaviours under
concurrent enqueues, app isolation by exchange, broadcast actions and graceful drain."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as redis

from jararaca import connect
from jararaca.backends.redis import RedisBackend
from jararaca.clock import epoch_ms
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster
from tests.services import REDIS_URL


async def _seed_entry(cluster: Cluster) -> int:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        when = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
        await pub.schedule(Ping(n=-1), when, idempotency_key="race")
        return epoch_ms(when)


async def _pending(cluster: Cluster) -> tuple[int, int, int]:
    backend = RedisBackend(cluster.backend_url, namespace=cluster.exchange)
    await backend.connect()
    try:
        count = await backend.pending_count()
        due = await backend.next_due()
        assert due is not None
        [claimed] = await backend.claim_due(
            now=due + timedelta(seconds=1), lease_until=due, limit=10
        )
        assert claimed.due_at == due
        return count, epoch_ms(due), json.loads(claimed.envelope.body)["n"]
    finally:
        await backend.close()


@pytest.mark.parametrize("payload_policy", ["ignore", "replace"])
@pytest.mark.parametrize("time_policy", ["replace", "greater", "lesser"])
def test_idempotency_policies_hold_with_two_processes_racing(
    cluster: Cluster, payload_policy: str, time_policy: str
) -> None:
    base_due = asyncio.run(_seed_entry(cluster))
    racers = [
        cluster.spawn(
            f"enqueue-{seed}",
            [
                sys.executable,
                "-m",
                "tests.integration.enqueue_worker",
                cluster.broker_url,
                cluster.backend_url,
                payload_policy,
                time_policy,
                str(seed),
            ],
        )
        for seed in (1, 2)
    ]
    for racer in racers:
        assert racer.popen.wait(timeout=60) == 0, racer.lines[-5:]
    cluster.wait_until(lambda: len(cluster.records("ENQ")) == 400, 10, "racers' output")
    calls = {int(r[1]): int(r[2]) for r in cluster.records("ENQ")}
    dues = {base_due, *calls.values()}
    count, due, n = asyncio.run(_pending(cluster))
    assert count == 1
    if time_policy == "greater":
        assert due == max(dues)
    elif time_policy == "lesser":
        assert due == min(dues)
    else:
        assert due in dues
    if payload_policy == "ignore":
        assert n == -1  # the first pending payload is kept, whoever won the races
    else:
        assert n in calls
    if (payload_policy, time_policy) == ("replace", "replace"):
        assert calls[n] == due  # payload and time come from the same, last, call


async def _enqueue(cluster: Cluster, count: int, first: int = 0) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return await pub.delay_many([(Ping(n=first + i), 0.5) for i in range(count)])


async def _keys(pattern: str) -> list[str]:
    client = redis.from_url(REDIS_URL)
    try:
        return [k.decode() async for k in client.scan_iter(match=pattern, count=1000)]
    finally:
        await client.aclose()


def test_two_apps_sharing_redis_never_see_each_others_keys_or_messages(cluster: Cluster) -> None:
    other = Cluster("isolation-b")
    try:
        workers = [
            cluster.start("worker", "--groups", "pings"),
            other.start("worker", "--groups", "pings"),
        ]
        beats = [
            cluster.start("beat", "--actions", "tick"),
            other.start("beat", "--actions", "tick"),
        ]
        for process in workers:
            cluster.wait_ready(process)
        for process in beats:
            cluster.wait_ready(process)
        ids_a = asyncio.run(_enqueue(cluster, 50))
        cluster.wait_until(lambda: len(cluster.records("MSG")) >= 50, 30, "app A's messages")
        # Had any of A's messages reached B, B would have handled it before a message of its
        # own sent the same way afterwards.
        [sentinel] = asyncio.run(_enqueue(other, 1, first=1000))
        other.wait_until(lambda: bool(other.records("MSG")), 30, "app B's own message")
        assert [r[1] for r in other.records("MSG")] == [f"{sentinel}:1000"]
        assert sorted(r[1].split(":")[0] for r in cluster.records("MSG")) == sorted(ids_a)
        keys_a = asyncio.run(_keys(f"jararaca:{{{cluster.exchange}}}:*"))
        keys_b = asyncio.run(_keys(f"jararaca:{{{other.exchange}}}:*"))
        assert keys_a
        assert not set(keys_a) & set(keys_b)
        assert all(k.startswith(f"jararaca:{{{other.exchange}}}:") for k in keys_b)
    finally:
        other.close()


def test_non_exclusive_actions_run_on_every_worker(cluster: Cluster) -> None:
    workers = [cluster.start("worker", "--groups", "everywhere") for _ in range(2)]
    for worker in workers:
        cluster.wait_ready(worker)
    cluster.start("beat", "--actions", "everywhere")
    cluster.wait_until(lambda: len(cluster.records("EVERY")) >= 8, 30, "broadcast runs")
    pids_per_fire: dict[str, set[str]] = defaultdict(set)
    for record in cluster.records("EVERY"):
        pids_per_fire[record[1]].add(record[4])
    complete = [fire for fire, pids in pids_per_fire.items() if len(pids) == 2]
    assert len(complete) >= 3
    assert len(cluster.records("EVERY")) == sum(len(p) for p in pids_per_fire.values())


def test_sigterm_drains_a_running_handler_then_exits_zero(cluster: Cluster) -> None:
    worker = cluster.start("worker", "--groups", "pings", env={"PING_HANDLER_SECONDS": "2"})
    beat = cluster.start("beat", "--actions", "tick")
    cluster.wait_ready(worker)
    cluster.wait_ready(beat)
    [message_id] = asyncio.run(_enqueue(cluster, 1))
    cluster.wait_until(lambda: bool(worker.records("MSGSTART")), 20, "the handler to start")
    worker.popen.send_signal(signal.SIGTERM)  # the handler is inside its 2 s sleep
    assert worker.popen.wait(timeout=30) == 0
    # The handler was let finish (its end record), not cancelled; it ran once.
    assert [r[1] for r in worker.records("MSGSTART")] == [f"{message_id}:0"]
    assert [r[1] for r in worker.records("MSG")] == [f"{message_id}:0"]
