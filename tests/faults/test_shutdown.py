"""SIGTERM drains: no new intake, in-flight runs get the grace period, then are cancelled and
their messages go back to the queue; a second signal exits at once."""

from __future__ import annotations

import asyncio
import signal
import time

from jararaca import connect
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster


async def _send(cluster: Cluster, count: int) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return [await pub.publish(Ping(n=i)) for i in range(count)]


def test_runs_past_the_grace_period_are_cancelled_and_handled_elsewhere(cluster: Cluster) -> None:
    slow = {"PING_HANDLER_SECONDS": "30"}
    leaving = cluster.start(
        "worker", "--groups", "pings", "--graceful-shutdown-seconds", "1", env=slow
    )
    cluster.wait_ready(leaving)
    [message_id] = asyncio.run(_send(cluster, 1))
    cluster.wait_until(lambda: bool(leaving.records("MSGSTART")), 20, "the handler to start")
    started = time.monotonic()
    leaving.popen.send_signal(signal.SIGTERM)
    assert leaving.popen.wait(timeout=20) == 0
    assert time.monotonic() - started < 10  # 1 s of grace, not the 30 s handler
    assert leaving.records("MSG") == []
    # The message went back to the queue: a worker started later handles it.
    staying = cluster.start("worker", "--groups", "pings", env={"PING_HANDLER_SECONDS": "0.1"})
    cluster.wait_until(lambda: bool(staying.records("MSG")), 30, "the message handled elsewhere")
    assert [r[1].split(":")[0] for r in staying.records("MSG")] == [message_id]


def test_a_second_signal_exits_at_once(cluster: Cluster) -> None:
    worker = cluster.start("worker", "--groups", "pings", env={"PING_HANDLER_SECONDS": "30"})
    cluster.wait_ready(worker)
    asyncio.run(_send(cluster, 1))
    cluster.wait_until(lambda: bool(worker.records("MSGSTART")), 20, "the handler to start")
    worker.popen.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert worker.popen.poll() is None  # draining: the 20 s grace period has begun
    started = time.monotonic()
    worker.popen.send_signal(signal.SIGINT)
    assert worker.popen.wait(timeout=10) == 128 + signal.SIGINT
    assert time.monotonic() - started < 5
