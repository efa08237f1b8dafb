"""delayed-burst: N messages due at one instant, through 1 beat + 1 worker.

The enqueue is timed in its own process (bench.enqueue) and ends before the due instant; the
worker's handler records each message's start and ``MessageContext.due_at``; Redis is watched
for when the beat had dispatched everything (bench.dispatch_watch). The single-call form of
the largest burst is timed without draining it (``enqueue_only``): draining does not depend
on how the messages were enqueued, and it would add minutes to the run.

Each batch burst also has a ``-metrics`` section: the same with ``--metrics-port`` on beat and
worker, both scraped every second during the drain (bench.scrape). Its repeats alternate with
the plain section's (off, on, off, on, ...) so that both see the same load on the shared
machine; the cost of metrics is judged between the two (bench.targets).
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from bench.apps.burst_app import app
from bench.config import Profile
from bench.dispatch_watch import DispatchWatch
from bench.namespace import Namespace
from bench.procs import Proc, Procs, stop_all, wait_progress
from bench.procstat import CpuWindow, RssSampler, find_pid
from bench.results import Section, count_id
from bench.scrape import Scraper, free_ports, metrics_args
from bench.stats import Figures, Records, lateness_ms

APP = "bench.apps.burst_app:app"
# Assumed enqueue rates (msg/s) to pick a due instant the enqueue finishes before; a run
# whose enqueue ends after it says so (``enqueue_overran_s``).
ASSUMED_RATE = {"single": 3_000, "batch": 15_000}


def enqueue(procs: Procs, ns: Namespace, form: str, count: int, due: float) -> dict[str, float]:
    args = ["-m", "bench.enqueue", form, str(count), repr(due), ns.broker_url, ns.backend_url]
    line = procs.spawn("enqueue", args).wait_for(lambda s: s.startswith("{"), 900, "result")
    result: dict[str, float] = json.loads(line)
    return result


def enqueue_only(count: int, form: str) -> Figures:
    ns = Namespace("enqueue")
    with Procs() as procs:
        try:
            enqueued = enqueue(procs, ns, form, count, time.time() + 3600)
        finally:
            procs.close()
            ns.cleanup(app)
    return {"enqueue_rate": enqueued["rate"]}


def burst(
    count: int, form: str, metrics: bool = False, keep: list[Records] | None = None
) -> Figures:
    """One repeat; with ``metrics``, beat and worker serve /metrics and are scraped from their
    readiness until the drain ends (the extra figure ``scrapes``). ``keep`` receives the
    worker's records (for the charts of bench.scenarios.peers)."""
    ns = Namespace("burst")
    beat_port, worker_port = free_ports(2) if metrics else (None, None)
    scraper = Scraper([p for p in (beat_port, worker_port) if p is not None])
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.json"
        try:
            beat = procs.jararaca(
                "beat", APP, ns.broker_url, ns.backend_url, *metrics_args(beat_port)
            )
            worker = procs.jararaca(
                "worker",
                APP,
                ns.broker_url,
                ns.backend_url,
                *metrics_args(worker_port),
                env={"BENCH_OUT": str(out)},
            )
            beat.wait_ready()
            worker.wait_ready()
            scraper.start()
            memory = {p.name.split("-")[0]: RssSampler(p.pid) for p in (beat, worker)}
            for sampler in memory.values():
                sampler.start()
            due = time.time() + 2.0 + count / ASSUMED_RATE[form]
            enqueued = enqueue(procs, ns, form, count, due)
            watch = DispatchWatch(ns.backend_url, ns.exchange, due)
            watch.start()
            busy = drain(beat, worker, count, due)
            emptied = watch.stop()
            if metrics:
                busy["scrapes"] = scraper.stop()
            spent = emptied - due if emptied else math.nan
            busy["dispatched_after_due_s"] = spent
            busy["dispatch_rate"] = count / spent if spent > 0 else math.nan
            figures = {f"{k}_{name}": v for k, s in memory.items() for name, v in s.stop().items()}
            figures.update(busy)
            figures["bad_exits"] = stop_all([worker, beat])
        finally:
            scraper.stop()
            procs.close()
            ns.cleanup(app)
        records = Records.load([out])
    if keep is not None:
        keep.append(records)
    return {**burst_figures(count, due, enqueued, records), **figures}


def drain(beat: Proc, worker: Proc, count: int, due: float) -> Figures:
    """Wait from the due instant until the worker handled ``count`` messages; the CPU that
    beat, worker and RabbitMQ used meanwhile (% of one core)."""
    time.sleep(max(0.0, due - time.time()))
    pids = {"beat": beat.pid, "worker": worker.pid, "rabbitmq": find_pid("beam.smp")}
    windows = {name: CpuWindow(pid) for name, pid in pids.items() if pid}
    for window in windows.values():
        window.start()
    wait_progress([worker], count, stall=30, limit=900)
    # A process not found (RabbitMQ's beam.smp not visible) is a figure not measured: NaN.
    cpu = {name: window.stop() for name, window in windows.items()}
    return {f"{name}_cpu_pct": cpu.get(name, math.nan) for name in pids}


def burst_figures(count: int, due: float, enqueued: dict[str, float], records: Records) -> Figures:
    """Enqueue rate, drain rate (messages / (last start - due)), lateness, lost, doubled."""
    unique = len(set(records.keys))
    last = max(records.start, default=math.nan)
    return {
        "enqueue_rate": enqueued["rate"],
        "enqueue_overran_s": max(0.0, enqueued["finished_at"] - due),
        "drain_rate": unique / (last - due) if unique and last > due else math.nan,
        "last_after_due_s": last - due,
        "lost": count - unique,
        "doubled": records.doubled(),
        **lateness_ms(records.late_seconds()),
    }


def run(profile: Profile) -> list[Section]:
    sections = []
    largest = max(profile.burst_sizes)
    for count in profile.burst_sizes:
        repeats = profile.burst_repeats_large if count >= 100_000 else profile.repeats
        batch = Section("delayed-burst", f"delayed-burst/{count_id(count)}-batch", label(count))
        batch_metrics = Section(
            "delayed-burst",
            f"{batch.id}-metrics",
            f"{label(count)}, --metrics-port, scraped every second",
        )
        for _ in range(repeats):
            batch.measure(burst, count, "batch")
            batch_metrics.measure(burst, count, "batch", metrics=True)
        sections += [batch, batch_metrics]
        only = count == largest and count >= 100_000
        variant = f"{count_id(count)}-single" + ("-enqueue-only" if only else "")
        single = Section(
            "delayed-burst",
            f"delayed-burst/{variant}",
            label(count, "single") + (" (enqueue only)" if only else ""),
        )
        for _ in range(repeats):
            single.measure(enqueue_only if only else burst, count, "single")
        sections.append(single)
    return sections


def label(count: int, form: str = "batch") -> str:
    return f"{count:,} messages, {form} enqueue"
