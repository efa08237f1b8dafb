"""redis-cluster: the same work on plain Redis and on a Redis Cluster with ``?shards=8``.

The scenario starts its own private Redis Cluster, three masters without replicas on loopback
ports of their own (tests.faults.redis_cluster, the one the fault tests use), and stops it by
pid at the end; plain Redis is the shared server of the other scenarios (bench.config). Two
kinds of work, each run on both, their repeats alternating (plain, cluster, plain, ...) so that
both see the same load on the shared machine:

- *burst*: ``cluster_burst`` delayed messages due at one instant (batch enqueue, in its own
  process), through 1 beat and 1 worker: enqueue and drain rates, lateness, lost, doubled;
  on the cluster, how many of the namespace's keys each master holds once the burst is
  enqueued (``keys_master_<n>``, masters in port order) and how many masters hold any;
- *shared slot*: ``shared_slot_actions`` actions all due at one slot (bench.apps.many_app, as in
  many-schedules), through 1 beat and 1 worker: how late the last of them starts
  (``last_after_slot_s``), lateness, missed, doubled; on the cluster, the keys per master
  after the slot (fires stay in shard 0, so on one master: see docs/high-availability.md).

Section ids carry no count (the labels do), so that the target "cluster not slower than plain
Redis by more than 20%" (bench.targets, a ``baseline`` target on ``drain_rate``) is judged in
the quick run as in the full one.
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from tests.faults.redis_cluster import PrivateRedisCluster, missing_binaries

from bench.apps.burst_app import app as burst_app
from bench.apps.many_app import make_app
from bench.config import REDIS_URL, Profile
from bench.namespace import Namespace
from bench.procs import BenchError, Procs, stop_all, wait_progress
from bench.results import Section
from bench.scenarios.delayed_burst import burst_figures, enqueue
from bench.scenarios.many_schedules import build
from bench.stats import Figures, Records, lateness_ms

SCENARIO = "redis-cluster"
BURST_APP = "bench.apps.burst_app:app"
MANY_APP = "bench.apps.many_app:make_app"
# Ports of the bench's own: the fault tests' clusters use 7395-7400 (and each port + 10000).
PORTS = (7411, 7412, 7413)
SHARDS = 8
# An enqueue rate (msg/s) both backends reach with batches, to pick a due instant the enqueue
# finishes before; a run whose enqueue ends later says so (``enqueue_overran_s``).
ASSUMED_BATCH_RATE = 8_000
BACKENDS = ("plain", "cluster")


def _namespace(label: str, backend_url: str) -> Namespace:
    ns = Namespace(label)
    ns.backend_url = backend_url
    return ns


def key_figures(cluster: PrivateRedisCluster, namespace: str) -> Figures:
    """How many keys each master holds (all of them this namespace's: the cluster is the
    bench's own, and one repeat cleans up before the next), and how many masters hold any."""
    per_master = cluster.keys_per_master()
    strangers = [k for keys in per_master.values() for k in keys if namespace not in k]
    figures: Figures = {
        f"keys_master_{n}": len(per_master[port]) for n, port in enumerate(cluster.ports, 1)
    }
    figures["masters_with_keys"] = sum(1 for keys in per_master.values() if keys)
    # Not one of the failure counts: a key without the namespace is shown, not judged.
    figures["keys_without_namespace"] = len(strangers)
    return figures


def burst(backend_url: str, count: int, cluster: PrivateRedisCluster | None) -> Figures:
    """One repeat of the burst on ``backend_url``; with ``cluster``, its keys per master."""
    ns = _namespace("clburst", backend_url)
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.json"
        try:
            beat = procs.jararaca("beat", BURST_APP, ns.broker_url, ns.backend_url)
            env = {"BENCH_OUT": str(out)}
            worker = procs.jararaca("worker", BURST_APP, ns.broker_url, ns.backend_url, env=env)
            beat.wait_ready()
            worker.wait_ready()
            due = time.time() + 2.0 + count / ASSUMED_BATCH_RATE
            enqueued = enqueue(procs, ns, "batch", count, due)
            figures = key_figures(cluster, ns.exchange) if cluster else {}
            time.sleep(max(0.0, due - time.time()))
            wait_progress([worker], count, stall=30, limit=900)
            figures["bad_exits"] = stop_all([worker, beat])
        finally:
            procs.close()
            ns.cleanup(burst_app)
        records = Records.load([out])
    return {**burst_figures(count, due, enqueued, records), **figures}


def shared_slot(backend_url: str, count: int, cluster: PrivateRedisCluster | None) -> Figures:
    """One repeat: ``count`` actions due at one slot, run by one worker."""
    ns = _namespace("clslot", backend_url)
    env = {"BENCH_ACTIONS": str(count), "BENCH_SHARED": str(count)}
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.json"
        try:
            built_s, _ = build(procs, env)
            # After a generous guess of the start-up (as many-schedules picks its slot).
            slot = math.ceil(time.time() + 5 + 3 * built_s + 3)
            at = datetime.fromtimestamp(slot, UTC)
            env["BENCH_SLOT"] = f"{at.second} {at.minute} {at.hour}"
            beat = procs.jararaca("beat", MANY_APP, ns.broker_url, ns.backend_url, env=env)
            worker_env = {**env, "BENCH_OUT": str(out)}
            worker = procs.jararaca(
                "worker", MANY_APP, ns.broker_url, ns.backend_url, env=worker_env
            )
            figures: Figures = {"startup_s": beat.wait_ready(timeout=600)}
            worker.wait_ready(timeout=600)
            if time.time() > slot - 1:
                # Too late to see the slot dispatched from a settled beat: unmeasured, not
                # a figure that would flatter or blame either backend.
                raise BenchError(f"the beat was ready only {slot - time.time():.1f} s before")
            time.sleep(max(0.0, slot - time.time()))
            wait_progress([worker], count, stall=30, limit=600)
            if cluster:
                figures.update(key_figures(cluster, ns.exchange))
            figures["bad_exits"] = stop_all([beat, worker])
        finally:
            procs.close()
            ns.cleanup(make_app())
        records = Records.load([out])
    unique = len(set(records.keys))
    figures["last_after_slot_s"] = max(records.start, default=math.nan) - slot
    figures.update(lateness_ms(records.late_seconds()))
    figures.update({"missed": count - unique, "doubled": records.doubled()})
    return figures


def run(profile: Profile) -> list[Section]:
    missing = missing_binaries()
    if missing:
        raise BenchError(f"{', '.join(missing)} not found: cannot start a private Redis Cluster")
    with (
        tempfile.TemporaryDirectory(prefix="bench-redis-cluster-") as tmp,
        PrivateRedisCluster(Path(tmp), PORTS, SHARDS).running() as cluster,
    ):
        return _measure(profile, cluster, REDIS_URL)


def _measure(profile: Profile, cluster: PrivateRedisCluster, plain_url: str) -> list[Section]:
    count, actions = profile.cluster_burst, profile.shared_slot_actions
    where = {
        "plain": "plain Redis",
        "cluster": f"Redis Cluster, 3 masters, shards={SHARDS}",
    }
    bursts = {
        kind: Section(
            SCENARIO, f"{SCENARIO}/burst-{kind}", f"{count:,} messages, batch, {where[kind]}"
        )
        for kind in BACKENDS
    }
    slots = {
        kind: Section(
            SCENARIO,
            f"{SCENARIO}/shared-slot-{kind}",
            f"{actions:,} actions at one slot, {where[kind]}",
        )
        for kind in BACKENDS
    }
    repeats = profile.burst_repeats_large if count >= 100_000 else profile.repeats
    for _ in range(repeats):
        bursts["plain"].measure(burst, plain_url, count, None)
        bursts["cluster"].measure(burst, cluster.url, count, cluster)
    slots["plain"].measure(shared_slot, plain_url, actions, None)
    slots["cluster"].measure(shared_slot, cluster.url, actions, cluster)
    _note_ratio(bursts, "drain_rate", "drain rate")
    _note_ratio(slots, "last_after_slot_s", "last run after the slot")
    return [*bursts.values(), *slots.values()]


def _note_ratio(sections: dict[str, Section], figure: str, what: str) -> None:
    plain = sections["plain"].median.get(figure, math.nan)
    on_cluster = sections["cluster"].median.get(figure, math.nan)
    if plain and math.isfinite(plain) and math.isfinite(on_cluster):
        sections["cluster"].notes.append(
            f"{what}: {on_cluster / plain:.2f} x plain Redis's in this run"
        )
