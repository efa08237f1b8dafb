"""Metrics, probes, JSON logs and status of real beat and worker processes (DESIGN.md section 6).

Each process serves ``--metrics-port 0`` (a free port) and says where in its heartbeat, so the
test finds every endpoint the way an operator would: from ``jararaca status --json``.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from jararaca import connect
from tests.fixtures.observed_app import Note
from tests.integration.cluster import Cluster, live_cluster
from tests.integration.probes import (
    free_port,
    probe,
    scrape,
    status_json,
    value,
)
from tests.integration.test_rabbitmq_broker import TcpProxy
from tests.services import AMQP_URL

APP = "tests.fixtures.observed_app:app"
HANDLER = "tests.fixtures.observed_app.Observed.on_note"
# Short leases: a killed worker is "gone" after three of them.
LEASE = "2"


@pytest.fixture
def observed(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    with live_cluster(request.node.name[:20].replace("_", "-"), APP) as cluster:
        yield cluster


def endpoints(cluster: Cluster) -> dict[str, dict[str, Any]]:
    """The live processes by kind, from ``jararaca status --json``."""
    found = status_json(APP, cluster.backend_url, cluster.broker_url)
    return {p["kind"]: p for p in found if p["alive"]}


def ready(address: str) -> bool:
    return probe(address, "/readyz") == 200


def lines_of(path: Path, kind: str) -> list[str]:
    if not path.exists():
        return []
    return [line.split()[1] for line in path.read_text().splitlines() if line.startswith(kind)]


def test_metrics_count_what_ran_and_status_lists_every_endpoint(
    observed: Cluster, tmp_path: Path
) -> None:
    runs = tmp_path / "runs.txt"
    env = {"OBSERVED_RUNS": str(runs), "JARARACA_LEASE_SECONDS": LEASE}
    beat = observed.start("beat", "--metrics-port", "0", env=env)
    worker = observed.start("worker", "--metrics-port", "0", "--log-format", "json", env=env)

    found: dict[str, dict[str, Any]] = {}

    def both_listed() -> bool:
        found.update(endpoints(observed))
        return all(found.get(kind, {}).get("metrics_address") for kind in ("beat", "worker"))

    observed.wait_until(both_listed, 60, "beat and worker listed with their metrics address")
    assert found["beat"]["pid"] == beat.popen.pid
    assert found["worker"]["pid"] == worker.popen.pid
    beat_at, worker_at = found["beat"]["metrics_address"], found["worker"]["metrics_address"]
    for address in (beat_at, worker_at):
        observed.wait_until(partial(ready, address), 30, f"{address} ready")
        assert probe(address, "/healthz") == 200

    async def enqueue() -> None:
        async with connect(broker_url=observed.broker_url, backend_url=observed.backend_url):
            for n in range(4):
                await Note(text=f"later {n}").delay(3600)
            for n in range(3):
                await Note(text=f"now {n}").publish()

    asyncio.run(enqueue())

    def enough() -> bool:
        at = scrape(worker_at)
        return (
            value(at, "jararaca_runs_total", action="ok", outcome="succeeded") >= 3
            and value(at, "jararaca_runs_total", action="fails", outcome="failed") >= 2
            and value(at, "jararaca_runs_total", action="hangs", outcome="timed_out") >= 1
            and value(at, "jararaca_messages_total", handler=HANDLER, outcome="handled") == 3
        )

    observed.wait_until(enough, 60, lambda: f"runs counted: {scrape(worker_at)}")
    for address in (beat_at, worker_at):
        assert value(scrape(address), "jararaca_delayed_pending") == 4
    dispatched = value(scrape(beat_at), "jararaca_fires_total", action="ok", outcome="dispatched")
    assert dispatched >= 3

    # No more fires: once the worker is done, every count is final and must match what ran.
    assert beat.terminate() == 0

    def settled() -> bool:
        at = scrape(worker_at)
        ran = len(lines_of(runs, "ok"))
        return (
            value(at, "jararaca_running") == 0
            and value(at, "jararaca_runs_total", action="ok", outcome="succeeded") == ran
        )

    observed.wait_until(settled, 30, lambda: f"settled: {scrape(worker_at)}")
    at = scrape(worker_at)
    ok_runs = len(lines_of(runs, "ok"))
    assert value(at, "jararaca_fire_lateness_seconds_count", action="ok") == ok_runs
    assert value(at, "jararaca_run_duration_seconds_count", action="ok") == ok_runs
    failed = value(at, "jararaca_runs_total", action="fails", outcome="failed")
    assert failed == len(lines_of(runs, "fails"))
    assert value(at, "jararaca_fire_lateness_seconds_count", action="fails") == failed
    timed_out = value(at, "jararaca_runs_total", action="hangs", outcome="timed_out")
    assert timed_out == len(lines_of(runs, "hangs"))
    assert value(at, "jararaca_runs_total", action="ok", outcome="failed") == 0

    # --log-format json: every line of the worker is a JSON object; one line per run.
    logged = [json.loads(line) for line in list(worker.lines)]
    assert all({"timestamp", "level", "logger", "message"} <= set(entry) for entry in logged)
    run_lines = [entry for entry in logged if "fire_id" in entry]
    by_fire = {entry["fire_id"]: entry["outcome"] for entry in run_lines}
    assert len(by_fire) == len(run_lines), "a run was logged twice"
    assert sorted(f for f, o in by_fire.items() if o == "succeeded") == sorted(lines_of(runs, "ok"))
    assert sum(o == "timed_out" for o in by_fire.values()) == timed_out
    handled = [entry for entry in logged if entry.get("handler") == HANDLER]
    assert sorted(e["message_id"] for e in handled) == sorted(lines_of(runs, "note"))

    # A worker killed without a goodbye is shown as gone within three lease periods.
    worker.kill()
    observed.wait_until(
        lambda: "worker" not in endpoints(observed), 3 * 2 + 10, "the killed worker shown gone"
    )
    gone = status_json(APP, observed.backend_url, observed.broker_url)
    assert [p["alive"] for p in gone if p["pid"] == worker.popen.pid] == [False]


class ThreadedProxy:
    """The broker tests' TCP proxy, run on a loop of its own so a subprocess can use it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.proxy = TcpProxy()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self._call(self.proxy.start())

    def _call(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def down(self) -> None:
        self.loop.call_soon_threadsafe(self.proxy.down)

    def up(self) -> None:
        self.loop.call_soon_threadsafe(self.proxy.up)

    def close(self) -> None:
        self._call(self.proxy.close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


def test_readyz_follows_the_connection_to_rabbitmq(observed: Cluster) -> None:
    proxy = ThreadedProxy()
    try:
        port = free_port()
        address = f"http://127.0.0.1:{port}"
        via_proxy = AMQP_URL.replace(":5672/", f":{proxy.proxy.port}/")
        broker_url = f"{via_proxy}?exchange={observed.exchange}&reconnect_interval=0.5"
        observed.spawn(
            "worker",
            [
                *(sys.executable, "-m", "jararaca", "worker", APP),
                *("--metrics-port", str(port), "--broker-url", broker_url),
                *("--backend-url", observed.backend_url),
            ],
        )
        observed.wait_until(lambda: probe(address, "/readyz") == 200, 60, "ready")
        proxy.down()
        observed.wait_until(lambda: probe(address, "/readyz") == 503, 30, "503 while cut off")
        assert probe(address, "/healthz") == 200, "the loop still turns"
        proxy.up()
        observed.wait_until(lambda: probe(address, "/readyz") == 200, 60, "200 once back")
    finally:
        proxy.close()
