"""embedded: cron-precision and delayed-burst in the embedded ``Scheduler`` (``memory://``),
in a process of its own (bench.embedded_run): no servers, beat and worker in one event loop."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.config import Profile
from bench.procs import Procs
from bench.results import Section
from bench.scenarios.cron_precision import MARGIN, judge
from bench.scenarios.delayed_burst import burst_figures
from bench.stats import Figures, Records


def embedded_cron(seconds: float) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-emb-") as tmp, Procs() as procs:
        out = Path(tmp) / "records.json"
        proc = procs.spawn(
            "embedded",
            ["-m", "bench.embedded_run", "cron", str(seconds + 2 * MARGIN)],
            {"BENCH_OUT": str(out)},
        )
        ready = float(proc.wait_for(lambda s: s.startswith("READY "), 60, "READY").split()[1])
        stopped = float(
            proc.wait_for(lambda s: s.startswith("STOP "), seconds + 60, "STOP").split()[1]
        )
        proc.popen.wait(timeout=60)
        return judge(Records.load([out]), ready + MARGIN, stopped - MARGIN)


def embedded_burst(count: int, form: str) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-emb-") as tmp, Procs() as procs:
        out = Path(tmp) / "records.json"
        proc = procs.spawn(
            "embedded",
            ["-m", "bench.embedded_run", "burst", str(count), form],
            {"BENCH_OUT": str(out)},
        )
        result = json.loads(proc.wait_for(lambda s: s.startswith("{"), 900, "result"))
        proc.popen.wait(timeout=60)
        records = Records.load([out])
    figures = burst_figures(count, result["due"], result, records)
    figures["rss_peak_mib"] = result["rss_peak_mib"]
    return figures


def run(profile: Profile) -> list[Section]:
    cron = Section("embedded", f"cron-precision {profile.cron_seconds:.0f} s")
    for _ in range(profile.slow_repeats):
        cron.runs.append(embedded_cron(profile.cron_seconds))
    sections = [cron]
    for form in ("batch", "single"):
        burst = Section("embedded", f"delayed-burst {profile.embedded_burst:,}, {form} enqueue")
        for _ in range(profile.repeats):
            burst.runs.append(embedded_burst(profile.embedded_burst, form))
        sections.append(burst)
    return sections
