"""peers: jararaca beside Celery 5 (beat + celery-redbeat), taskiq (taskiq-aio-pika) and
jararaca 0.5.13 from PyPI (the upstream release this project is measured against), in the
same run, on the same servers, with the same workloads.

    ./scripts/bench-peers-venv && ./scripts/bench-v0513-venv   # their virtualenvs, once
    ./scripts/bench --only peers                                 # about 20 minutes

Two workloads, each repeat running jararaca, then Celery, then taskiq, then jararaca 0.5.13
(so that all of them see the same load on the shared machine): three seconds crons (every 1,
2 and 5 s) for the profile's cron duration, and a burst of delayed messages all due at one
instant (the profile's smallest burst size: 10,000 in the full run). jararaca's figures come
from bench.scenarios.cron_precision and delayed_burst (the burst in its single form: one
``delay()`` per message, as the peers send theirs); the peers' from peers_cron and
peers_burst. Each peer section shows each figure's ratio to jararaca's of the same run
(bench.table), and its lost, doubled and missed are figures, not failures of the run
(``Section.counts_fail``). What a peer cannot do is a section of its own, ``cannot``.

The per-message samples (lateness, start after due) go to
``bench/results/peers-samples-<UTC timestamp>.json`` for bench.charts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from bench.config import RESULTS_DIR, Profile
from bench.results import Section, count_id
from bench.scenarios import cron_precision, delayed_burst
from bench.scenarios.peers_burst import peer_burst
from bench.scenarios.peers_common import CELERY, JARARACA_0513, PEERS, TASKIQ, require_venv
from bench.scenarios.peers_cron import peer_cron
from bench.stats import Records

SCENARIO = "peers"
# What each section runs (the labels are short: the details are in docs/benchmarks.md).
CRON_HOW = {
    "jararaca": "jararaca beat + worker, seconds crons",
    CELERY.name: "Celery beat + redbeat, intervals, solo worker",
    TASKIQ.name: "taskiq scheduler, interval labels, 1 worker",
    JARARACA_0513.name: "jararaca 0.5.13 beat --interval 1 + worker, seconds crons",
}
BURST_HOW = {
    "jararaca": "jararaca delay() each, beat + worker",
    CELERY.name: "Celery apply_async(eta) each, solo worker",
    TASKIQ.name: "taskiq kiq() + delay label each, 1 worker",
    JARARACA_0513.name: "jararaca 0.5.13 schedule() each, beat + worker",
}
CANNOT = {
    "cron-celery-crontab": ("Celery crontab() in seconds", "crontab() has no seconds field"),
    "cron-taskiq-cron": ("taskiq cron label in seconds", "cron labels are minute-resolution"),
}


def run(profile: Profile) -> list[Section]:
    require_venv()
    count = min(profile.burst_sizes)
    systems = ["jararaca", *(peer.name for peer in PEERS)]
    cron = {name: section("cron", name, f"{profile.cron_seconds:.0f} s, ") for name in systems}
    burst_variant = f"burst-{count_id(count)}"
    burst = {name: section(burst_variant, name, f"{count:,} due at once, ") for name in systems}
    samples: dict[str, list[list[float]]] = {s.id: [] for s in [*cron.values(), *burst.values()]}

    def keep(target: Section, records: list[Records], late_ms: bool) -> None:
        scale = 1000 if late_ms else 1
        for found in records:
            samples[target.id].append([round(v * scale, 4) for v in found.late_seconds()])
        records.clear()

    kept: list[Records] = []
    for _ in range(profile.slow_repeats):
        cron["jararaca"].measure(cron_precision.cron_precision, profile.cron_seconds, keep=kept)
        keep(cron["jararaca"], kept, late_ms=True)
        for peer in PEERS:
            cron[peer.name].measure(peer_cron, peer, profile.cron_seconds, kept)
            keep(cron[peer.name], kept, late_ms=True)
    for _ in range(profile.repeats):
        burst["jararaca"].measure(delayed_burst.burst, count, "single", keep=kept)
        keep(burst["jararaca"], kept, late_ms=False)
        for peer in PEERS:
            burst[peer.name].measure(peer_burst, peer, count, kept)
            keep(burst[peer.name], kept, late_ms=False)
    save_samples(samples)
    cannot = [
        Section(SCENARIO, f"{SCENARIO}/{variant}", label, counts_fail=False, cannot=why)
        for variant, (label, why) in CANNOT.items()
    ]
    return [*cron.values(), *cannot, *burst.values()]


def section(variant: str, system: str, label: str) -> Section:
    """jararaca's section, or a peer's compared with it."""
    how = CRON_HOW if variant == "cron" else BURST_HOW
    jararaca = f"{SCENARIO}/{variant}-jararaca"
    if system == "jararaca":
        return Section(SCENARIO, jararaca, label + how[system])
    section_id = f"{SCENARIO}/{variant}-{system}"
    return Section(SCENARIO, section_id, label + how[system], counts_fail=False, versus=jararaca)


def save_samples(samples: dict[str, list[list[float]]]) -> None:
    """Each section's samples of each repeat: cron lateness in ms, burst start after due in s."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"peers-samples-{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(samples) + "\n", encoding="utf-8")
    print(f"peers samples: {path.relative_to(RESULTS_DIR.parents[1])}", flush=True)
