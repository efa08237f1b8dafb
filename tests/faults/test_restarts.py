"""Beat and worker ride out a restart of Redis and of RabbitMQ (down ~8 s): the outage is
logged once, they reconnect with backoff, and nothing is lost (guarantee 10)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime

from jararaca import connect
from jararaca.control import Control, RunInfo
from tests.faults.servers import PrivateRabbit, PrivateRedis
from tests.fixtures.dist_app import Ping, app
from tests.integration.cluster import Cluster, Process

OUTAGE_SECONDS = 8


async def _delay(cluster: Cluster, count: int, seconds: float) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return await pub.delay_many([(Ping(n=i), seconds) for i in range(count)])


def _slots(cluster: Cluster) -> Counter[int]:
    return Counter(int(r[1].rsplit("@", 1)[1]) // 1000 for r in cluster.records("RUN"))


def _skipped(cluster: Cluster) -> Counter[int]:
    """Slots a worker skipped (allow_overlap=False: a backlog of fires arrives together), as
    the run history in Redis has them."""

    async def read() -> list[RunInfo]:
        async with Control(
            app, backend_url=cluster.backend_url, broker_url=cluster.broker_url
        ) as control:
            return await control.runs(action="tick", outcome="skipped_overlap", limit=1000)

    return Counter(int(run.scheduled_at.timestamp()) for run in asyncio.run(read()))


def _accounted(cluster: Cluster) -> Counter[int]:
    return _slots(cluster) + _skipped(cluster)


def _outage_warnings(process: Process) -> int:
    return sum("retrying with backoff" in line for line in process.lines)


BROKER_CONNECTION = "the worker's connection to the broker"


def _broker_connection_lines(process: Process) -> tuple[list[str], list[str]]:
    """The worker's own log lines about its broker connection: (lost, back)."""
    about = [line for line in list(process.lines) if BROKER_CONNECTION in line]
    lost = [line for line in about if "failed:" in line and "retrying with backoff" in line]
    back = [line for line in about if "works again after" in line]
    return lost, back


def _runs_on_time_after(cluster: Cluster, instant: float) -> bool:
    """Whether a slot after ``instant`` ran less than a second late: dispatch is back."""
    return any(
        int(r[1].rsplit("@", 1)[1]) / 1000 > instant and float(r[3]) < 1000
        for r in cluster.records("RUN")
    )


def _no_tracebacks(*processes: Process) -> None:
    for process in processes:
        assert not any("Traceback" in line for line in process.lines), process.lines[-30:]


def test_redis_restart(redis_cluster: Cluster, private_redis: PrivateRedis) -> None:
    cluster = redis_cluster
    worker = cluster.start("worker", "--groups", "ticks,pings")
    beat = cluster.start("beat", "--actions", "tick")
    cluster.wait_ready(worker)
    cluster.wait_ready(beat)
    # Due in the middle of the outage: they wait in Redis (AOF) and are delivered after it.
    ids = asyncio.run(_delay(cluster, 200, OUTAGE_SECONDS / 2 + 1))
    cluster.wait_until(lambda: len(cluster.records("RUN")) >= 2, 20, "runs before the outage")
    first_slot = int(time.time()) + 1
    private_redis.stop()
    time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for an outcome
    private_redis.start()
    restarted = time.time()
    cluster.wait_until(lambda: len(cluster.records("MSG")) >= 200, 40, "the delayed messages")
    cluster.wait_until(
        lambda: _runs_on_time_after(cluster, restarted), 30, "fires on time after the restart"
    )
    resumed = range(max(int(restarted), int(time.time())) + 2, int(time.time()) + 7)
    cluster.wait_until(
        lambda: all(_accounted(cluster)[s] for s in resumed), 30, "fires after the restart"
    )
    assert sum(1 for s in resumed if _slots(cluster)[s]) >= 3
    assert beat.popen.poll() is None and worker.popen.poll() is None
    delivered = Counter(r[1].split(":")[0] for r in cluster.records("MSG"))
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1
    # Nothing ran twice; slots missed during the outage went through the catch-up policy.
    assert max(_accounted(cluster).values()) == 1
    assert min(_slots(cluster)) < first_slot
    # One warning per process for the outage (plus the beat's wake-up listener), not one
    # per retry.
    assert 1 <= _outage_warnings(beat) <= 2
    assert _outage_warnings(worker) <= 1
    _no_tracebacks(beat, worker)


def test_rabbitmq_restart(rabbit_cluster: Cluster, private_rabbit: PrivateRabbit) -> None:
    cluster = rabbit_cluster
    beat = cluster.start("beat", "--actions", "tick")
    # Runs the ticks throughout, so it lives through the outage (and has to say so).
    ticker = cluster.start("worker", "--groups", "ticks")
    cluster.wait_ready(beat)
    cluster.wait_ready(ticker)
    # No pings worker yet: these are published into RabbitMQ and must survive its restart.
    ids = asyncio.run(_delay(cluster, 200, 0.5))
    cluster.wait_until(cluster.delayed_queue_empty, 20, "the beat to publish them")
    start_slot = int(datetime.now(UTC).timestamp()) + 1
    cluster.wait_until(
        lambda: sum(1 for s in _slots(cluster) if s >= start_slot) >= 4,
        20,
        "ticks before the stop",
    )
    stopped_at = time.time()
    private_rabbit.stop()
    time.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for an outcome
    private_rabbit.start()
    restarted = time.time()
    worker = cluster.start("worker", "--groups", "pings")
    cluster.wait_ready(worker, timeout=60)
    cluster.wait_until(lambda: len(cluster.records("MSG")) >= 200, 40, "messages kept by RabbitMQ")
    # From the beat's recovery on, every slot is dispatched on time again (before it, missed
    # slots went through the catch-up policy).
    cluster.wait_until(
        lambda: _runs_on_time_after(cluster, restarted), 30, "fires on time after the restart"
    )
    resumed = range(int(time.time()) + 2, int(time.time()) + 6)
    cluster.wait_until(
        lambda: all(_accounted(cluster)[s] for s in resumed),
        30,
        lambda: (
            f"slots {list(resumed)} after the restart; accounted: {sorted(_accounted(cluster))}"
        ),
    )
    assert sum(1 for s in resumed if _slots(cluster)[s]) >= 2
    assert restarted < min(resumed)
    assert beat.popen.poll() is None and ticker.popen.poll() is None
    delivered = Counter(r[1].split(":")[0] for r in cluster.records("MSG"))
    assert set(delivered) == set(ids)
    assert max(delivered.values()) == 1
    # Fires published before the stop each reached a worker exactly once (run, or skipped
    # because a backlog arrived together and the action does not overlap). Fires due during
    # the outage went through the catch-up policy; none ran twice.
    accounted = _accounted(cluster)
    assert max(accounted.values()) == 1
    before_stop = range(start_slot, int(stopped_at - 0.2))  # published before the stop
    assert len(before_stop) >= 2
    assert [s for s in before_stop if s not in accounted] == []
    assert 1 <= _outage_warnings(beat) <= 2
    # The worker that lived through the outage said once that its broker connection was
    # lost and once that it was back (ticks ran after the restart: it has reconnected).
    lost, back = _broker_connection_lines(ticker)
    assert (len(lost), len(back)) == (1, 1), ticker.lines[-40:]
    assert ticker.lines.index(lost[0]) < ticker.lines.index(back[0])
    assert _broker_connection_lines(worker) == ([], [])  # started after the restart
    _no_tracebacks(beat, ticker, worker)
