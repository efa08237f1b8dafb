"""``kill -9`` of a worker mid-run: nothing is lost, and the only duplicates are runs whose
worker died, with the same message id (guarantees 2 and 6)."""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict

from jararaca import connect
from tests.fixtures.dist_app import Ping
from tests.integration.cluster import Cluster, Process


def _by_pid(cluster: Cluster, pid: str) -> Process:
    return next(p for p in cluster.processes if str(p.popen.pid) == pid)


def test_a_worker_killed_mid_action_has_its_fire_taken_over_once(cluster: Cluster) -> None:
    workers = [cluster.start("worker", "--groups", "long") for _ in range(2)]
    for worker in workers:
        cluster.wait_ready(worker)
    cluster.start("beat", "--actions", "long")
    cluster.wait_until(lambda: bool(cluster.records("LSTART")), 20, "a long run to start")
    first = cluster.records("LSTART")[0]
    victim = _by_pid(cluster, first[4])
    victim.kill()
    fire = first[1].split("/")[0]
    # The lease (6 s in these tests) runs out, then another worker takes the fire over.
    cluster.wait_until(
        lambda: any(r[1] == f"{fire}/2" for r in cluster.records("LEND")), 30, "the take-over"
    )
    starts = sorted(
        (r for r in cluster.records("LSTART") if r[1].startswith(fire + "/")), key=lambda r: r[1]
    )
    assert (starts[0][1], starts[0][4]) == (f"{fire}/1", first[4])
    assert len(starts) == 2
    assert starts[1][4] != first[4]
    # Every other fire ran once: started once, ended once.
    per_fire = Counter(r[1].split("/")[0] for r in cluster.records("LSTART"))
    assert {f: c for f, c in per_fire.items() if c > 1} == {fire: 2}
    ends = Counter(r[1].split("/")[0] for r in cluster.records("LEND"))
    assert max(ends.values()) == 1


async def _send(cluster: Cluster, count: int) -> list[str]:
    async with connect(broker_url=cluster.broker_url, backend_url=cluster.backend_url) as pub:
        return [await pub.publish(Ping(n=i)) for i in range(count)]


def test_a_worker_killed_mid_handlers_loses_nothing(cluster: Cluster) -> None:
    env = {"PING_HANDLER_SECONDS": "0.05"}
    workers = [cluster.start("worker", "--groups", "pings", env=env) for _ in range(2)]
    cluster.start("beat", "--actions", "tick")  # runs the re-checks of taken-over messages
    for worker in workers:
        cluster.wait_ready(worker)
    ids = asyncio.run(_send(cluster, 400))
    cluster.wait_until(lambda: len(workers[0].records("MSG")) >= 40, 30, "work on worker 0")
    victim, survivor = workers
    victim.kill()
    cluster.wait_until(
        lambda: {r[1].split(":")[0] for r in cluster.records("MSG")} >= set(ids), 60, "all 400"
    )
    handled = defaultdict(list)
    for record in cluster.records("MSG"):
        handled[record[1].split(":")[0]].append(record[4])
    victim_pid = str(victim.popen.pid)
    doubled = {m: pids for m, pids in handled.items() if len(pids) > 1}
    # A message handled twice was being handled by the worker that died.
    started_on_victim = {r[1].split(":")[0] for r in victim.records("MSGSTART")}
    assert set(doubled) <= started_on_victim
    assert all(victim_pid in pids for pids in doubled.values())
    assert len(survivor.records("MSG")) > 0
