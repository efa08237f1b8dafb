"""embedded: cron-precision and delayed-burst in the embedded ``Scheduler`` (``memory://``),
in a process of its own (bench.embedded_run): no servers, beat and worker in one event loop."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from bench.config import Profile
from bench.procs import Procs
from bench.results import Section, count_id
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
        bad_exits = int(proc.wait_exit(60) != 0)
        figures = judge(Records.load([out]), ready + MARGIN, stopped - MARGIN)
    return {**figures, "bad_exits": bad_exits}


def embedded_burst(count: int, form: str) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-emb-") as tmp, Procs() as procs:
        out = Path(tmp) / "records.json"
        proc = procs.spawn(
            "embedded",
            ["-m", "bench.embedded_run", "burst", str(count), form],
            {"BENCH_OUT": str(out)},
        )
        result = json.loads(proc.wait_for(lambda s: s.startswith("{"), 900, "result"))
        bad_exits = int(proc.wait_exit(60) != 0)
        records = Records.load([out])
    figures = burst_figures(count, result["due"], result, records)
    figures["rss_peak_mib"] = result["rss_peak_mib"]
    figures["bad_exits"] = bad_exits
    return figures


def run(profile: Profile) -> list[Section]:
    cron = Section("embedded", "embedded/cron", f"cron-precision {profile.cron_seconds:.0f} s")
    for _ in range(profile.slow_repeats):
        cron.measure(embedded_cron, profile.cron_seconds)
    sections = [cron]
    count = profile.embedded_burst
    for form in ("batch", "single"):
        label = f"delayed-burst {count:,}, {form} enqueue"
        burst = Section("embedded", f"embedded/burst-{count_id(count)}-{form}", label)
        for _ in range(profile.repeats):
            burst.measure(embedded_burst, count, form)
        sections.append(burst)
    return sections
