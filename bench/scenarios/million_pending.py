"""million-pending: N delayed messages pending far ahead (a day), 1 beat + 1 worker.

What holding a large delayed queue costs, and whether it slows what is due meanwhile:

- *enqueue*: N ``BenchPing`` messages, all due a day later (so none is dispatched during the
  run), enqueued by ``delay_many`` in its own process (bench.enqueue, batch form):
  ``enqueue_rate``; how much of a core the beat used from the enqueue process's spawn to
  its result (``enqueue_beat_cpu_pct``: the window includes that process's start-up);
- *Redis memory*: ``INFO memory`` ``used_memory`` just before and just after the enqueue;
  ``redis_bytes_per_msg`` = (after - before) / N. The Redis server is shared (other clients'
  memory moves too), so ``keys_bytes_per_msg`` is a cross-check on the namespace's own keys:
  ``MEMORY USAGE`` of the delayed queue and its envelope hash (Redis's sampled estimate) / N;
- *while N are pending*: the beat's and the worker's RSS before the enqueue
  (``*_rss_before_mib``), after an idle window of ``idle_seconds`` with N pending
  (``*_rss_pending_mib``) and their peak over the run (``*_rss_peak_mib``, VmHWM); the CPU
  each used over that window (``*_idle_cpu_pct``, 100% = one core);
- *probes*: with the N still pending, ``PROBES`` more messages through the same handler, due
  one every ``PROBE_STEP`` s from ``PROBE_LEAD`` s after they are enqueued (from this process);
  lateness = handler start - ``MessageContext.due_at`` (``probe_late_p50_ms``,
  ``probe_late_max_ms``, and ``last_probe_late_ms`` of the last one due). The scenario waits
  on the worker's PROGRESS lines until all arrived (or none came for ``STALL`` s).

Failure counts (bench.verdict): ``lost`` (probes never handled), ``doubled`` (any message
handled twice), ``lost_pending`` (of the N, those no longer in the delayed queue at the end:
lost by the enqueue or dispatched early; ``early_runs`` are those the worker handled) and
``bad_exits``. The namespace is removed at the end (``RedisBackend.delete_namespace``, UNLINK:
Redis frees the N entries in the background); ``cleanup_s`` is how long that took.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis

from bench.apps.burst_app import BenchPing, app
from bench.config import REDIS_URL, Profile
from bench.namespace import Namespace
from bench.procs import Proc, Procs, stop_all, wait_progress
from bench.procstat import CpuWindow, memory_kib
from bench.results import Section, count_id
from bench.scenarios.delayed_burst import enqueue
from bench.stats import Figures, Records, percentile
from jararaca import connect
from jararaca.backends.redis_keys import Keys

SCENARIO = "million-pending"
APP = "bench.apps.burst_app:app"
PENDING_FOR = 86_400.0  # seconds: the N are due a day after the run, so they stay pending
SETTLE = 2.0  # seconds after the enqueue before the idle window opens
PROBES = 20
PROBE_LEAD = 2.0  # seconds from the probes' enqueue to the first one's due instant
PROBE_STEP = 0.5  # seconds between two probes' due instants
STALL = 60.0  # seconds without a probe handled before giving up on the rest


def redis_used_memory(client: redis.Redis) -> int:
    """``used_memory`` of ``INFO memory``, in bytes."""
    return int(client.info("memory")["used_memory"])


def pending_figures(client: redis.Redis, keys: Keys, count: int) -> Figures:
    """How many entries the namespace's delayed queue holds, and the Redis memory its two keys
    take per pending message (``MEMORY USAGE``: Redis's estimate from a few sampled entries)."""
    held = sum(int(client.zcard(shard.delayed)) for shard in keys.shards)
    used = sum(
        int(client.memory_usage(key) or 0)
        for shard in keys.shards
        for key in (shard.delayed, shard.delayed_env)
    )
    return {"pending_in_redis": held, "keys_bytes_per_msg": used / count if count else math.nan}


def rss_mib(proc: Proc, field: str = "VmRSS") -> float:
    return memory_kib(proc.pid)[field] / 1024


async def _enqueue_probes(ns: Namespace, first: int, dues: list[float]) -> None:
    async with connect(broker_url=ns.broker_url, backend_url=ns.backend_url) as publisher:
        for number, due in enumerate(dues, first):
            await publisher.schedule(BenchPing(n=number), datetime.fromtimestamp(due, UTC))


def probe(ns: Namespace, worker: Proc, count: int) -> None:
    """Enqueue the probes (numbered after the N pending: ``count`` to ``count + PROBES - 1``)
    and wait until the worker handled them all, or none came for ``STALL`` s."""
    start = time.time() + PROBE_LEAD
    dues = [start + PROBE_STEP * i for i in range(PROBES)]
    asyncio.run(_enqueue_probes(ns, count, dues))
    limit = dues[-1] - time.time() + 300
    wait_progress([worker], PROBES, stall=STALL, limit=limit)


def pending(count: int, idle: float) -> Figures:
    """One repeat: N pending, the idle window, the probes."""
    ns = Namespace("million")
    keys = Keys.for_namespace(ns.exchange)
    client = redis.Redis.from_url(REDIS_URL)
    figures: Figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-million-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.json"
        try:
            beat = procs.jararaca("beat", APP, ns.broker_url, ns.backend_url)
            worker = procs.jararaca(
                "worker", APP, ns.broker_url, ns.backend_url, env={"BENCH_OUT": str(out)}
            )
            beat.wait_ready()
            worker.wait_ready()
            both = {"beat": beat, "worker": worker}
            figures.update({f"{k}_rss_before_mib": rss_mib(p) for k, p in both.items()})

            before = redis_used_memory(client)
            during = CpuWindow(beat.pid)
            during.start()
            enqueued = enqueue(procs, ns, "batch", count, time.time() + PENDING_FOR)
            figures["enqueue_beat_cpu_pct"] = during.stop()
            after = redis_used_memory(client)
            figures["enqueue_rate"] = enqueued["rate"]
            figures["enqueue_s"] = enqueued["seconds"]
            figures["redis_used_delta_mib"] = (after - before) / 2**20
            figures["redis_bytes_per_msg"] = (after - before) / count
            figures.update(pending_figures(client, keys, count))

            time.sleep(SETTLE)
            windows = {k: CpuWindow(p.pid) for k, p in both.items()}
            for window in windows.values():
                window.start()
            time.sleep(idle)
            figures.update({f"{k}_idle_cpu_pct": w.stop() for k, w in windows.items()})
            figures["idle_s"] = windows["beat"].seconds
            figures.update({f"{k}_rss_pending_mib": rss_mib(p) for k, p in both.items()})

            probe(ns, worker, count)
            figures.update({f"{k}_rss_peak_mib": rss_mib(p, "VmHWM") for k, p in both.items()})
            held = pending_figures(client, keys, count)["pending_in_redis"]
            figures["lost_pending"] = count - held
            figures["bad_exits"] = stop_all([worker, beat])
        finally:
            procs.close()
            cleaning = time.monotonic()
            ns.cleanup(app)
            figures["cleanup_s"] = time.monotonic() - cleaning
            client.close()
        records = Records.load([out])
    return {**figures, **probe_figures(count, records)}


def probe_figures(count: int, records: Records) -> Figures:
    """The probes' lateness (the last one's on its own), lost, doubled; pending messages the
    worker handled (``early_runs``, 0 expected: they are due a day later)."""
    late = {
        key: start - due
        for key, due, start in zip(records.keys, records.due, records.start, strict=True)
        if isinstance(key, int) and key >= count
    }
    ms = [seconds * 1000 for seconds in late.values()]
    last = late.get(count + PROBES - 1)
    return {
        "probes": PROBES,
        "probe_late_p50_ms": percentile(ms, 50),
        "probe_late_max_ms": max(ms, default=math.nan),
        "last_probe_late_ms": last * 1000 if last is not None else math.nan,
        "lost": PROBES - len(late),
        "doubled": records.doubled(),
        "early_runs": sum(1 for key in records.keys if not (isinstance(key, int) and key >= count)),
    }


def run(profile: Profile) -> list[Section]:
    count = profile.pending_messages
    label = f"{count:,} delayed messages pending a day ahead, {PROBES} probes due meanwhile"
    section = Section(SCENARIO, f"{SCENARIO}/{count_id(count)}-pending", label)
    section.measure(pending, count, profile.idle_seconds)
    return [section]
