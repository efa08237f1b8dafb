"""The issue's targets, judged on the medians (benchmarks never fail on timing)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from bench.results import Section

RSS_BOUND_MIB = 256.0  # "RSS bounded": far below what holding 100,000 messages would take


@dataclass(frozen=True)
class Target:
    scenario: str
    label: str  # the section's label starts with this
    figure: str
    op: str  # "<=", ">=", "<" or "=="
    limit: float
    text: str
    of_ceiling: bool = False  # limit is a fraction of the measured ceiling


CRON = ("cron-precision", "")
B10 = ("delayed-burst", "10,000 messages, batch")
B10_ANY = ("delayed-burst", "10,000 messages")
B100 = ("delayed-burst", "100,000 messages, batch")
MANY = ("many-schedules", "100,000 actions")
EMBEDDED = ("embedded", "delayed-burst 100,000, batch")
RSS = RSS_BOUND_MIB

TARGETS = (
    Target(*CRON, "late_p99_ms", "<=", 10, "cron p99 <= 10 ms"),
    Target(*CRON, "late_max_ms", "<=", 50, "cron max <= 50 ms"),
    Target(*CRON, "missed", "==", 0, "cron: nothing missed"),
    Target(*CRON, "doubled", "==", 0, "cron: nothing doubled"),
    Target(*B10, "enqueue_rate", ">=", 10_000, "burst 10k: enqueue >= 10,000 msg/s (batch)"),
    Target(*B10, "drain_rate", ">=", 0.5, "burst 10k: drain >= 50% of ceiling", of_ceiling=True),
    Target(*B10, "last_after_due_s", "<=", 5, "burst 10k: last delivery <= 5 s after due"),
    Target(*B10_ANY, "lost", "==", 0, "burst 10k: nothing lost"),
    Target(*B10_ANY, "doubled", "==", 0, "burst 10k: nothing doubled"),
    Target(*B100, "lost", "==", 0, "burst 100k: all delivered"),
    Target(*B100, "beat_rss_peak_mib", "<=", RSS, f"burst 100k: beat RSS <= {RSS:.0f} MiB"),
    Target(*B100, "worker_rss_peak_mib", "<=", RSS, f"burst 100k: worker RSS <= {RSS:.0f} MiB"),
    Target(*MANY, "idle_cpu_pct", "<", 2, "100k actions: idle beat CPU < 2% of a core"),
    Target(*MANY, "startup_s", "<", 10, "100k actions: beat start-up < 10 s"),
    Target(*EMBEDDED, "drain_rate", ">=", 20_000, "embedded burst 100k: drain >= 20,000 msg/s"),
)


def _holds(value: float, op: str, limit: float) -> bool:
    return {
        "<=": value <= limit,
        ">=": value >= limit,
        "<": value < limit,
        "==": value == limit,
    }[op]


def judge(sections: list[Section], ceiling: float | None) -> list[dict[str, Any]]:
    """One verdict per target: its value (the median, or the worst run for failure counts)
    and whether it is met; ``met`` is None when this run did not measure it."""
    verdicts = []
    for target in TARGETS:
        limit = target.limit * ceiling if target.of_ceiling and ceiling else target.limit
        values = [
            s.median.get(target.figure, math.nan)
            for s in sections
            if s.scenario == target.scenario and s.label.startswith(target.label)
        ]
        values = [v for v in values if not math.isnan(v)]
        met: bool | None = None
        value = math.nan
        if values and not (target.of_ceiling and not ceiling):
            # Of several matching sections, the least favourable one decides.
            value = max(values) if target.op in ("<=", "<", "==") else min(values)
            met = _holds(value, target.op, limit)
        verdicts.append(
            {
                "target": target.text,
                "figure": target.figure,
                "value": value,
                "limit": limit,
                "met": met,
            }
        )
    return verdicts
