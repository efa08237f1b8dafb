"""The issue's targets, each judged on one section: named by scenario id and section id.

A target is matched to the section whose ``scenario`` and ``id`` are the target's, exactly (a
section id is ``<scenario>/<variant>``, set where the scenario creates the section); a target
whose section this run did not produce is "not run". Judging is in bench.verdict.
"""

from __future__ import annotations

from dataclasses import dataclass

RSS_BOUND_MIB = 256.0  # "RSS bounded": far below what holding 100,000 messages would take

# The broker's ceiling: targets ``of_ceiling`` are fractions of this figure, measured in the
# same run (bench.run adds the ceiling scenario whenever such a target's scenario runs).
CEILING_SCENARIO = "ceiling"
CEILING_SECTION = "ceiling/aio-pika"
CEILING_FIGURE = "end_to_end_rate"

OPS = ("<=", ">=", "<", "==")


@dataclass(frozen=True)
class Target:
    scenario: str  # the scenario id (a key of bench.run.SCENARIOS)
    section: str  # the section id, "<scenario>/<variant>"
    figure: str
    op: str  # one of OPS
    limit: float
    text: str
    of_ceiling: bool = False  # limit is a fraction of the ceiling measured in the same run

    def __post_init__(self) -> None:
        if not self.section.startswith(f"{self.scenario}/"):
            raise ValueError(f"target section {self.section!r} is not of {self.scenario!r}")
        if self.op not in OPS:
            raise ValueError(f"target op {self.op!r} is not one of {OPS}")


CRON = ("cron-precision", "cron-precision/1-beat-1-worker")
B10 = ("delayed-burst", "delayed-burst/10k-batch")
B10_SINGLE = ("delayed-burst", "delayed-burst/10k-single")
B100 = ("delayed-burst", "delayed-burst/100k-batch")
MANY = ("many-schedules", "many-schedules/100k-actions")
MANY_DISTINCT = ("many-schedules", "many-schedules/100k-distinct-crons")
EMBEDDED = ("embedded", "embedded/burst-100k-batch")
SQLITE_CRON = ("embedded-sqlite", "embedded-sqlite/cron")
SQLITE_BURST = ("embedded-sqlite", "embedded-sqlite/burst-100k-batch")
RSS = RSS_BOUND_MIB

TARGETS = (
    Target(*CRON, "late_p99_ms", "<=", 10, "cron p99 <= 10 ms"),
    Target(*CRON, "late_max_ms", "<=", 50, "cron max <= 50 ms"),
    Target(*CRON, "missed", "==", 0, "cron: nothing missed"),
    Target(*CRON, "doubled", "==", 0, "cron: nothing doubled"),
    Target(*B10, "enqueue_rate", ">=", 10_000, "burst 10k: enqueue >= 10,000 msg/s (batch)"),
    Target(*B10, "drain_rate", ">=", 0.5, "burst 10k: drain >= 50% of ceiling", of_ceiling=True),
    Target(*B10, "last_after_due_s", "<=", 5, "burst 10k: last delivery <= 5 s after due"),
    Target(*B10, "lost", "==", 0, "burst 10k batch: nothing lost"),
    Target(*B10, "doubled", "==", 0, "burst 10k batch: nothing doubled"),
    Target(*B10_SINGLE, "lost", "==", 0, "burst 10k single: nothing lost"),
    Target(*B10_SINGLE, "doubled", "==", 0, "burst 10k single: nothing doubled"),
    Target(*B100, "lost", "==", 0, "burst 100k: all delivered"),
    Target(*B100, "beat_rss_peak_mib", "<=", RSS, f"burst 100k: beat RSS <= {RSS:.0f} MiB"),
    Target(*B100, "worker_rss_peak_mib", "<=", RSS, f"burst 100k: worker RSS <= {RSS:.0f} MiB"),
    Target(*MANY, "idle_cpu_pct", "<", 2, "100k actions: idle beat CPU < 2% of a core"),
    Target(*MANY, "startup_s", "<", 10, "100k actions: beat start-up < 10 s"),
    Target(*MANY_DISTINCT, "idle_cpu_pct", "<", 2, "100k distinct crons: idle beat CPU < 2%"),
    Target(*MANY_DISTINCT, "startup_s", "<", 10, "100k distinct crons: beat start-up < 10 s"),
    Target(*EMBEDDED, "drain_rate", ">=", 20_000, "embedded burst 100k: drain >= 20,000 msg/s"),
    Target(*SQLITE_CRON, "late_p99_ms", "<=", 10, "embedded SQLite: cron p99 <= 10 ms"),
    Target(*SQLITE_BURST, "drain_rate", ">=", 10_000, "SQLite burst 100k: drain >= 10,000 msg/s"),
)
