"""peers, seconds crons: a peer's scheduler and one worker process for a while, and the
lateness of each fire against the instant that peer meant it for.

Neither Celery nor taskiq gives its task an intended instant (jararaca's
``ScheduledRun.scheduled_at``); each of their apps stamps its scheduler's publish time in the
message (bench.peers), and here:

- Celery beat (interval schedules): the next due instant of an entry is its last run plus the
  interval, so a fire's intended instant is the previous fire's publish + the interval (the
  first fire's, its own publish). The schedule drifts by each fire's lateness: fewer fires
  than a fixed grid of the same period shows up as ``missed``.
- taskiq's scheduler (interval labels) checks its schedules on each whole-second tick: a
  fire's intended instant is the whole second of its publish.
- jararaca 0.5.13 (seconds crons) gives its action the whole second of the beat's pass that
  dispatched it, the fire's slot only when the pass fell in the slot's own second (a pass at
  13.2 s dispatches the every-2-s fire of 12 s, stamped 13: bench.peers.jararaca0513_app): a
  fire's intended instant is that stamp floored to its schedule's grid (every 1, 2 or 5 s of
  the minute, so of the epoch).

``missed`` counts, per schedule, the slots of a fixed grid (its first intended instant + k x
its interval) in the window [ready + 2 s, stop - 2 s] beyond the fires seen there.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.procs import Procs, stop_all
from bench.scenarios.peers_common import JARARACA_0513, TASKIQ, Peer
from bench.stats import Figures, Records, lateness_ms

MARGIN = 2.0  # seconds after readiness and before stopping that are not judged
INTERVALS = {"every_second": 1.0, "every_2s": 2.0, "every_5s": 5.0}  # as the peer apps'


def peer_cron(peer: Peer, seconds: float, keep: list[Records]) -> Figures:
    """One repeat; ``keep`` receives the records, with each fire's intended instant as due."""
    prefix = peer.new_prefix()
    with tempfile.TemporaryDirectory(prefix="bench-peer-cron-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.jsonl"
        try:
            worker = peer.spawn_worker(procs, prefix, str(out))
            scheduler = peer.spawn_scheduler(procs, prefix)
            begin = time.time() + MARGIN
            time.sleep(seconds + 2 * MARGIN)
            end = time.time() - MARGIN
            bad_exits = peer.stop_scheduler(scheduler) + stop_all([worker])
        finally:
            procs.close()
            peer.cleanup(prefix)
        records = intended(peer.name, Records.load([out]))
    keep.append(records)
    return {**judge(records, begin, end), "bad_exits": bad_exits}


def intended(peer: str, published: Records) -> Records:
    """The records with ``due`` the intended instant of each fire instead of its app's stamp."""
    by_schedule: dict[str, list[int]] = defaultdict(list)
    for index, key in enumerate(published.keys):
        by_schedule[str(key).split("@")[0]].append(index)
    due = list(published.due)
    for name, indexes in by_schedule.items():
        indexes.sort(key=lambda i: published.due[i])
        for order, index in enumerate(indexes):
            sent = published.due[index]
            if peer == TASKIQ.name:
                due[index] = math.floor(sent)
            elif peer == JARARACA_0513.name:
                due[index] = math.floor(sent / INTERVALS[name]) * INTERVALS[name]
            elif order > 0:
                due[index] = published.due[indexes[order - 1]] + INTERVALS[name]
    return Records(list(published.keys), due, list(published.start))


def judge(records: Records, begin: float, end: float) -> Figures:
    """Lateness of the fires intended in [begin, end]; missed slots of each schedule's grid."""
    in_window = [
        (str(k), s - d)
        for k, s, d in zip(records.keys, records.start, records.due, strict=True)
        if begin <= d <= end
    ]
    missed = 0
    for name, interval in INTERVALS.items():
        first = min(
            (
                d
                for k, d in zip(records.keys, records.due, strict=True)
                if str(k).startswith(f"{name}@")
            ),
            default=math.nan,
        )
        if math.isnan(first):
            missed += math.floor((end - begin) / interval)
            continue
        slots = math.floor((end - first) / interval) - math.ceil((begin - first) / interval) + 1
        seen = len({k for k, _ in in_window if k.startswith(f"{name}@")})
        missed += max(0, slots - seen)
    return {
        "runs": len(in_window),
        **lateness_ms([late for _, late in in_window]),
        "missed": missed,
        "doubled": records.doubled(),
    }
