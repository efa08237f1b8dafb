"""cron-precision: three seconds crons (every 1, 2 and 5 s) for a while, 1 beat + 1 worker.

Lateness of a fire = handler start - ``ScheduledRun.scheduled_at``. A slot of the window
[ready + 2 s, stop - 2 s] with no run is missed; a fire id run twice is doubled.
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


def cron_precision(seconds: float) -> Figures:
    ns = Namespace("cron")
    with tempfile.TemporaryDirectory(prefix="bench-cron-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.json"
        try:
            beat = procs.jararaca("beat", APP, ns.broker_url, ns.backend_url)
            worker = procs.jararaca(
                "worker", APP, ns.broker_url, ns.backend_url, env={"BENCH_OUT": str(out)}
            )
            beat.wait_ready()
            worker.wait_ready()
            begin = time.time() + MARGIN
            time.sleep(seconds + 2 * MARGIN)
            end = time.time() - MARGIN
            bad_exits = stop_all([beat, worker])
        finally:
            procs.close()
            ns.cleanup(app)
        return {**judge(Records.load([out]), begin, end), "bad_exits": bad_exits}


def run(profile: Profile) -> list[Section]:
    label = f"{profile.cron_seconds:.0f} s, 1 beat + 1 worker"
    section = Section("cron-precision", "cron-precision/1-beat-1-worker", label)
    for _ in range(profile.slow_repeats):
        section.measure(cron_precision, profile.cron_seconds)
    return [section]
