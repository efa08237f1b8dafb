"""many-schedules: a beat with 10,000 or 100,000 actions (bench.apps.many_app).

Two kinds of app. *Shared crons* (``many-schedules/<n>-actions``): about 76 actions per cron
expression, and ``shared_slot_actions`` of them due at one slot. *Distinct crons*
(``many-schedules/<n>-distinct-crons``): every action has a cron expression of its own, none
due during the run (no shared slot).

Per app: how long building the app alone takes (``app_build_s``) and how many distinct cron
expressions it has (``distinct_crons``), the beat's start-up (spawn to its "beat started"
line) and when it settled (spawn to the first half second it used under 10% of a core: work
done after announcing itself counts there), its idle CPU and RSS over a window in which
nothing fires. With a shared slot, its actions are then run by 1 worker: their lateness
(handler start - scheduled instant), missed and doubled.
"""

from __future__ import annotations

import math
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.apps.many_app import make_app
from bench.config import Profile
from bench.namespace import Namespace
from bench.procs import Procs, stop_all, wait_progress
from bench.procstat import CpuWindow, RssSampler, wait_quiet
from bench.results import Section, count_id
from bench.stats import Figures, Records, lateness_ms

APP = "bench.apps.many_app:make_app"
SETTLE = 2.0  # seconds after readiness before the idle window opens


def build(procs: Procs, env: dict[str, str]) -> tuple[float, int]:
    """How long importing the app module and building the app takes alone (no jararaca
    process), and how many distinct cron expressions the app has."""
    proc = procs.spawn("build", ["-m", "bench.apps.many_app"], env)
    line = proc.wait_for(lambda s: s.startswith("BUILT "), 300, "BUILT line")
    fields = line.split()
    return float(fields[2]), int(fields[3])


def many(count: int, shared: int, idle: float, distinct: bool = False) -> Figures:
    ns = Namespace("many")
    env = {
        "BENCH_ACTIONS": str(count),
        "BENCH_SHARED": str(shared),
        "BENCH_DISTINCT": "1" if distinct else "0",
    }
    with tempfile.TemporaryDirectory(prefix="bench-many-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.json"
        try:
            built_s, crons = build(procs, env)
            figures: Figures = {"app_build_s": built_s, "distinct_crons": crons}
            slot: float | None = None
            if shared:
                # The shared slot comes after a generous guess of the start-up, then the window.
                guess = 5 + 3 * built_s
                slot = math.ceil(time.time() + guess + SETTLE + idle + 3)
                at = datetime.fromtimestamp(slot, UTC)
                env["BENCH_SLOT"] = f"{at.second} {at.minute} {at.hour}"
            beat = procs.jararaca("beat", APP, ns.broker_url, ns.backend_url, env=env)
            worker = procs.jararaca(
                "worker", APP, ns.broker_url, ns.backend_url, env={**env, "BENCH_OUT": str(out)}
            )
            figures["startup_s"] = beat.wait_ready(timeout=600)
            figures["worker_startup_s"] = worker.wait_ready(timeout=600)
            figures["settled_s"] = wait_quiet(beat.pid) - beat.started
            time.sleep(SETTLE)
            window, memory = CpuWindow(beat.pid), RssSampler(beat.pid, period=1.0)
            window.start()
            memory.start()
            time.sleep(idle if slot is None else max(1.0, min(idle, slot - 1 - time.time())))
            figures["idle_cpu_pct"] = window.stop()
            figures["idle_s"] = window.seconds
            figures.update({f"idle_{k}": v for k, v in memory.stop().items()})
            if slot is not None:
                time.sleep(max(0.0, slot - time.time()))
                wait_progress([worker], shared, stall=30, limit=600)
            figures["bad_exits"] = stop_all([beat, worker])
        finally:
            procs.close()
            ns.cleanup(make_app())
        records = Records.load([out])
    if shared:
        unique = len(set(records.keys))
        figures.update(lateness_ms(records.late_seconds()))
        figures.update({"shared_runs": unique, "missed": shared - unique})
    else:
        figures["stray_runs"] = len(records)  # no action is due during the run: 0 expected
    figures["doubled"] = records.doubled()
    return figures


def run(profile: Profile) -> list[Section]:
    sections = []
    for count in profile.schedule_counts:
        label = f"{count:,} actions, ~76 per cron, {profile.shared_slot_actions:,} at one slot"
        section = Section("many-schedules", f"many-schedules/{count_id(count)}-actions", label)
        section.measure(many, count, profile.shared_slot_actions, profile.idle_seconds)
        sections.append(section)
    for count in profile.distinct_cron_counts:
        label = f"{count:,} actions, distinct crons"
        section_id = f"many-schedules/{count_id(count)}-distinct-crons"
        section = Section("many-schedules", section_id, label)
        section.measure(many, count, 0, profile.idle_seconds, distinct=True)
        sections.append(section)
    return sections
