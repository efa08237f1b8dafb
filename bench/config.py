"""Where the servers are and how big each scenario is (full run or ``--quick``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "bench" / "results"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("BENCH_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


@dataclass(frozen=True)
class Profile:
    """Durations (seconds) and counts of one bench run."""

    name: str
    repeats: int  # of the quick-to-run scenarios (ceiling, bursts, throughput)
    slow_repeats: int  # of the minute-long ones (cron precision)
    ceiling_messages: int
    cron_seconds: float
    burst_sizes: tuple[int, ...]
    burst_repeats_large: int  # repeats of the largest burst
    schedule_counts: tuple[int, ...]  # apps whose actions share crons (about 76 per cron)
    distinct_cron_counts: tuple[int, ...]  # apps whose actions all have crons of their own
    shared_slot_actions: int
    cluster_burst: int  # redis-cluster: delayed messages of its burst, on each backend
    idle_seconds: float
    throughput_messages: int
    embedded_burst: int
    pending_messages: int  # million-pending: delayed messages pending a day ahead


FULL = Profile(
    name="full",
    repeats=3,
    slow_repeats=3,
    ceiling_messages=20_000,
    cron_seconds=60.0,
    burst_sizes=(10_000, 100_000),
    burst_repeats_large=1,
    schedule_counts=(10_000, 100_000),
    distinct_cron_counts=(100_000,),
    shared_slot_actions=10_000,
    cluster_burst=100_000,
    idle_seconds=60.0,
    throughput_messages=20_000,
    embedded_burst=100_000,
    pending_messages=1_000_000,
)

QUICK = Profile(
    name="quick",
    repeats=1,
    slow_repeats=1,
    ceiling_messages=5_000,
    cron_seconds=8.0,
    burst_sizes=(2_000,),
    burst_repeats_large=1,
    schedule_counts=(1_000, 10_000),
    distinct_cron_counts=(5_000,),
    shared_slot_actions=500,
    cluster_burst=5_000,
    idle_seconds=5.0,
    throughput_messages=3_000,
    embedded_burst=10_000,
    pending_messages=20_000,
)
