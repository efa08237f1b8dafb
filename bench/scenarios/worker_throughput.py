"""worker-throughput: a queue pre-loaded with N messages, drained by 1 or 2 workers whose
handler only records its start. Rate = messages handled per second over the central 90% of
the start times (the 5th to the 95th percentile), so that the workers' staggered start-up and
the last stragglers do not count."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

from bench.apps.burst_app import app
from bench.config import Profile
from bench.namespace import Namespace
from bench.procs import Procs, stop_all, wait_progress
from bench.procstat import CpuWindow
from bench.results import Section
from bench.stats import Figures, Records

APP = "bench.apps.burst_app:app"


def central_rate(starts: list[float]) -> float:
    ordered = sorted(starts)
    if len(ordered) < 20:
        return math.nan
    low, high = int(0.05 * len(ordered)), int(0.95 * len(ordered))
    span = ordered[high] - ordered[low]
    return (high - low) / span if span > 0 else math.nan


def throughput(count: int, workers: int) -> Figures:
    ns = Namespace("throughput")
    with tempfile.TemporaryDirectory(prefix="bench-tp-") as tmp, Procs() as procs:
        outs = [Path(tmp) / f"worker-{i}.json" for i in range(workers)]
        try:
            loader = procs.spawn(
                "publish",
                ["-m", "bench.enqueue", "publish", str(count), "0", ns.broker_url, ns.backend_url],
            )
            loaded = json.loads(loader.wait_for(lambda s: s.startswith("{"), 600, "result"))
            running = [
                procs.jararaca(
                    "worker", APP, ns.broker_url, ns.backend_url, env={"BENCH_OUT": str(out)}
                )
                for out in outs
            ]
            for proc in running:
                proc.wait_ready()
            cpu = [CpuWindow(p.pid) for p in running]
            for window in cpu:
                window.start()
            wait_progress(running, count, stall=30, limit=600)
            busy = [window.stop() for window in cpu]
            bad_exits = stop_all(running)
        finally:
            procs.close()
            ns.cleanup(app)
        records = Records.load(outs)
    unique = len(set(records.keys))
    return {
        "handled_rate": central_rate(records.start),
        "publish_rate": loaded["rate"],
        "worker_cpu_pct": sum(busy) / len(busy),
        "lost": count - unique,
        "doubled": records.doubled(),
        "bad_exits": bad_exits,
    }


def run(profile: Profile) -> list[Section]:
    sections = []
    for workers in (1, 2):
        label = f"{profile.throughput_messages:,} messages, {workers} worker(s)"
        section_id = f"worker-throughput/{workers}-worker" + ("s" if workers > 1 else "")
        section = Section("worker-throughput", section_id, label)
        for _ in range(profile.repeats):
            section.measure(throughput, profile.throughput_messages, workers)
        sections.append(section)
    return sections
