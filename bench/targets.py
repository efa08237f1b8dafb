"""The targets of the performance issues (the second round's where it raised the first's), each
judged on one section: named by scenario id and section id.

A target is matched to the section whose ``scenario`` and ``id`` are the target's, exactly (a
section id is ``<scenario>/<variant>``, set where the scenario creates the section); a target
whose section this run did not produce is "not run". Judging is in bench.verdict.

A target with a ``baseline`` is relative to another section of the same scenario, measured in
the same run: its limit is ``limit x`` (``relation`` "ratio") or ``limit +`` ("plus") the
baseline section's median of the same figure. The cost of metrics is judged that way, the
``-metrics`` section against the plain one whose repeats it alternates with.
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
RATIO, PLUS = "ratio", "plus"
RELATIONS = (RATIO, PLUS)


@dataclass(frozen=True)
class Target:
    scenario: str  # the scenario id (a key of bench.run.SCENARIOS)
    section: str  # the section id, "<scenario>/<variant>"
    figure: str
    op: str  # one of OPS
    limit: float
    text: str
    of_ceiling: bool = False  # limit is a fraction of the ceiling measured in the same run
    # A section of the same scenario (so always run with it): the limit is relative to its
    # median of the same figure, by ``relation``.
    baseline: str | None = None
    relation: str = RATIO

    def __post_init__(self) -> None:
        if not self.section.startswith(f"{self.scenario}/"):
            raise ValueError(f"target section {self.section!r} is not of {self.scenario!r}")
        if self.op not in OPS:
            raise ValueError(f"target op {self.op!r} is not one of {OPS}")
        if self.relation not in RELATIONS:
            raise ValueError(f"target relation {self.relation!r} is not one of {RELATIONS}")
        if self.baseline is not None:
            if not self.baseline.startswith(f"{self.scenario}/"):
                raise ValueError(f"baseline {self.baseline!r} is not of {self.scenario!r}")
            if self.of_ceiling or self.baseline == self.section:
                raise ValueError(f"target {self.text!r}: a baseline of its own or the ceiling")

    def limit_from(self, baseline: float) -> float:
        """The limit, given the baseline section's median of the figure."""
        return self.limit * baseline if self.relation == RATIO else baseline + self.limit


CRON = ("cron-precision", "cron-precision/1-beat-1-worker")
CRON_METRICS = ("cron-precision", "cron-precision/1-beat-1-worker-metrics")
B10 = ("delayed-burst", "delayed-burst/10k-batch")
B10_METRICS = ("delayed-burst", "delayed-burst/10k-batch-metrics")
B10_SINGLE = ("delayed-burst", "delayed-burst/10k-single")
B100 = ("delayed-burst", "delayed-burst/100k-batch")
B100_METRICS = ("delayed-burst", "delayed-burst/100k-batch-metrics")
MANY = ("many-schedules", "many-schedules/100k-actions")
MANY_DISTINCT = ("many-schedules", "many-schedules/100k-distinct-crons")
ONE_WORKER = ("worker-throughput", "worker-throughput/1-worker")
EMBEDDED = ("embedded", "embedded/burst-100k-batch")
SQLITE_CRON = ("embedded-sqlite", "embedded-sqlite/cron")
SQLITE_BURST = ("embedded-sqlite", "embedded-sqlite/burst-100k-batch")
MILLION = ("million-pending", "million-pending/1000k-pending")
RSS = RSS_BOUND_MIB

TARGETS = (
    Target(*CRON, "late_p50_ms", "<=", 2, "cron p50 <= 2 ms"),
    Target(*CRON, "late_p99_ms", "<=", 5, "cron p99 <= 5 ms"),
    Target(*CRON, "late_max_ms", "<=", 20, "cron max <= 20 ms"),
    Target(*CRON, "missed", "==", 0, "cron: nothing missed"),
    Target(*CRON, "doubled", "==", 0, "cron: nothing doubled"),
    Target(
        *CRON_METRICS,
        "late_p50_ms",
        "<=",
        1,
        "cron with metrics: p50 <= p50 without + 1 ms",
        baseline=CRON[1],
        relation=PLUS,
    ),
    Target(*CRON_METRICS, "missed", "==", 0, "cron with metrics: nothing missed"),
    Target(*CRON_METRICS, "doubled", "==", 0, "cron with metrics: nothing doubled"),
    Target(*B10, "enqueue_rate", ">=", 50_000, "burst 10k: enqueue >= 50,000 msg/s (batch)"),
    Target(*B10, "drain_rate", ">=", 0.75, "burst 10k: drain >= 75% of ceiling", of_ceiling=True),
    Target(*B10, "last_after_due_s", "<=", 3, "burst 10k: last delivery <= 3 s after due"),
    Target(*B10, "lost", "==", 0, "burst 10k batch: nothing lost"),
    Target(*B10, "doubled", "==", 0, "burst 10k batch: nothing doubled"),
    Target(
        *B10_METRICS,
        "drain_rate",
        ">=",
        0.95,
        "burst 10k with metrics: drain >= 95% of without",
        baseline=B10[1],
    ),
    Target(*B10_METRICS, "lost", "==", 0, "burst 10k batch with metrics: nothing lost"),
    Target(*B10_METRICS, "doubled", "==", 0, "burst 10k batch with metrics: nothing doubled"),
    Target(*B10_SINGLE, "lost", "==", 0, "burst 10k single: nothing lost"),
    Target(*B10_SINGLE, "doubled", "==", 0, "burst 10k single: nothing doubled"),
    Target(*B100, "lost", "==", 0, "burst 100k: all delivered"),
    Target(*B100_METRICS, "lost", "==", 0, "burst 100k with metrics: all delivered"),
    Target(*B100, "beat_rss_peak_mib", "<=", RSS, f"burst 100k: beat RSS <= {RSS:.0f} MiB"),
    Target(*B100, "worker_rss_peak_mib", "<=", RSS, f"burst 100k: worker RSS <= {RSS:.0f} MiB"),
    Target(*ONE_WORKER, "handled_rate", ">=", 0.75, "1 worker: >= 75% of ceiling", of_ceiling=True),
    Target(*MANY, "idle_cpu_pct", "<", 1, "100k actions: idle beat CPU < 1% of a core"),
    Target(*MANY, "startup_s", "<", 5, "100k actions: beat start-up < 5 s"),
    Target(*MANY, "late_p99_ms", "<=", 50, "10k actions at one slot: p99 <= 50 ms"),
    Target(*MANY_DISTINCT, "idle_cpu_pct", "<", 1, "100k distinct crons: idle beat CPU < 1%"),
    Target(*MANY_DISTINCT, "startup_s", "<", 5, "100k distinct crons: beat start-up < 5 s"),
    Target(*MANY_DISTINCT, "idle_rss_peak_mib", "<", 200, "100k distinct crons: RSS < 200 MiB"),
    Target(*EMBEDDED, "drain_rate", ">=", 50_000, "embedded burst 100k: drain >= 50,000 msg/s"),
    Target(*EMBEDDED, "enqueue_rate", ">=", 50_000, "embedded 100k: enqueue >= 50,000 msg/s"),
    Target(*SQLITE_CRON, "late_p99_ms", "<=", 10, "embedded SQLite: cron p99 <= 10 ms"),
    Target(*SQLITE_BURST, "drain_rate", ">=", 10_000, "SQLite burst 100k: drain >= 10,000 msg/s"),
    Target(*MILLION, "lost", "==", 0, "1M pending: every probe delivered"),
    Target(*MILLION, "beat_rss_peak_mib", "<=", RSS, f"1M pending: beat RSS <= {RSS:.0f} MiB"),
    # redis-cluster (bench.scenarios.redis_cluster): its section ids carry no count, so this
    # is judged in the quick run as in the full one, always against plain Redis of that run.
    Target(
        "redis-cluster",
        "redis-cluster/burst-cluster",
        "drain_rate",
        ">=",
        0.8,
        "Cluster not slower than plain Redis by more than 20% (burst drain rate)",
        baseline="redis-cluster/burst-plain",
    ),
)
