"""cron-precision: three seconds crons (every 1, 2 and 5 s) for a while, 1 beat + 1 worker.

Lateness of a fire = handler start - ``ScheduledRun.scheduled_at``. A slot of the window
[ready + 2 s, stop - 2 s] with no run is missed; a fire id run twice is doubled.

The ``-metrics`` section runs the same with ``--metrics-port`` on both processes and both
endpoints scraped every second (bench.scrape); its repeats alternate with the plain section's
(off, on, off, on, ...) so that both see the same load on the shared machine, and the cost of
metrics is judged between the two (bench.targets).
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.apps.cron_app import CRONS, app
from bench.config import Profile
from bench.namespace import Namespace
from bench.procs import Procs, stop_all
from bench.results import Section
from bench.scrape import Scraper, free_ports, metrics_args
from bench.stats import Figures, Records, lateness_ms
from jararaca.cron import Cron

APP = "bench.apps.cron_app:app"
MARGIN = 2.0  # seconds after readiness and before stopping that are not judged


def expected_slots(begin: float, end: float) -> set[str]:
    """The fire ids every action of the app should run in [begin, end] (epoch seconds)."""
    slots: set[str] = set()
    start = datetime.fromtimestamp(begin - 0.001, UTC)
    for name, expr in CRONS.items():
        for slot in Cron(expr).iter_after(start):
            if slot.timestamp() > end:
                break
            slots.add(f"{name}@{round(slot.timestamp() * 1000)}")
    return slots


def judge(records: Records, begin: float, end: float) -> Figures:
    """Lateness of the runs of the window, and its missed and doubled slots."""
    expected = expected_slots(begin, end)
    late = [
        s - d
        for k, s, d in zip(records.keys, records.start, records.due, strict=True)
        if k in expected
    ]
    return {
        "runs": len(late),
        **lateness_ms(late),
        "missed": len(expected - set(records.keys)),
        "doubled": records.doubled(),
    }


def cron_precision(
    seconds: float, metrics: bool = False, keep: list[Records] | None = None
) -> Figures:
    """One repeat; with ``metrics``, both processes serve /metrics and are scraped meanwhile
    (the extra figure ``scrapes``). ``keep`` receives the worker's records (for the charts of
    bench.scenarios.peers)."""
    ns = Namespace("cron")
    beat_port, worker_port = free_ports(2) if metrics else (None, None)
    with tempfile.TemporaryDirectory(prefix="bench-cron-") as tmp, Procs() as procs:
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
            with Scraper([p for p in (beat_port, worker_port) if p is not None]) as scraper:
                begin = time.time() + MARGIN
                time.sleep(seconds + 2 * MARGIN)
                end = time.time() - MARGIN
                scraped = {"scrapes": scraper.stop()} if metrics else {}
            bad_exits = stop_all([beat, worker])
        finally:
            procs.close()
            ns.cleanup(app)
        records = Records.load([out])
        if keep is not None:
            keep.append(records)
        return {**judge(records, begin, end), "bad_exits": bad_exits, **scraped}


def run(profile: Profile) -> list[Section]:
    label = f"{profile.cron_seconds:.0f} s, 1 beat + 1 worker"
    plain = Section("cron-precision", "cron-precision/1-beat-1-worker", label)
    with_metrics = Section(
        "cron-precision",
        "cron-precision/1-beat-1-worker-metrics",
        f"{label}, --metrics-port, scraped every second",
    )
    for _ in range(profile.slow_repeats):
        plain.measure(cron_precision, profile.cron_seconds)
        with_metrics.measure(cron_precision, profile.cron_seconds, metrics=True)
    return [plain, with_metrics]
