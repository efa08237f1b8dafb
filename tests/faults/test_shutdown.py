"""SIGTERM drains: no new intake, in-flight runs get the grace period, then are cancelled and
their messages go back to the queue; a second signal exits at once. Either way a cancelled
run's lease is ended before the process exits, so another worker takes the run over at once
rather than when the lease would have run out."""

from __future__ import annotations

import asyncio
import signal
import time

from jararaca import connect
from jararaca.lifecycle import HURRY_SECONDS
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster, Process

# Far longer than any wait below: a run that was not released is only taken over after it.
LONG_LEASE = {"JARARACA_LEASE_SECONDS": "60"}
# How soon a released run must start again on the worker that takes it over.
TAKE_OVER_SECONDS = 10
PINGS_QUEUE = "handler.tests.fixtures.dist_app.Pings.on_ping"
LONG_QUEUE = "actions.long"


async def _send(cluster: Cluster, count: int) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return [await pub.publish(Ping(n=i)) for i in range(count)]


def _take_over(
    cluster: Cluster, env: dict[str, str], record: str, ident: str, *, groups: str
) -> Process:
    """Start a worker and wait (from its readiness) until it starts ``ident`` again."""
    staying = cluster.start("worker", "--groups", groups, env={**LONG_LEASE, **env})
    cluster.wait_ready(staying)
    cluster.wait_until(
        lambda: any(r[1] == ident for r in staying.records(record)),
        TAKE_OVER_SECONDS,
        f"{staying.name} to take {ident} over (the cancelled run's lease was not released?)",
    )
    return staying


def test_runs_past_the_grace_period_are_cancelled_and_handled_elsewhere(cluster: Cluster) -> None:
    slow = {"PING_HANDLER_SECONDS": "30", **LONG_LEASE}
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
    # The message went back to the queue and its lease was released: a worker started later
    # handles it now, not after the 60 s lease.
    staying = _take_over(
        cluster, {"PING_HANDLER_SECONDS": "0.1"}, "MSG", f"{message_id}:0", groups="pings"
    )
    assert [r[1].split(":")[0] for r in staying.records("MSG")] == [message_id]


def _second_signal(cluster: Cluster, leaving: Process, queue: str) -> None:
    """SIGTERM, then (once the worker is draining) SIGINT: it exits at once with 128 + 2."""
    leaving.popen.send_signal(signal.SIGTERM)
    cluster.wait_until(lambda: cluster.consumer_count(queue) == 0, 20, "the drain to begin")
    assert leaving.popen.poll() is None  # draining: its 20 s grace period has begun
    sent = time.monotonic()
    leaving.popen.send_signal(signal.SIGINT)
    assert leaving.popen.wait(timeout=HURRY_SECONDS + 5) == 128 + signal.SIGINT
    assert time.monotonic() - sent < HURRY_SECONDS


def test_a_second_signal_exits_at_once_and_releases_the_cancelled_fire(cluster: Cluster) -> None:
    leaving = cluster.start("worker", "--groups", "long", env={"LONG_SECONDS": "300", **LONG_LEASE})
    cluster.wait_ready(leaving)
    cluster.start("beat", "--actions", "long", env=LONG_LEASE)
    cluster.wait_until(lambda: bool(leaving.records("LSTART")), 20, "a long run to start")
    fire, attempt = leaving.records("LSTART")[0][1].split("/")
    assert attempt == "1"
    _second_signal(cluster, leaving, LONG_QUEUE)
    assert leaving.records("LEND") == []
    # The same fire, started again by another worker within seconds, as its second attempt.
    staying = _take_over(cluster, {"LONG_SECONDS": "0.2"}, "LSTART", f"{fire}/2", groups="long")
    cluster.wait_until(
        lambda: any(r[1] == f"{fire}/2" for r in staying.records("LEND")), 10, "its end"
    )
    attempts = sorted(r[1] for r in cluster.records("LSTART") if r[1].startswith(fire + "/"))
    assert attempts == [f"{fire}/1", f"{fire}/2"]


def test_a_second_signal_exits_at_once_and_releases_the_cancelled_message(
    cluster: Cluster,
) -> None:
    leaving = cluster.start(
        "worker", "--groups", "pings", env={"PING_HANDLER_SECONDS": "300", **LONG_LEASE}
    )
    cluster.wait_ready(leaving)
    [message_id] = asyncio.run(_send(cluster, 1))
    cluster.wait_until(lambda: bool(leaving.records("MSGSTART")), 20, "the handler to start")
    _second_signal(cluster, leaving, PINGS_QUEUE)
    assert leaving.records("MSG") == []
    staying = _take_over(
        cluster, {"PING_HANDLER_SECONDS": "0.1"}, "MSGSTART", f"{message_id}:0", groups="pings"
    )
    cluster.wait_until(lambda: bool(staying.records("MSG")), 10, "the handler to end")
    assert [r[1] for r in staying.records("MSG")] == [f"{message_id}:0"]
