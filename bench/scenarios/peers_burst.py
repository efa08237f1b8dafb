"""peers, delayed burst: N messages due at one instant through a peer's one worker process.

The enqueue runs in its own process with the peer's python (``python -m <peer app> enqueue
COUNT DUE``: one call per message, as the peer's users send them), and ends before the due
instant, a whole second (jararaca 0.5.13 keeps due instants in whole seconds); the figures
are bench.scenarios.delayed_burst's (drain rate = messages / (last start - due), last start
after due, lateness = start - due, lost, doubled). A peer whose worker does not hold the
delayed messages itself (jararaca 0.5.13: its beat moves them from Redis to RabbitMQ) runs its
``burst_scheduler`` too.
"""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path

from bench.procs import Proc, Procs, stop_all, wait_progress
from bench.scenarios.delayed_burst import burst_figures
from bench.scenarios.peers_common import Peer
from bench.stats import Figures, Records

# Assumed enqueue rates (msg/s) to pick a due instant the enqueue finishes before; a run
# whose enqueue ends after it says so (``enqueue_overran_s``).
ASSUMED_RATE = {"celery": 1_000, "taskiq": 2_000, "jararaca-0.5.13": 1_500}


def peer_burst(peer: Peer, count: int, keep: list[Records]) -> Figures:
    prefix = peer.new_prefix()
    with tempfile.TemporaryDirectory(prefix="bench-peer-burst-") as tmp, Procs() as procs:
        out = Path(tmp) / "worker.jsonl"
        try:
            worker = peer.spawn_worker(procs, prefix, str(out))
            schedulers: list[Proc] = []
            if peer.burst_scheduler:
                schedulers.append(peer.spawn_scheduler(procs, prefix, peer.burst_scheduler))
            due = float(math.ceil(time.time() + 2.0 + count / ASSUMED_RATE[peer.name]))
            enqueue = ("-m", peer.module, "enqueue", str(count), repr(due))
            enqueuer = peer.spawn(procs, "enqueue", enqueue, prefix)
            line = enqueuer.wait_for(lambda s: s.startswith("{"), 900, "result")
            enqueued: dict[str, float] = json.loads(line)
            time.sleep(max(0.0, due - time.time()))
            wait_progress([worker], count, stall=30, limit=900)
            stopped = sum(peer.stop_scheduler(scheduler) for scheduler in schedulers)
            bad_exits = stopped + stop_all([enqueuer, worker])
        finally:
            procs.close()
            peer.cleanup(prefix)
        records = Records.load([out])
    keep.append(records)
    return {**burst_figures(count, due, enqueued, records), "bad_exits": bad_exits}
