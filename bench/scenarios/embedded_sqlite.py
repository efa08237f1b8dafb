"""embedded-sqlite: cron-precision and delayed-burst in the embedded ``Scheduler`` on a SQLite
file (``sqlite:///...``, the durable embedded mode), in a process of its own; the same
measures as the ``embedded`` scenario (``memory://``), so the two read side by side.

The child process is this module::

    python -m bench.scenarios.embedded_sqlite cron SECONDS DB
    python -m bench.scenarios.embedded_sqlite burst COUNT FORM DB

``cron`` prints ``READY <epoch>`` once serving and ``STOP <epoch>`` when it stops. ``burst``
enqueues through ``connect(backend_url=<the file>)`` (a second connection to it, as another
part of the application would), waits until the handler saw every message, and prints one
JSON line: the enqueue rate, the due instant, the peak RSS and the file's size (database plus
write-ahead log) once everything was enqueued and once everything was handled.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.config import Profile
from bench.procs import Procs
from bench.results import Section, count_id
from bench.scenarios.cron_precision import MARGIN, judge
from bench.scenarios.delayed_burst import burst_figures
from bench.stats import Figures, Records

SCENARIO = "embedded-sqlite"
LEAD_RATE = 10_000  # assumed enqueue rate (msg/s), to pick a due instant after the enqueue
MIB = 1024 * 1024


def file_mib(db: Path) -> float:
    """The database and its write-ahead log, in MiB."""
    sizes = [p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists()]
    return sum(sizes) / MIB


def embedded_sqlite_cron(seconds: float) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp, Procs() as procs:
        out, db = Path(tmp) / "records.json", Path(tmp) / "jararaca.db"
        args = ["cron", str(seconds + 2 * MARGIN), str(db)]
        proc = procs.spawn("embedded", ["-m", __name__, *args], {"BENCH_OUT": str(out)})
        ready = float(proc.wait_for(lambda s: s.startswith("READY "), 60, "READY").split()[1])
        stopped = float(
            proc.wait_for(lambda s: s.startswith("STOP "), seconds + 60, "STOP").split()[1]
        )
        bad_exits = int(proc.wait_exit(60) != 0)
        figures = judge(Records.load([out]), ready + MARGIN, stopped - MARGIN)
    return {**figures, "bad_exits": bad_exits}


def embedded_sqlite_burst(count: int, form: str) -> Figures:
    with tempfile.TemporaryDirectory(prefix="bench-sqlite-") as tmp, Procs() as procs:
        out, db = Path(tmp) / "records.json", Path(tmp) / "jararaca.db"
        args = ["burst", str(count), form, str(db)]
        proc = procs.spawn("embedded", ["-m", __name__, *args], {"BENCH_OUT": str(out)})
        result = json.loads(proc.wait_for(lambda s: s.startswith("{"), 900, "result"))
        bad_exits = int(proc.wait_exit(60) != 0)
        records = Records.load([out])
    figures = burst_figures(count, result["due"], result, records)
    for name in ("rss_peak_mib", "file_enqueued_mib", "file_drained_mib"):
        figures[name] = result[name]
    figures["bad_exits"] = bad_exits
    return figures


def run(profile: Profile) -> list[Section]:
    cron = Section(SCENARIO, f"{SCENARIO}/cron", f"cron-precision {profile.cron_seconds:.0f} s")
    for _ in range(profile.slow_repeats):
        cron.measure(embedded_sqlite_cron, profile.cron_seconds)
    sections = [cron]
    count = profile.embedded_burst
    for form in ("batch", "single"):
        label = f"delayed-burst {count:,}, {form} enqueue"
        burst = Section(SCENARIO, f"{SCENARIO}/burst-{count_id(count)}-{form}", label)
        for _ in range(profile.repeats):
            burst.measure(embedded_sqlite_burst, count, form)
        sections.append(burst)
    return sections


# -- the child process ----------------------------------------------------------------------


async def _cron(seconds: float, db: Path) -> None:
    from bench.apps import cron_app
    from jararaca import Scheduler

    stop = asyncio.Event()
    serving = asyncio.create_task(
        Scheduler(cron_app.app, backend_url=f"sqlite:///{db}").serve(stop, own_process=True)
    )
    await asyncio.sleep(0.5)
    print(f"READY {time.time()}", flush=True)
    await asyncio.sleep(seconds)
    print(f"STOP {time.time()}", flush=True)
    stop.set()
    await serving


async def _burst(count: int, form: str, db: Path) -> None:
    from bench.apps import burst_app
    from bench.enqueue import FORMS
    from bench.procstat import memory_kib
    from bench.recorder import RECORDER
    from jararaca import Scheduler, connect

    url = f"sqlite:///{db}"
    stop = asyncio.Event()
    serving = asyncio.create_task(
        Scheduler(burst_app.app, backend_url=url).serve(stop, own_process=True)
    )
    await asyncio.sleep(0.5)
    due = time.time() + 2 + count / LEAD_RATE
    async with connect(backend_url=url) as publisher:
        began = time.perf_counter()
        await FORMS[form](publisher, count, due)
        seconds = time.perf_counter() - began
        finished_at = time.time()
    enqueued_mib = file_mib(db)
    # Polled at 20 Hz: negligible beside the drain, and the handler stays a bare append.
    while len(RECORDER.keys) < count and time.time() < due + 600:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    drained_mib = file_mib(db)
    stop.set()
    await serving
    result = {
        "count": count,
        "seconds": seconds,
        "rate": count / seconds,
        "finished_at": finished_at,
        "due": due,
        "rss_peak_mib": memory_kib(os.getpid())["VmHWM"] / 1024,
        "file_enqueued_mib": enqueued_mib,
        "file_drained_mib": drained_mib,
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "cron":
        asyncio.run(_cron(float(sys.argv[2]), Path(sys.argv[3])))
    else:
        asyncio.run(_burst(int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])))
